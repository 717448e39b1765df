import { statSync } from 'node:fs'
import { UsageError, exitCodesHelp } from '../core/errors.ts'
import { formatFlags, listFlag, type FlagSpec, type FlagValues, projectDirFrom, STANDARD_FLAGS } from '../core/flags.ts'
import { TARGET_KINDS, kindNamedBy } from '../transport/kinds.ts'
import { SYNC_FLAGS, sizeLimitsFrom } from '../sync/flags.ts'
import type { Logger } from '../core/log.ts'
import { prepareSync, pushLocked } from '../sync/sync.ts'
import { bothOrFirstError } from '../core/async.ts'

// scripts/remote_eval/sync_code.ts: push the code only, to an SSH host or a pod. The eval runners
// do the same as their sync step; this is for iterating on code between runs.

/** sync_code.ts's own: the eval runners have a --dry-run of their own, which connects to nothing. */
const SYNC_CODE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'dry-run',
    kind: 'boolean',
    description: 'connect and compare, then name what would be sent and removed; send nothing, change nothing in the remote dir',
  },
  { name: 'verbose', kind: 'boolean', description: 'name every file sent and removed (on stderr, and as sent and removed in the JSON)' },
]

export const SYNC_FLAGS_ALL: readonly FlagSpec[] = [
  ...TARGET_KINDS.flatMap((kind) => kind.flags),
  ...SYNC_FLAGS,
  ...SYNC_CODE_FLAGS,
  ...STANDARD_FLAGS,
]

export const SYNC_USAGE = `Usage:
  scripts/remote_eval/sync_code.ts --host HOST --remote-dir DIR [options]
  scripts/remote_eval/sync_code.ts --context CONTEXT --namespace NS --pod POD [--container NAME] [--workdir DIR] [options]

Pushes the eval repo's code to a GPU host (rsync over one SSH connection) or into a pod (tar over
kubectl exec). Files are chosen by git's rules (.gitignore applies), then the built-in exclude list
removes what never ships: .git/, .env*, .venv/, models, datasets, reports/, caches, node_modules/.
Only new or changed files are sent; files you deleted are deleted on the target too, but only
files an earlier push put there, and only in a directory this tool claimed (.remote-eval/owner).
Prints a JSON summary on stdout.

Options:
${formatFlags(SYNC_FLAGS_ALL)}

${exitCodesHelp(['ok', 'usage', 'localPrereq', 'remotePrereq', 'transport', 'targetBusy', 'interrupted'])}
`

/** The run() of sync_code.ts: check everything, connect, sync, return the summary. */
export async function syncCode(flags: FlagValues, { logger }: { logger: Logger }, argv = process.argv.slice(2)) {
  const kind = kindNamedBy(argv)
  const target = kind.fromFlags(flags)
  const remoteDir = target.remoteDir
  const limits = sizeLimitsFrom(flags)
  const projectDir = projectDirFrom(flags)
  if (!statSync(projectDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`--project-dir ${projectDir} is not a directory. Run from the eval repo or pass --project-dir.`)
  }
  // Choosing files needs no connection: do it while the connection opens.
  const [transport, prepared] = await bothOrFirstError(kind.open(target, logger), prepareSync({ projectDir, remoteDir, limits, logger }))
  const report = await pushLocked({
    transport,
    prepared,
    wait: flags['no-wait'] !== true,
    remoteDirFlag: target.remoteDirFlag,
    adopt: flags['adopt-remote-dir'] === true,
    full: flags['full-sync'] === true,
    allowSecrets: listFlag(flags, 'allow-secret'),
    dryRun: flags['dry-run'] === true,
    logger,
  })
  const named = flags.verbose === true || report.dryRun
  if (named) {
    for (const name of report.sent) logger.step('sync', `${report.dryRun ? 'would send' : 'sent'}: ${name}`)
    for (const name of report.removed) logger.step('sync', `${report.dryRun ? 'would remove' : 'removed'}: ${name}`)
  }
  const done = report.unchanged
    ? 'code already up to date'
    : report.dryRun
      ? `dry run: nothing sent to ${report.remoteDir} on ${transport.target}`
      : `code synced to ${report.remoteDir} on ${transport.target}`
  logger.step('done', done)
  return {
    dry_run: report.dryRun,
    target: transport.target,
    remote_dir: report.remoteDir,
    files: report.files,
    total_bytes: report.totalBytes,
    unchanged: report.unchanged,
    claimed: report.claimed,
    method: report.method,
    files_sent: report.filesSent,
    files_removed: report.filesRemoved,
    files_kept: report.filesKept,
    bytes_sent: report.bytesSent,
    ...(named ? { sent: report.sent, removed: report.removed } : {}),
  }
}
