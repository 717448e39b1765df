// Tables for people, on stderr: the metrics of a fetched metrics.csv, and the runs on a target.
import { escapeControls } from '../core/filenames.ts'
import { formatBytes } from '../core/units.ts'
import { SCORES, type MetricRow } from './metrics.ts'
import type { RunInfo } from './runs.ts'
import { parseCsv } from './csv.ts'

const COLUMNS = [
  ['task', 'task'],
  ['scope', 'scope'],
  ['dataset', 'dataset'],
  ['label', 'label'],
  ['metric_family', 'metric family'],
  ['precision', 'precision'],
  ['recall', 'recall'],
  ['f1', 'f1'],
] as const

/** Columns padded to their widest cell; columns from `rightFrom` on are right-aligned (numbers). */
function table(cells: string[][], rightFrom: number): string {
  const widths = cells[0]!.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)))
  return cells
    .map((r) =>
      r
        .map((v, c) => (c >= rightFrom ? v.padStart(widths[c]!) : v.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** The table of metrics.csv: task, scope, dataset, label, metric family, precision, recall, f1 (those it has). */
export function metricsTable(csv: string): string {
  const [header, ...rows] = parseCsv(csv)
  if (!header) return '(metrics.csv is empty)'
  const columns = COLUMNS.filter(([name]) => header.includes(name))
  const index = columns.map(([name]) => header.indexOf(name))
  // Cells are the eval's text: a line break or an escape sequence in one must not forge a line of the table.
  return table([columns.map(([, title]) => title), ...rows.map((r) => index.map((i) => escapeControls(r[i] ?? '')))], columns.length - 3)
}

/** The table of metric rows read from a report.json (a merged one has no metrics.csv). */
export function rowsTable(rows: readonly MetricRow[]): string {
  const score = (value: number | null) => (value === null ? '' : String(Number(value.toFixed(6))))
  const cells = rows.map((r) => [r.task, r.scope, r.label, r.metric_family, ...SCORES.map((s) => score(r.scores[s]))])
  const columns = COLUMNS.filter(([name]) => name !== 'dataset').map(([, title]) => title)
  return table([columns, ...cells.map((r) => r.map((v) => escapeControls(v)))], columns.length - 3)
}

/** The table of --list: one run per line, oldest first. */
export function runsTable(runs: readonly RunInfo[]): string {
  const rows = runs.map((r) => [
    r.id,
    r.run_id ?? '-',
    r.state,
    r.exit_code === null ? '-' : String(r.exit_code),
    r.started_at ?? '-',
    r.ended_at ?? '-',
    `${r.suite ?? '?'}/${r.split ?? '?'}`,
    r.gpus ?? '-',
    r.ports ?? '-',
    r.bytes === null ? '-' : formatBytes(r.bytes),
  ])
  // A column for the shards' groups only where there are some (--shard runs).
  const header = ['run', 'report folder (run_id)', 'state', 'exit', 'started', 'ended', 'suite/split', 'gpus', 'ports', 'size']
  if (!runs.some((r) => r.group !== null)) return table([header, ...rows], 9)
  const group = (r: RunInfo) => (r.group ? `${r.group} #${r.shard ?? '?'}` : '-')
  const withGroup = (row: string[], name: string) => [...row.slice(0, 9), name, row[9]!]
  return table([withGroup(header, 'group'), ...rows.map((row, i) => withGroup(row, group(runs[i]!)))], 10)
}
