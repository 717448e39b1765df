// reports/evaluations/index.html, written again after every fetched run: the history of the local
// runs (the page itself is history-html.ts). The runs are record.ts's localRuns, the folders with
// a run.json of ours; what is in a run's metrics.csv came from the target, so one that is not a
// regular file (a link could point anywhere) is not read.
import { randomBytes } from 'node:crypto'
import { lstat, readFile, rename, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { historyHtml, type HistoryRun } from './history-html.ts'
import { headlineRows, parseMetrics } from './metrics.ts'
import { localRuns, type LocalRun } from './record.ts'

const isRegular = (file: string) =>
  lstat(file).then(
    (stat) => stat.isFile(),
    () => false,
  )

/** A local run with what the page adds to its run.json: its headline rows, whether it has a report.md. */
async function withScores(run: LocalRun): Promise<HistoryRun> {
  const csv = path.join(run.dir, 'metrics.csv')
  const metrics = (await isRegular(csv)) ? await readFile(csv, 'utf8') : null
  return {
    ...run,
    hasReport: await isRegular(path.join(run.dir, 'report.md')),
    headline: metrics === null ? [] : headlineRows(parseMetrics(metrics)),
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
