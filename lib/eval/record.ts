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
