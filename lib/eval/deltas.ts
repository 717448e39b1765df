// What changed since the last run: each metrics.csv row's precision, recall and f1 against a
// baseline, the newest earlier local run of the same suite and split (or --baseline PATH).
import { lstatSync, readFileSync } from 'node:fs'
import path from 'node:path'
import pc from 'picocolors'
import { UsageError } from '../core/errors.ts'
import type { Logger } from '../core/log.ts'
import { escapeControls } from '../core/filenames.ts'
import { parseMetrics, readMetricRows, rowKey, rowName, SCORES, type MetricRow, type Score } from './metrics.ts'
import { finishedRuns, readRunRecord } from './record.ts'

/** The run compared against: where its metrics came from, and what is known of it. */
export interface Baseline {
  /** The report directory (or the file given to --baseline). */
  path: string
  source: 'previous run' | '--baseline'
  run_id: string | null
  started_at: string | null
  commit: string | null
  rows: MetricRow[]
}

/** One row compared: each score before, now and the change; `only` names the side that has it alone. */
export interface Delta {
  task: string
  scope: string
  dataset: string
  label: string
  metric_family: string
  only?: 'this run' | 'baseline'
  scores: Partial<Record<Score, { baseline: number | null; current: number | null; delta: number | null }>>
}

const BASELINE_HINT = 'Give a fetched report directory (reports/evaluations/<run_id>), its report.json or its metrics.csv.'
const regularFile = (file: string) => lstatSync(file, { throwIfNoEntry: false })?.isFile() === true

/** The rows of a report.json (metrics.csv beside it first, as the eval writes both). */
function rowsOfReport(file: string): MetricRow[] {
  try {
    return readMetricRows(file) ?? []
  } catch (error) {
    throw new UsageError(`--baseline ${file} is not a report.json the eval wrote (${(error as Error).message}). ${BASELINE_HINT}`, {
      cause: error,
    })
  }
}

/** --baseline PATH: a report directory, its report.json or its metrics.csv; read now, so a bad one is exit 2. */
export function readBaseline(given: string): Baseline {
  const full = path.resolve(given)
  const stat = lstatSync(full, { throwIfNoEntry: false })
  if (!stat) throw new UsageError(`--baseline ${given} does not exist. ${BASELINE_HINT}`)
  const dir = stat.isDirectory() ? full : path.dirname(full)
  let rows: MetricRow[]
  if (stat.isDirectory()) {
    if (regularFile(path.join(full, 'metrics.csv'))) rows = parseMetrics(readFileSync(path.join(full, 'metrics.csv'), 'utf8'))
    else if (regularFile(path.join(full, 'report.json'))) rows = rowsOfReport(path.join(full, 'report.json'))
    else throw new UsageError(`--baseline ${given} holds neither metrics.csv nor report.json. ${BASELINE_HINT}`)
  } else if (stat.isFile() && full.endsWith('.csv')) rows = parseMetrics(readFileSync(full, 'utf8'))
  else if (stat.isFile() && full.endsWith('.json')) rows = rowsOfReport(full)
  else throw new UsageError(`--baseline ${given} is neither a directory nor a .json or .csv file. ${BASELINE_HINT}`)
  if (!rows.length) throw new UsageError(`--baseline ${given} has no metric rows to compare with. ${BASELINE_HINT}`)
  const record = readRunRecord(dir)
  return {
    path: full,
    source: '--baseline',
    run_id: record?.run_id ?? null,
    started_at: record?.started_at ?? null,
    commit: record?.commit ?? null,
    rows,
  }
}

/**
 * The newest finished local run of the suite and split that started before `current` (a report
 * folder; `startedAt` its start, when known), with its metrics.
 */
export function previousRun(
  reportsDir: string,
  run: { suite: string; split: string; current: string; startedAt: string | null },
): Baseline | null {
  const earlier = finishedRuns(reportsDir, run)
    .filter((r) => r.folder !== run.current)
    .filter((r) => run.startedAt === null || (r.started_at !== null && r.started_at < run.startedAt))
    .filter((r) => regularFile(path.join(r.dir, 'metrics.csv')))
  const newest = earlier.at(-1)
  if (!newest) return null
  return {
    path: newest.dir,
    source: 'previous run',
    run_id: newest.run_id,
    started_at: newest.started_at,
    commit: newest.commit,
    rows: parseMetrics(readFileSync(path.join(newest.dir, 'metrics.csv'), 'utf8')),
  }
}

/** Every row of either side, in this run's order, then the baseline's rows this run lacks. */
export function compareMetrics(baseline: readonly MetricRow[], current: readonly MetricRow[]): Delta[] {
  const before = new Map(baseline.map((row) => [rowKey(row), row]))
  const now = new Map(current.map((row) => [rowKey(row), row]))
  const delta = (row: MetricRow, a: MetricRow | undefined, b: MetricRow | undefined): Delta => ({
    task: row.task,
    scope: row.scope,
    dataset: row.dataset,
    label: row.label,
    metric_family: row.metric_family,
    ...(a && b ? {} : { only: a ? 'baseline' : 'this run' }),
    scores: Object.fromEntries(
      SCORES.filter((s) => a?.scores[s] != null || b?.scores[s] != null).map((s) => {
        const [x, y] = [a?.scores[s] ?? null, b?.scores[s] ?? null]
        return [s, { baseline: x, current: y, delta: x !== null && y !== null ? round(y - x) : null }]
      }),
    ),
  })
  return [
    ...[...now.values()].map((row) => delta(row, before.get(rowKey(row)), row)),
    ...[...before.values()].filter((row) => !now.has(rowKey(row))).map((row) => delta(row, row, undefined)),
  ]
}

const round = (n: number) => Math.round(n * 1e6) / 1e6
const changed = (d: Delta) => d.only !== undefined || Object.values(d.scores).some((s) => s.delta !== null && s.delta !== 0)

/** "against eval_… (2026-12-02T10:00:00Z, commit 3f2a9c1b7e)": the baseline, for people. */
export function baselineName(baseline: Baseline): string {
  const facts = [baseline.started_at, baseline.commit ? `commit ${baseline.commit.slice(0, 10)}` : null].filter(Boolean)
  return escapeControls(`${baseline.run_id ?? baseline.path}${facts.length ? ` (${facts.join(', ')})` : ''}`)
}

/**
 * The table of the rows that changed or that one side has alone (up green, down red when
 * colour is on), and a count of the rows that did not change.
 */
export function deltaTable(deltas: readonly Delta[], color: boolean): string {
  const c = pc.createColors(color)
  const shown = deltas.filter(changed)
  const same = deltas.length - shown.length
  if (!shown.length) return `no metric changed (${same} rows)`
  // Cells are plain text with a tone; colour goes on after padding, so codes take no width.
  type Cell = { text: string; tone?: 'up' | 'down' }
  const cells = (d: Delta, s: Score): Cell[] => {
    const score = d.scores[s]
    if (!score) return [{ text: '' }, { text: '' }]
    const value = { text: (score.current ?? score.baseline)!.toFixed(4) }
    if (score.delta === null) return [value, { text: '' }]
    if (score.delta === 0) return [value, { text: '=' }]
    return [value, { text: `${score.delta > 0 ? '+' : ''}${score.delta.toFixed(4)}`, tone: score.delta > 0 ? 'up' : 'down' }]
  }
  const plain = (texts: string[]): Cell[] => texts.map((text) => ({ text }))
  const rows = shown.map((d) => [
    ...plain([escapeControls(rowName(d)), d.only ? `only in ${d.only}` : '']),
    ...SCORES.flatMap((s) => cells(d, s)),
  ])
  const header = plain(['row', '', ...SCORES.flatMap((s) => [s, 'Δ'])])
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i]!.text.length)))
  const paint = (cell: Cell, padded: string) => (cell.tone === 'up' ? c.green(padded) : cell.tone === 'down' ? c.red(padded) : padded)
  const line = (r: Cell[]) =>
    r
      .map((cell, i) => paint(cell, i < 2 ? cell.text.padEnd(widths[i]!) : cell.text.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line), ...(same ? [`${same} rows unchanged`] : [])].join('\n')
}

/**
 * After a fetched run: its metrics against the baseline (the previous local run unless one was
 * given), as a table on stderr and as the `baseline` and `deltas` of the JSON (null without one).
 */
export function reportDeltas(
  run: {
    baseline: 'previous run' | Baseline | null
    localRunDir: string
    suite: string
    split: string
    startedAt: string | null
    metrics: string
  },
  logger: Logger,
): { baseline: Omit<Baseline, 'rows'> | null; deltas: Delta[] | null } {
  if (run.baseline === null) return { baseline: null, deltas: null }
  const baseline =
    run.baseline === 'previous run'
      ? previousRun(path.dirname(run.localRunDir), {
          suite: run.suite,
          split: run.split,
          current: path.basename(run.localRunDir),
          startedAt: run.startedAt,
        })
      : run.baseline
  if (!baseline) {
    logger.step(
      'done',
      `no earlier finished run of ${run.suite} / ${run.split} here to compare with; the next run is compared with this one`,
    )
    return { baseline: null, deltas: null }
  }
  const deltas = compareMetrics(baseline.rows, parseMetrics(run.metrics))
  logger.step('done', `against ${baselineName(baseline)}:\n${deltaTable(deltas, logger.colored === true)}`)
  const { path: where, source, run_id, started_at, commit } = baseline
  return { baseline: { path: where, source, run_id, started_at, commit }, deltas }
}
