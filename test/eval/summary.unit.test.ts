import assert from 'node:assert/strict'
import { test } from 'node:test'
import { $ } from 'zx'
import { metricsTable, parseCsv } from '../../lib/eval/summary.ts'

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
