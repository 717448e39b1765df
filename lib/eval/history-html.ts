// The history page as text: a table of the local runs, newest first, and per suite and split a
// chart of each task's headline scores across runs, oldest first, so a drop shows at a glance.
// Static inline SVG with no script and nothing to fetch (its Content-Security-Policy allows
// neither). Every name and value on it came from a run's files, so every one is escaped.
import { escapeControls } from '../core/filenames.ts'
import { rowName, SCORES, type MetricRow, type Score } from './metrics.ts'
import type { LocalRun } from './record.ts'

/** One run as the page shows it: its run.json, and what its folder adds. */
export interface HistoryRun extends LocalRun {
  /** Whether the folder holds a report.md to link to (else the link is to the folder). */
  hasReport: boolean
  /** Each task's headline row (headlineRows); none without a readable metrics.csv. */
  headline: MetricRow[]
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text safe both as HTML text and inside a quoted attribute; control characters shown as escapes. */
const html = (text: string) => escapeControls(text).replace(/[&<>"']/g, (char) => ENTITIES[char]!)

/** A score the page can place: a finite number from 0 to 1. */
const plottable = (value: number | null): value is number => value !== null && Number.isFinite(value) && value >= 0 && value <= 1

const shown = (value: number | null) => (plottable(value) ? value.toFixed(3) : '-')
const orUnknown = (text: string | null) => text ?? '?'

const commitCell = ({ commit, dirty }: HistoryRun) => (commit === null ? '-' : `${commit.slice(0, 10)}${dirty ? ' (dirty)' : ''}`)

function metricsCell(headline: readonly MetricRow[]): string {
  if (!headline.length) return '-'
  return headline
    .map(
      (row) =>
        `<div title="${html(rowName(row))}"><b>${html(row.task)}</b> f1 ${shown(row.scores.f1)} · P ${shown(row.scores.precision)} · R ${shown(row.scores.recall)}</div>`,
    )
    .join('')
}

function tableRow(run: HistoryRun): string {
  // Relative and percent-encoded: a folder named like a URL or with a # in it still links to itself.
  const href = `./${encodeURIComponent(run.folder)}/${run.hasReport ? 'report.md' : ''}`
  const state = `${orUnknown(run.state)}${run.exit_code === null ? '' : ` (exit ${run.exit_code})`}`
  const failed = run.exit_code !== null && run.exit_code !== 0
  const cells = [
    html(run.started_at ?? '-'),
    // A line may break after an underscore of a long run id, and nowhere inside a word.
    `<a href="${html(href)}">${html(run.folder).replace(/_/g, '_<wbr>')}</a>`,
    html(run.target ?? '-'),
    html(orUnknown(run.suite)),
    html(orUnknown(run.split)),
    html(commitCell(run)),
    html(state),
    metricsCell(run.headline),
  ]
  return `<tr data-run="${html(run.folder)}"${failed ? ' class="failed"' : ''}>${cells.map((cell) => `<td>${cell}</td>`).join('')}</tr>`
}

function runsTable(newestFirst: readonly HistoryRun[]): string {
  const heads = ['started', 'report', 'target', 'suite', 'split', 'commit', 'state', 'headline (per task)']
  return `<table class="runs"><thead><tr>${heads.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>
${newestFirst.map(tableRow).join('\n')}
</tbody></table>`
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2']
const DASHES: Record<Score, string> = { f1: '', precision: '7 4', recall: '2 3' }
// f1 last, so its points sit on top of the precision and recall drawn under them.
const DRAW_ORDER: readonly Score[] = ['precision', 'recall', 'f1']
const PLOT = { left: 96, top: 16, height: 240, bottom: 70, step: 64, minWidth: 320, maxWidth: 1100, right: 24 }

const tenths = (n: number) => Math.round(n * 10) / 10

/** Where each run of a chart sits across it, and where a score sits up it. */
function axes(runs: number) {
  const width = Math.min(PLOT.maxWidth, Math.max(PLOT.minWidth, (runs - 1) * PLOT.step))
  return {
    width: PLOT.left + width + PLOT.right,
    height: PLOT.top + PLOT.height + PLOT.bottom,
    x: (i: number) => tenths(PLOT.left + (runs === 1 ? width / 2 : (i * width) / (runs - 1))),
    y: (value: number) => tenths(PLOT.top + (1 - value) * PLOT.height),
  }
}

function grid(chart: ReturnType<typeof axes>, runs: readonly HistoryRun[]): string {
  const lines = [0, 0.25, 0.5, 0.75, 1].map(
    (v) =>
      `<line x1="${PLOT.left}" x2="${chart.width - PLOT.right}" y1="${chart.y(v)}" y2="${chart.y(v)}" stroke="#ddd"/>` +
      `<text x="${PLOT.left - 6}" y="${chart.y(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`,
  )
  // Every run gets a tick; only some get a label when there are too many to read.
  const every = Math.ceil(runs.length / 20)
  const ticks = runs.map((run, i) => {
    const x = chart.x(i)
    const label = i % every === 0 ? (run.started_at ?? run.folder).slice(0, 16).replace('T', ' ') : ''
    const base = chart.y(0)
    return (
      `<line x1="${x}" x2="${x}" y1="${base}" y2="${base + 4}" stroke="#888"/>` +
      (label ? `<text x="${x}" y="${base + 16}" text-anchor="end" transform="rotate(-30 ${x} ${base + 16})">${html(label)}</text>` : '')
    )
  })
  return [...lines, ...ticks].join('')
}

interface Line {
  task: string
  score: Score
  colour: string
}

/** One task's line for one score, and a point per run that has that score. */
function series(chart: ReturnType<typeof axes>, runs: readonly HistoryRun[], { task, score, colour }: Line): string {
  const points = runs.flatMap((run, i) => {
    const value = run.headline.find((row) => row.task === task)?.scores[score] ?? null
    return plottable(value) ? [{ run, x: chart.x(i), y: chart.y(value), value }] : []
  })
  const dash = DASHES[score] ? ` stroke-dasharray="${DASHES[score]}"` : ''
  const line =
    points.length > 1
      ? `<polyline points="${points.map((p) => `${p.x},${p.y}`).join(' ')}" fill="none" stroke="${colour}" stroke-width="${score === 'f1' ? 2 : 1.5}"${dash}/>`
      : ''
  const circles = points.map(({ run, x, y, value }) => {
    const tip = [`${task} ${score} ${value.toFixed(3)}`, run.folder, run.started_at ?? 'start unknown'].map(html).join('\n')
    const fill = score === 'f1' ? colour : '#fff'
    return `<circle cx="${x}" cy="${y}" r="${score === 'f1' ? 4 : 3}" fill="${fill}" stroke="${colour}" data-run="${html(run.folder)}" data-task="${html(task)}" data-score="${score}" data-value="${value}"><title>${tip}</title></circle>`
  })
  return line + circles.join('')
}

function legend(tasks: readonly string[]): string {
  const swatch = (colour: string, score: Score) =>
    `<svg width="28" height="10" aria-hidden="true"><line x1="0" x2="28" y1="5" y2="5" stroke="${colour}" stroke-width="2"${DASHES[score] ? ` stroke-dasharray="${DASHES[score]}"` : ''}/></svg>`
  const taskItems = tasks.map((task, i) => `<li>${swatch(PALETTE[i % PALETTE.length]!, 'f1')} ${html(task)}</li>`)
  const scoreItems = SCORES.map((score) => `<li>${swatch('#444', score)} ${score}</li>`)
  return `<ul class="legend">${[...taskItems, ...scoreItems].join('')}</ul>`
}

function chartSection(suite: string, split: string, runs: readonly HistoryRun[]): string {
  const tasks = [...new Set(runs.flatMap((run) => run.headline.map((row) => row.task)))].sort()
  const chart = axes(runs.length)
  const drawn = tasks.flatMap((task, i) =>
    DRAW_ORDER.map((score) => series(chart, runs, { task, score, colour: PALETTE[i % PALETTE.length]! })),
  )
  return `<section class="chart" data-suite="${html(suite)}" data-split="${html(split)}">
<h3>${html(suite)} / ${html(split)}: ${runs.length} run(s)</h3>
<svg xmlns="http://www.w3.org/2000/svg" width="${chart.width}" height="${chart.height}" viewBox="0 0 ${chart.width} ${chart.height}" role="img">${grid(chart, runs)}${drawn.join('')}</svg>
${tasks.length ? legend(tasks) : '<p>No scores: none of these runs has a metrics.csv with an f1.</p>'}
</section>`
}

/** The runs grouped by suite and split, each group oldest first, the groups in name order. */
function groups(oldestFirst: readonly HistoryRun[]): [string, string, HistoryRun[]][] {
  const found = new Map<string, [string, string, HistoryRun[]]>()
  for (const run of oldestFirst) {
    const [suite, split] = [orUnknown(run.suite), orUnknown(run.split)]
    const key = JSON.stringify([suite, split])
    if (!found.has(key)) found.set(key, [suite, split, []])
    found.get(key)![2].push(run)
  }
  return [...found.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, group]) => group)
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table.runs{border-collapse:collapse}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}tr.failed td{background:#fdecea}td:first-child{white-space:nowrap}td{overflow-wrap:break-word}
section.chart{margin:24px 0}svg text{font-size:11px;fill:#444}
ul.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px}`

/** The whole page for these runs, given oldest first (as localRuns reads them): the table newest first, a chart per suite and split. */
export function historyHtml(oldestFirst: readonly HistoryRun[]): string {
  const body = oldestFirst.length
    ? `<p>${oldestFirst.length} run(s), newest first. Headline: each task's first combined row with an f1 (else its first row with one).</p>
${runsTable([...oldestFirst].reverse())}
<h2>Scores across runs</h2>
${groups(oldestFirst)
  .map(([suite, split, group]) => chartSection(suite, split, group))
  .join('\n')}`
    : '<p>No runs yet.</p>'
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Eval history</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Eval history</h1>
${body}
</body>
</html>
`
}
