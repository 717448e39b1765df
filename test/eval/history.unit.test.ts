import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { escapeControls } from '../../lib/core/filenames.ts'
import { historyHtml, type HistoryRun } from '../../lib/eval/history-html.ts'
import { readHistory, writeHistoryPage } from '../../lib/eval/history.ts'
import type { MetricRow } from '../../lib/eval/metrics.ts'
import { historyPageFacts } from '../support/chromium.ts'
import { writeFixtureRun, type FixtureRow } from '../support/history-fixtures.ts'

// The history page from the runs' files: only folders this tool wrote, each listed once, a point per
// run that has a score, and every name from a run's files escaped wherever the page shows it.

const row = (task: string, f1: number | null, precision: number | null = f1, recall: number | null = f1): MetricRow => ({
  task,
  scope: 'combined',
  dataset: '',
  label: '',
  metric_family: 'exact_canonical',
  scores: { precision, recall, f1 },
})

const run = (folder: string, fields: Partial<HistoryRun> = {}): HistoryRun => ({
  folder,
  dir: `/reports/${folder}`,
  run_id: folder,
  target: 'ssh gpu-box',
  suite: 'guardrails_ru',
  split: 'fast',
  state: 'finished',
  exit_code: 0,
  started_at: '2026-12-01T10:00:00Z',
  commit: 'abcdef0123456789',
  dirty: false,
  hasReport: true,
  headline: [row('span_detection', 0.8)],
  ...fields,
})

async function reportsDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-history-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** The data-run of each table row, in page order. */
const tableRuns = (html: string) => [...html.matchAll(/<tr\b[^>]*data-run="([^"]*)"/g)].map((m) => m[1])
/** The data-run of each f1 point of a task, in page order. */
const f1Runs = (html: string, task: string) =>
  [...html.matchAll(/<circle\b[^>]*>/g)]
    .map((m) => m[0])
    .filter((c) => c.includes('data-score="f1"') && c.includes(`data-task="${task}"`))
    .map((c) => /data-run="([^"]*)"/.exec(c)![1])

const HOSTILE = '<script>alert("x")</script>&amp;\'\u0000\u001b[2J\u2028\xff\ufffd'
const TAGS = new Set(
  'html head meta title style body h1 h2 h3 p table thead tbody tr th td a wbr div b section svg line text polyline circle ul li'.split(
    ' ',
  ),
)

test('hostile names from run.json, metrics.csv and folder names are escaped wherever the page shows them', () => {
  const html = historyHtml([
    run(`eval_${HOSTILE}`, {
      started_at: HOSTILE,
      target: `${HOSTILE}\ud800`,
      suite: HOSTILE,
      split: `"><img src=x>`,
      state: HOSTILE,
      commit: HOSTILE,
      dirty: true,
      headline: [{ ...row(HOSTILE, 0.5), label: HOSTILE, metric_family: HOSTILE }],
    }),
  ])
  assert.doesNotMatch(html, /<script|<img/i)
  // Only the page's own elements, each with well-formed attributes: nothing broke out of a value.
  for (const [tag] of html.matchAll(/<(?!!)[^>]*>/g)) {
    assert.match(tag, /^<\/?([a-z0-9]+)(\s[a-z][a-z0-9-]*="[^"<>]*")*\s*\/?>$/i, tag)
    assert.ok(TAGS.has(/^<\/?([a-z0-9]+)/i.exec(tag)![1]!.toLowerCase()), tag)
  }
  const controls = [...html].filter((char) => char !== '\n' && escapeControls(char) !== char)
  assert.deepEqual(controls, [], 'no raw control character')
  assert.match(html, /&lt;script&gt;alert\(&quot;x&quot;\)&lt;\/script&gt;&amp;amp;&#39;\\u0000\\u001b\[2J\\u2028\xff\ufffd/)
  assert.match(html, /data-run="eval_&lt;script&gt;[^"]*"/)
  assert.match(html, /data-split="&quot;&gt;&lt;img src=x&gt;"/)
})

const ROWS: FixtureRow[] = [['span_detection', 'combined', '', 'exact_canonical', '0.9', '0.8', '0.847']]

test('the table lists runs newest first; a chart runs oldest to newest, an undated run first', async (t) => {
  const dir = await reportsDir(t)
  for (const [folder, started] of [
    ['b', '2026-12-02T10:00:00Z'],
    ['undated', null],
    ['c', '2026-12-03T10:00:00Z'],
    ['a', '2026-12-01T10:00:00Z'],
  ] as const) {
    await writeFixtureRun(dir, folder, { record: { started_at: started }, rows: ROWS })
  }
  const html = await readFile((await writeHistoryPage(dir)).path, 'utf8')
  assert.deepEqual(tableRuns(html), ['c', 'b', 'a', 'undated'])
  assert.deepEqual(f1Runs(html, 'span_detection'), ['undated', 'a', 'b', 'c'])
  assert.match(html, /<title>Eval history<\/title>/)
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/)
})

test('a point per run that has the score, in [0, 1]: none (and "-" in the table) for a value out of range or missing', () => {
  const html = historyHtml([
    run('r1', { headline: [row('span_detection', 0.9), row('policy_action', 0.7, null, 0.6)] }),
    run('r2', { headline: [row('span_detection', 1.5), row('policy_action', 0.8)] }),
    run('r3', { headline: [row('span_detection', NaN), row('policy_action', 0.75)] }),
    run('r4', { headline: [], state: 'failed', exit_code: 1 }),
  ])
  const { runs, points } = historyPageFacts(html)
  assert.equal(runs, 4)
  assert.deepEqual(Object.fromEntries(points), { 'guardrails_ru/fast/span_detection': 1, 'guardrails_ru/fast/policy_action': 3 })
  const precision = [...html.matchAll(/<circle\b[^>]*data-task="policy_action"[^>]*data-score="precision"/g)]
  assert.equal(precision.length, 2, 'r1 has no precision')
  assert.match(html, /<b>span_detection<\/b> f1 - · P - · R -/, 'an f1 of 1.5 is shown as "-"')
  assert.match(html, /<tr data-run="r4" class="failed"><td>[^<]*<\/td>(<td>.*?<\/td>){5}<td>failed \(exit 1\)<\/td><td>-<\/td><\/tr>/)
})

test('each run folder links to its report.md by a relative, URL-encoded path; the commit is cut to 10 characters', () => {
  const html = historyHtml([run('a b#?%"<:x'), run('отчёт'), run('no-report', { hasReport: false, commit: null })])
  assert.match(html, /<a href="\.\/a%20b%23%3F%25%22%3C%3Ax\/report\.md">a b#\?%&quot;&lt;:x<\/a>/)
  assert.match(html, /<a href="\.\/%D0%BE%D1%82%D1%87%D1%91%D1%82\/report\.md">отчёт<\/a>/)
  assert.match(html, /<a href="\.\/no-report\/">no-report<\/a><\/td>(<td>.*?<\/td>){3}<td>-<\/td>/)
  assert.match(html, /<td>abcdef0123<\/td>/)
})

test('only report folders this tool wrote count: latest, foreign folders and files, broken or linked run.json are skipped', async (t) => {
  const dir = await reportsDir(t)
  await writeFixtureRun(dir, 'eval_one', { rows: ROWS })
  await writeFixtureRun(dir, 'eval_two', { record: { started_at: '2026-12-02T10:00:00Z' } })
  await symlink('eval_one', path.join(dir, 'latest'))
  await mkdir(path.join(dir, 'notes'))
  await writeFile(path.join(dir, 'notes', 'todo.txt'), 'x')
  await writeFile(path.join(dir, 'run.json'), '{}')
  await mkdir(path.join(dir, 'broken'))
  await writeFile(path.join(dir, 'broken', 'run.json'), '{"suite": ')
  await mkdir(path.join(dir, 'linked'))
  await symlink(path.join(dir, 'eval_one', 'run.json'), path.join(dir, 'linked', 'run.json'))
  await mkdir(path.join(dir, 'dir-run', 'run.json'), { recursive: true })
  await mkdir(path.join(dir, 'linked-csv'))
  await writeFile(path.join(dir, 'linked-csv', 'run.json'), '{"suite": "guardrails_ru", "split": "fast"}')
  await symlink(path.join(dir, 'eval_one', 'metrics.csv'), path.join(dir, 'linked-csv', 'metrics.csv'))

  const runs = await readHistory(dir)
  assert.deepEqual(runs.map((r) => r.folder).sort(), ['eval_one', 'eval_two', 'linked-csv'])
  assert.deepEqual(
    runs.map((r) => [r.folder, r.headline.length, r.hasReport]),
    [
      ['linked-csv', 0, false],
      ['eval_one', 1, true],
      ['eval_two', 0, true],
    ],
  )

  const written = await writeHistoryPage(dir)
  assert.deepEqual(written, { path: path.join(dir, 'index.html'), runs: 3 })
  const html = await readFile(written.path, 'utf8')
  assert.deepEqual(tableRuns(html), ['eval_two', 'eval_one', 'linked-csv'])
  // The runs without a metrics.csv of their own are listed, with no point in the chart.
  assert.deepEqual(Object.fromEntries(historyPageFacts(html).points), { 'guardrails_ru/fast/span_detection': 1 })
  assert.deepEqual(f1Runs(html, 'span_detection'), ['eval_one'])
})

test('index.html is replaced whole, with no temporary file left beside it', async (t) => {
  const dir = await reportsDir(t)
  assert.deepEqual(await writeHistoryPage(dir), { path: path.join(dir, 'index.html'), runs: 0 })
  assert.match(await readFile(path.join(dir, 'index.html'), 'utf8'), /No runs yet/)
  await writeFixtureRun(dir, 'eval_one', { rows: ROWS })
  assert.equal((await writeHistoryPage(dir)).runs, 1)
  assert.equal((await writeHistoryPage(dir)).runs, 1, 'index.html is not a run')
  assert.deepEqual((await readdir(dir)).sort(), ['eval_one', 'index.html'])
})
