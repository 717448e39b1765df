import assert from 'node:assert/strict'
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { UsageError } from '../../lib/core/errors.ts'
import { parseFlags } from '../../lib/core/flags.ts'
import { compareMetrics, deltaTable, previousRun, readBaseline } from '../../lib/eval/deltas.ts'
import { metricsFromReport, parseMetrics } from '../../lib/eval/metrics.ts'
import { SSH_EVAL_FLAGS } from '../../lib/eval/options.ts'

// Deltas against the previous run: rows matched by what they measure, scores compared, and the
// baseline found among the local runs or read from --baseline.

const HEADER = 'dataset,f1,false_negatives,label,metric_family,precision,recall,scope,task'
const csv = (...rows: string[]) => [HEADER, ...rows].join('\n') + '\n'
const BEFORE = csv(
  ',0.8,1,,exact_canonical,0.9,0.72,combined,span_detection',
  ',1.0,0,EMAIL,per_label_char,1.0,1.0,label,span_detection',
  ',0.5,1,PHONE,per_label_char,0.5,0.5,label,span_detection',
)
const AFTER = csv(
  ',0.85,1,,exact_canonical,0.9,0.8,combined,span_detection',
  ',1.0,0,EMAIL,per_label_char,1.0,1.0,label,span_detection',
  ',0.4,1,IBAN,per_label_char,0.4,0.4,label,span_detection',
)

test('rows are matched by task, scope, dataset, label and family; each score compared, one-sided rows named', () => {
  const deltas = compareMetrics(parseMetrics(BEFORE), parseMetrics(AFTER))
  assert.deepEqual(
    deltas.map((d) => [d.label || d.metric_family, d.only ?? '', d.scores.f1?.delta ?? null]),
    [
      ['exact_canonical', '', 0.05],
      ['EMAIL', '', 0],
      ['IBAN', 'this run', null],
      ['PHONE', 'baseline', null],
    ],
  )
  assert.deepEqual(deltas[0]!.scores.recall, { baseline: 0.72, current: 0.8, delta: 0.08 })
  assert.deepEqual(deltas[0]!.scores.precision, { baseline: 0.9, current: 0.9, delta: 0 })
})

test('the table shows what changed, up in green and down in red on a terminal, and counts the rest', () => {
  const deltas = compareMetrics(parseMetrics(AFTER), parseMetrics(BEFORE))
  const plain = deltaTable(deltas, false).split('\n')
  assert.match(plain[0]!, /^row\s+precision\s+Δ\s+recall\s+Δ\s+f1\s+Δ$/)
  assert.match(plain[1]!, /^span_detection combined exact_canonical\s+0\.9000\s+=\s+0\.7200\s+-0\.0800\s+0\.8000\s+-0\.0500$/)
  assert.match(plain[2]!, /^span_detection label PHONE per_label_char\s+only in this run\s+0\.5000\s+0\.5000\s+0\.5000$/)
  assert.match(plain[3]!, /^span_detection label IBAN per_label_char\s+only in baseline\s+0\.4000\s+0\.4000\s+0\.4000$/)
  assert.equal(plain[4], '1 rows unchanged')
  const ESC = String.fromCharCode(27)
  const colored = deltaTable(compareMetrics(parseMetrics(BEFORE), parseMetrics(AFTER)), true)
  assert.ok(colored.includes(`${ESC}[32m+0.0800${ESC}[39m`), colored)
  assert.ok(deltaTable(deltas, true).includes(`${ESC}[31m-0.0800${ESC}[39m`))
  assert.equal(deltaTable(compareMetrics(parseMetrics(BEFORE), parseMetrics(BEFORE)), true), 'no metric changed (3 rows)')
})

test('a label from the eval cannot forge a line of the table', () => {
  const hostile = csv(',0.5,1,"A\nforged line\u001b[2J",per_label_char,0.5,0.5,label,span_detection')
  const table = deltaTable(compareMetrics([], parseMetrics(hostile)), false)
  assert.equal(table.split('\n').length, 2, table)
  assert.ok(!table.includes('\u001b'), table)
})

test('a report.json alone gives the rows the real eval writes to metrics.csv', () => {
  const report = {
    tasks: {
      span_detection: {
        metrics: {
          combined: {
            char_canonical: { precision: 0.9, recall: 0.8, f1: 0.85 },
            exact_canonical: { precision: 0.7, recall: 0.6, f1: 0.65 },
            per_label_char: { EMAIL: { precision: 1, recall: 0.5, f1: 0.6667 } },
          },
        },
      },
      policy_action: { policies: { strict: { metrics: { precision: 0.5, recall: 1, f1: 0.6667 } } } },
      mask_leakage: { leakage_fraction: 0.01 },
    },
  }
  const rows = metricsFromReport(report)
  assert.deepEqual(
    rows.map((r) => [r.task, r.scope, r.label, r.metric_family, r.scores.f1]),
    [
      ['span_detection', 'combined', '', 'exact_canonical', 0.65],
      ['span_detection', 'combined', '', 'char_canonical', 0.85],
      ['span_detection', 'label', 'EMAIL', 'per_label_char', 0.6667],
      ['policy_action', 'policy', 'strict', 'binary', 0.6667],
      ['mask_leakage', 'combined', '', 'leakage_fraction', null],
    ],
  )
  assert.deepEqual(metricsFromReport('not a report'), [])
})

test('--baseline reads a report directory, its report.json or its metrics.csv; anything else is a usage error', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'gre-baseline-'))
  const withCsv = path.join(root, 'a')
  await mkdir(withCsv)
  await writeFile(path.join(withCsv, 'metrics.csv'), BEFORE)
  await writeFile(
    path.join(withCsv, 'run.json'),
    JSON.stringify({ run_id: 'a', started_at: '2026-12-01T00:00:00Z', code: { commit: 'c'.repeat(40) } }),
  )
  const onlyJson = path.join(root, 'b')
  await mkdir(onlyJson)
  await writeFile(
    path.join(onlyJson, 'report.json'),
    JSON.stringify({ tasks: { span_detection: { metrics: { combined: { exact_canonical: { f1: 1 } } } } } }),
  )
  const given = readBaseline(withCsv)
  assert.equal(given.rows.length, 3)
  assert.deepEqual([given.source, given.run_id, given.commit], ['--baseline', 'a', 'c'.repeat(40)])
  assert.equal(readBaseline(path.join(withCsv, 'metrics.csv')).rows.length, 3)
  assert.equal(readBaseline(path.join(onlyJson, 'report.json')).rows.length, 1)
  assert.equal(readBaseline(onlyJson).rows[0]!.scores.f1, 1)
  await writeFile(path.join(root, 'broken.json'), '{')
  for (const [bad, why] of [
    [path.join(root, 'nope'), /does not exist/],
    [root, /holds neither metrics\.csv nor report\.json/],
    [path.join(root, 'broken.json'), /is not a report\.json the eval wrote/],
  ] as const) {
    assert.throws(
      () => readBaseline(bad),
      (error: Error) => error instanceof UsageError && why.test(error.message) && /Give a fetched report directory/.test(error.message),
    )
  }
})

test('the previous run is the newest finished one of the same suite and split, never the current one or a link', async () => {
  const reports = await mkdtemp(path.join(tmpdir(), 'gre-reports-'))
  const run = async (folder: string, record: Record<string, unknown>, metrics = BEFORE) => {
    await mkdir(path.join(reports, folder))
    await writeFile(path.join(reports, folder, 'run.json'), JSON.stringify({ suite: 's', split: 'fast', state: 'finished', ...record }))
    await writeFile(path.join(reports, folder, 'metrics.csv'), metrics)
  }
  await run('old', { started_at: '2026-12-01T00:00:00Z' })
  await run('newer', { started_at: '2026-12-02T00:00:00Z' })
  await run('failed', { started_at: '2026-12-02T01:00:00Z', state: 'failed' })
  await run('other-split', { started_at: '2026-12-02T02:00:00Z', split: 'full' })
  await run('current', { started_at: '2026-12-02T03:00:00Z' })
  await mkdir(path.join(reports, 'foreign'))
  await writeFile(path.join(reports, 'foreign', 'metrics.csv'), BEFORE)
  await symlink('current', path.join(reports, 'latest'))
  const before = (suite: string, split: string, startedAt: string | null = '2026-12-02T03:00:00Z') =>
    previousRun(reports, { suite, split, current: 'current', startedAt })
  assert.equal(path.basename(before('s', 'fast')!.path), 'newer')
  assert.equal(before('s', 'full')?.path, path.join(reports, 'other-split'))
  assert.equal(before('other', 'fast'), null)
  // An older run fetched again (--attach) is compared with what came before it, not after.
  assert.equal(path.basename(before('s', 'fast', '2026-12-01T12:00:00Z')!.path), 'old')
  assert.equal(before('s', 'fast', '2026-11-01T00:00:00Z'), null)
})

test('--baseline PATH and --no-baseline are two flags, and --no-baseline is no PATH', () => {
  const base = ['--host', 'h', '--remote-dir', '/r']
  assert.equal(parseFlags([...base, '--no-baseline'], SSH_EVAL_FLAGS).baseline, undefined)
  assert.equal(parseFlags([...base, '--no-baseline'], SSH_EVAL_FLAGS)['no-baseline'], true)
  assert.equal(parseFlags([...base, '--baseline', 'x'], SSH_EVAL_FLAGS).baseline, 'x')
  assert.equal(parseFlags([...base, '--baseline', 'x'], SSH_EVAL_FLAGS)['no-baseline'], false)
  const both = parseFlags([...base, '--baseline', 'x', '--no-baseline'], SSH_EVAL_FLAGS)
  assert.deepEqual([both.baseline, both['no-baseline']], ['x', true])
})
