import { lstatSync, readdirSync, readFileSync } from 'node:fs'
import { readlink, rename, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { $ } from 'zx/core'

// What stays beside each fetched report: run.json (where and how it ran: target, ids, the code's
// commit, the flags, timings, exit code) and run.log (the run's log as the target kept it,
// redacted there); and reports/evaluations/latest, a link to the newest report.

/** The code's commit and whether the work tree differed from it (null outside a git work tree). */
export async function codeVersion(projectDir: string): Promise<{ commit: string; dirty: boolean } | null> {
  const commit = await $({ cwd: projectDir, nothrow: true, quiet: true })`git rev-parse HEAD`
  if (commit.exitCode !== 0) return null
  const status = await $({ cwd: projectDir, nothrow: true, quiet: true })`git status --porcelain --untracked-files=no`
  return { commit: commit.stdout.trim(), dirty: status.exitCode !== 0 || status.stdout.trim() !== '' }
}

/** Writes run.json and, when there is one, run.log into the fetched report directory. */
export async function writeRunRecord(
  localRunDir: string,
  record: Record<string, unknown>,
  log: readonly string[] | undefined,
): Promise<void> {
  await writeFile(path.join(localRunDir, 'run.json'), `${JSON.stringify(record, null, 2)}\n`)
  if (log) await writeFile(path.join(localRunDir, 'run.log'), log.map((line) => `${line}\n`).join(''))
}

/** Points reportsDir/latest at the report folder `name` (a relative link, replaced whole). */
export async function pointLatest(reportsDir: string, name: string): Promise<void> {
  const latest = path.join(reportsDir, 'latest')
  // Only a link of ours is replaced: a file or directory a user put there stays.
  const current = await readlink(latest).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? null : undefined))
  if (current === undefined) return
  const fresh = `${latest}.${process.pid}`
  await rm(fresh, { force: true })
  await symlink(name, fresh)
  await rename(fresh, latest)
}

/** A fetched run as its run.json tells it (the fields the deltas and the history page use). */
export interface LocalRun {
  /** The report folder's name (the eval's run_id) and its path. */
  folder: string
  dir: string
  run_id: string | null
  target: string | null
  suite: string | null
  split: string | null
  state: string | null
  exit_code: number | null
  started_at: string | null
  commit: string | null
  dirty: boolean
}

const text = (value: unknown) => (typeof value === 'string' ? value : null)

/** The run.json of a report directory, when this tool wrote one there (null otherwise, or when unreadable). */
export function readRunRecord(dir: string): LocalRun | null {
  const file = path.join(dir, 'run.json')
  if (!lstatSync(file, { throwIfNoEntry: false })?.isFile()) return null
  let record: Record<string, unknown>
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {
    return null
  }
  if (!record || typeof record !== 'object' || Array.isArray(record)) return null
  const code = (record.code ?? {}) as Record<string, unknown>
  return {
    folder: path.basename(dir),
    dir,
    run_id: text(record.run_id),
    target: text(record.target),
    suite: text(record.suite),
    split: text(record.split),
    state: text(record.state),
    exit_code: typeof record.exit_code === 'number' ? record.exit_code : null,
    started_at: text(record.started_at),
    commit: text(code.commit),
    dirty: code.dirty === true,
  }
}

/** The finished local runs of a suite and split, oldest first. */
export function finishedRuns(reportsDir: string, of: { suite: string; split: string }): LocalRun[] {
  return localRuns(reportsDir).filter((r) => r.suite === of.suite && r.split === of.split && r.state === 'finished')
}

/** The runs fetched into reportsDir (its real directories with a run.json of ours), oldest first. */
export function localRuns(reportsDir: string): LocalRun[] {
  let names: string[]
  try {
    names = readdirSync(reportsDir)
  } catch {
    return []
  }
  return names
    .filter((name) => lstatSync(path.join(reportsDir, name), { throwIfNoEntry: false })?.isDirectory())
    .map((name) => readRunRecord(path.join(reportsDir, name)))
    .filter((run): run is LocalRun => run !== null)
    .sort((a, b) => (a.started_at ?? '').localeCompare(b.started_at ?? '') || a.folder.localeCompare(b.folder))
}
