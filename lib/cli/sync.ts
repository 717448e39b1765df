import { statSync } from 'node:fs'
import { UsageError, exitCodesHelp } from '../core/errors.ts'
import { UsageWithHelpError, formatFlags, listFlag, type FlagSpec, type FlagValues, projectDirFrom } from '../core/flags.ts'
import { K8S_FLAGS, SSH_FLAGS, kubeTargetFrom, openKubeTarget, openSshTarget, sshTargetFrom } from '../transport/targets.ts'
import { SYNC_FLAGS, sizeLimitsFrom } from '../sync/flags.ts'
import type { Logger } from '../core/log.ts'
import { prepareSync, pushLocked } from '../sync/sync.ts'
import { bothOrFirstError } from '../core/async.ts'

// scripts/remote_eval/sync_code.ts: push the code only, to an SSH host or a pod. The eval runners
// do the same as their sync step; this is for iterating on code between runs.

export const SYNC_FLAGS_ALL: readonly FlagSpec[] = [
  ...SSH_FLAGS,
  ...K8S_FLAGS,
  ...SYNC_FLAGS,
  { name: 'help', kind: 'boolean', description: 'print this help' },
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

const SSH_ONLY = ['remote-dir', 'ssh-option', 'ssh-config']
const K8S_ONLY = ['context', 'namespace', 'container']

/** Which kind of target the flags name; refuses mixed or missing targets. */
function targetKind(argv: readonly string[]): 'ssh' | 'k8s' {
  const given = (name: string) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  const ssh = given('host')
  const k8s = given('pod')
  if (ssh && k8s) throw new UsageWithHelpError('Give either --host (an SSH host) or --pod (a Kubernetes pod), not both.')
  if (!ssh && !k8s) {
    throw new UsageWithHelpError(
      'No target: give --host HOST --remote-dir DIR for an SSH host, or --context C --namespace NS --pod POD for a pod.',
    )
  }
  const wrong = (ssh ? [...K8S_ONLY, 'workdir'] : SSH_ONLY).find(given)
  if (wrong)
    throw new UsageError(
      `--${wrong} does not apply to ${ssh ? 'an SSH host' : 'a pod'}${wrong === 'remote-dir' ? '; in a pod use --workdir' : wrong === 'workdir' ? '; on an SSH host use --remote-dir' : ''}.`,
    )
  return ssh ? 'ssh' : 'k8s'
}

/** The run() of sync_code.ts: check everything, connect, sync, return the summary. */
export async function syncCode(flags: FlagValues, { logger }: { logger: Logger }, argv = process.argv.slice(2)) {
  const kind = targetKind(argv)
  const remoteDir = kind === 'ssh' ? sshTargetFrom(flags).remoteDir : kubeTargetFrom(flags).remoteDir
  const limits = sizeLimitsFrom(flags)
  const projectDir = projectDirFrom(flags)
  if (!statSync(projectDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`--project-dir ${projectDir} is not a directory. Run from the eval repo or pass --project-dir.`)
  }
  // Choosing files needs no connection: do it while the connection opens.
  const [target, prepared] = await bothOrFirstError(
    kind === 'ssh' ? openSshTarget(flags, logger) : openKubeTarget(flags, logger),
    prepareSync({ projectDir, remoteDir, limits, logger }),
  )
  const report = await pushLocked({
    transport: target.transport,
    prepared,
    wait: flags['no-wait'] !== true,
    remoteDirFlag: target.remoteDirFlag,
    adopt: flags['adopt-remote-dir'] === true,
    full: flags['full-sync'] === true,
    allowSecrets: listFlag(flags, 'allow-secret'),
    logger,
  })
  logger.step('done', report.unchanged ? 'code already up to date' : `code synced to ${report.remoteDir} on ${target.transport.target}`)
  return {
    target: target.transport.target,
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
  }
}
