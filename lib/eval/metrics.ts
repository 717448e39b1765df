// The rows of an eval's metrics.csv as data: what the delta table and the history page compare.
// The real eval writes one row per (task, scope, dataset, label, metric_family), with precision,
// recall and f1 where the metric has them (mask_leakage has a `value` instead); report.json holds
// the same figures, which metricsFromReport reads when a baseline is a report.json alone.
import { lstatSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { parseCsv } from './csv.ts'

/** The scores compared between runs. */
export const SCORES = ['precision', 'recall', 'f1'] as const
export type Score = (typeof SCORES)[number]

/** One row of metrics.csv: what it measures (key) and its scores (null where empty or not a number). */
export interface MetricRow {
  task: string
  scope: string
  dataset: string
  label: string
  metric_family: string
  scores: Record<Score, number | null>
}

const KEY_COLUMNS = ['task', 'scope', 'dataset', 'label', 'metric_family'] as const

/** The row's identity across runs: its task, scope, dataset, label and metric family. */
export function rowKey(row: MetricRow): string {
  return KEY_COLUMNS.map((c) => row[c]).join('\u0000')
}

/** "span_detection combined exact_canonical", "span_detection label EMAIL": the row for people. */
export function rowName(row: Omit<MetricRow, 'scores'>): string {
  return [row.task, row.scope, row.dataset, row.label, row.metric_family].filter((part) => part !== '').join(' ')
}

const number = (text: string | undefined): number | null => {
  if (text === undefined || text.trim() === '') return null
  const value = Number(text)
  return Number.isFinite(value) ? value : null
}

/** The rows of a metrics.csv (a header line, then one line per row); rows without a task are skipped. */
export function parseMetrics(csv: string): MetricRow[] {
  const [header, ...lines] = parseCsv(csv)
  if (!header) return []
  const at = (line: string[], column: string) => {
    const i = header.indexOf(column)
    return i < 0 ? undefined : line[i]
  }
  return lines
    .map((line) => ({
      task: at(line, 'task') ?? '',
      scope: at(line, 'scope') ?? '',
      dataset: at(line, 'dataset') ?? '',
      label: at(line, 'label') ?? '',
      metric_family: at(line, 'metric_family') ?? '',
      scores: Object.fromEntries(SCORES.map((s) => [s, number(at(line, s))])) as Record<Score, number | null>,
    }))
    .filter((row) => row.task !== '')
}

const SPAN_FAMILIES = ['exact_canonical', 'overlap_canonical', 'char_canonical', 'token_canonical']

type Json = Record<string, unknown>
const object = (value: unknown): Json => (value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : {})
const scoresOf = (metric: Json) =>
  Object.fromEntries(SCORES.map((s) => [s, typeof metric[s] === 'number' && Number.isFinite(metric[s]) ? metric[s] : null])) as Record<
    Score,
    number | null
  >

/**
 * The rows the real eval writes to metrics.csv, read from its report.json: span_detection's combined
 * metric families and its per-label character metrics, policy_action's policies, mask_leakage.
 */
export function metricsFromReport(report: unknown): MetricRow[] {
  const tasks = object(object(report).tasks)
  const rows: MetricRow[] = []
  const add = (task: string, [scope, label, family]: [string, string, string], metric: unknown) =>
    rows.push({ task, scope, dataset: '', label, metric_family: family, scores: scoresOf(object(metric)) })
  const combined = object(object(object(tasks.span_detection).metrics).combined)
  for (const family of SPAN_FAMILIES) if (combined[family]) add('span_detection', ['combined', '', family], combined[family])
  for (const [label, metric] of Object.entries(object(combined.per_label_char)))
    add('span_detection', ['label', label, 'per_label_char'], metric)
  for (const [policy, payload] of Object.entries(object(object(tasks.policy_action).policies)))
    add('policy_action', ['policy', policy, 'binary'], object(payload).metrics)
  if (tasks.mask_leakage) add('mask_leakage', ['combined', '', 'leakage_fraction'], {})
  return rows
}

/**
 * Each task's headline row, the one a history chart follows: its first combined row with an f1
 * (span_detection's families come in the real eval's order), else its first row with an f1.
 */
export function headlineRows(rows: readonly MetricRow[]): MetricRow[] {
  const scored = rows.filter((row) => row.scores.f1 !== null)
  const tasks = [...new Set(scored.map((row) => row.task))]
  return tasks.map((task) => {
    const own = scored.filter((row) => row.task === task)
    return own.find((row) => row.scope === 'combined') ?? own[0]!
  })
}

const regularFile = (file: string) => lstatSync(file, { throwIfNoEntry: false })?.isFile() === true

/**
 * A fetched run's rows: the metrics.csv beside `report` (as the eval writes both), else the report
 * itself (a merged report has no metrics.csv). Only regular files are read; null when neither is
 * there; a report that is not JSON throws.
 */
export function readMetricRows(report: string): MetricRow[] | null {
  const csv = path.join(path.dirname(report), 'metrics.csv')
  if (regularFile(csv)) return parseMetrics(readFileSync(csv, 'utf8'))
  if (!regularFile(report)) return null
  return metricsFromReport(JSON.parse(readFileSync(report, 'utf8')))
}
