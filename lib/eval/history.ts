// reports/evaluations/index.html, written again after every fetched run: the history of the local
// runs (the page itself is history-html.ts). The runs are record.ts's localRuns, the folders with
// a run.json of ours; what is in a run's metrics.csv came from the target, so one that is not a
// regular file (a link could point anywhere) is not read.
import { randomBytes } from 'node:crypto'
import { lstat, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { historyHtml, type HistoryRun } from './history-html.ts'
import type { Logger } from '../core/log.ts'
import { headlineRows, readMetricRows, type MetricRow } from './metrics.ts'
import { localRuns, pointLatest, type LocalRun } from './record.ts'

const isRegular = (file: string) =>
  lstat(file).then(
    (stat) => stat.isFile(),
    () => false,
  )

/** A run's metric rows (readMetricRows); none when unreadable. */
function metricRows(dir: string): MetricRow[] {
  try {
    return readMetricRows(path.join(dir, 'report.json')) ?? []
  } catch {
    return []
  }
}

/** A local run with what the page adds to its run.json: its headline rows, whether it has a report.md. */
async function withScores(run: LocalRun): Promise<HistoryRun> {
  return {
    ...run,
    hasReport: await isRegular(path.join(run.dir, 'report.md')),
    headline: headlineRows(metricRows(run.dir)),
  }
}

/** The runs of reportsDir as the history page shows them, oldest first. */
export function readHistory(reportsDir: string): Promise<HistoryRun[]> {
  return Promise.all(localRuns(reportsDir).map(withScores))
}

/** Writes reportsDir/index.html from the runs there, whole or not at all; returns its path and how many runs it lists. */
export async function writeHistoryPage(reportsDir: string): Promise<{ path: string; runs: number }> {
  const runs = await readHistory(reportsDir)
  const page = path.join(reportsDir, 'index.html')
  // Renamed into place: a reader (or a second run writing it at once) never sees half a page.
  const fresh = `${page}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(fresh, historyHtml(runs), { flag: 'wx' })
    await rename(fresh, page)
  } finally {
    await rm(fresh, { force: true })
  }
  return { path: page, runs: runs.length }
}

/**
 * After a run is fetched and recorded: reportsDir/latest points at it, and the history page is
 * written again. Returns the line that names the page; a page that cannot be written is a warning.
 */
export async function publishRun(reportsDir: string, folder: string, logger: Logger): Promise<string | null> {
  await pointLatest(reportsDir, folder)
  try {
    const page = await writeHistoryPage(reportsDir)
    return `history of the ${page.runs} local run(s): ${pathToFileURL(page.path).href}`
  } catch (error) {
    logger.step('warn', `could not write the history page in ${reportsDir}: ${(error as Error).message}`)
    return null
  }
}
