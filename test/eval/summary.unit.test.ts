import assert from 'node:assert/strict'
import { test } from 'node:test'
import { $ } from 'zx'
import type { RunInfo } from '../../lib/eval/runs.ts'
import { parseCsv } from '../../lib/eval/csv.ts'
import { metricsTable, rowsTable, runsTable } from '../../lib/eval/summary.ts'
import { metricsFromReport } from '../../lib/eval/metrics.ts'

// metrics.csv as Python's csv module writes it: quoted fields (commas, quotes, line breaks, CRLF
// row ends) read back as Python reads them, and shown one row per line.

const ROWS = [
  ['task', 'scope', 'dataset', 'label', 'metric_family', 'precision', 'recall', 'f1'],
  ['ner', 'span', 'ru_pii_chat', 'PHONE, MOBILE', 'strict', '0.9', '0.8', '0.847'],
  ['ner', 'span', 'say "hi"', 'EMAIL', 'strict', '1.0', '0.5', '0.667'],
  ['ner', 'span', 'two\nlines', 'NAME\r\nX', 'partial', '0.5', '0.5', '0.5'],
  ['ner', 'span', '', 'ADDRESS', 'strict', '', '', ''],
]

test("metrics.csv written by Python's csv module parses as Python parses it", async () => {
  const script =
    'import csv, json, sys, io\nrows = json.load(sys.stdin)\nout = io.StringIO()\ncsv.writer(out).writerows(rows)\ntext = out.getvalue()\nprint(json.dumps({"text": text, "back": list(csv.reader(io.StringIO(text, newline="")))}))'
  const python = JSON.parse((await $({ input: JSON.stringify(ROWS), quiet: true })`python3 -c ${script}`).stdout) as {
    text: string
    back: string[][]
  }
  assert.match(python.text, /"PHONE, MOBILE"/)
  assert.match(python.text, /\r\n/, 'csv.writer ends rows with CRLF')
  assert.deepEqual(parseCsv(python.text), python.back)
  assert.deepEqual(parseCsv(python.text), ROWS)
})

test('the metrics table keeps one row per line: line breaks and escapes inside a cell are shown escaped', () => {
  const csv = 'task,scope,dataset,label,metric_family,precision,recall,f1\r\nner,span,"two\nlines","EVIL\r\n\x1b[2J",strict,0.5,0.5,0.5\r\n'
  const lines = metricsTable(csv).split('\n')
  assert.equal(lines.length, 2, lines.join('|'))
  assert.match(lines[1]!, /two\\nlines\s+EVIL\\r\\n\\u001b\[2J\s+strict\s+0\.5\s+0\.5\s+0\.5$/)
})

test("--list's table has a group column only when a run belongs to a --shard run's group", () => {
  const run = (id: string, group: string | null, shard: number | null): RunInfo => ({
    id,
    run_id: null,
    state: 'finished',
    exit_code: 0,
    started_at: null,
    ended_at: null,
    suite: 'guardrails_ru',
    split: 'fast',
    gpus: '0',
    ports: null,
    bytes: 1024,
    group,
    shard,
    datasets: null,
  })
  const plain = runsTable([run('20261204-000000-aaaa', null, null)]).split('\n')
  assert.match(plain[0]!, /\sports\s+size$/)
  const grouped = runsTable([run('20261204-000000-aaaa', null, null), run('20261204-000001-bbbb', 'shards-20261204-000001-bbbb', 2)]).split(
    '\n',
  )
  assert.match(grouped[0]!, /\sports\s+group\s+size$/)
  assert.match(grouped[1]!, /\s-\s+1\.0 KiB$/)
  assert.match(grouped[2]!, /\sshards-20261204-000001-bbbb #2\s+1\.0 KiB$/)
})

test('the merged metrics table: one row per family and label, scores to six places', () => {
  const report = {
    tasks: {
      span_detection: {
        metrics: {
          combined: {
            exact_canonical: { precision: 1, recall: 0.75, f1: 0.8571428571 },
            per_label_char: { EMAIL: { precision: 1, recall: 0.4285714, f1: 0.6 } },
          },
        },
      },
    },
  }
  const lines = rowsTable(metricsFromReport(report)).split('\n')
  assert.match(lines[0]!, /^task\s+scope\s+label\s+metric family\s+precision\s+recall\s+f1$/)
  assert.match(lines[1]!, /^span_detection\s+combined\s+exact_canonical\s+1\s+0\.75\s+0\.857143$/)
  assert.match(lines[2]!, /^span_detection\s+label\s+EMAIL\s+per_label_char\s+1\s+0\.428571\s+0\.6$/)
})
