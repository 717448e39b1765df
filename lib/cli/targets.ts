import path from 'node:path'
import { DEFAULT_LIMITS, type SizeLimits } from '../sync/guard.ts'
import { validateRemoteDir } from '../sync/remote-dir.ts'
import { KubectlTransport, validateKubeTarget } from '../transport/kubectl.ts'
import { SshTransport, validateSshTarget } from '../transport/ssh.ts'
import type { Transport } from '../transport/types.ts'
import { parseSize } from '../units.ts'
import type { Logger } from '../log.ts'
import { onCleanup } from './cleanup.ts'
import { UsageError } from './errors.ts'
import { listFlag, stringFlag, type FlagSpec, type FlagValues } from './flags.ts'

// The flags that name a target and how code is synced to it, shared by every script that reaches
// one; and the one place that turns them into a transport.

export const DEFAULT_WORKDIR = '/workdir/guardrails'

export const SSH_FLAGS: readonly FlagSpec[] = [
  { name: 'host', kind: 'string', value: 'HOST', description: 'SSH target: an alias from ~/.ssh/config, host or user@host' },
  { name: 'remote-dir', kind: 'string', value: 'DIR', description: 'absolute directory on the host that receives the code' },
  { name: 'ssh-option', kind: 'list', value: 'KEY=VALUE', description: 'extra ssh -o option, e.g. Port=2222 or ProxyJump=bastion' },
  { name: 'ssh-config', kind: 'string', value: 'FILE', description: 'ssh_config file to use instead of ~/.ssh/config (ssh -F)' },
]

export const K8S_FLAGS: readonly FlagSpec[] = [
  { name: 'context', kind: 'string', value: 'CONTEXT', description: 'kubeconfig context (kubectl --context)' },
  { name: 'namespace', kind: 'string', value: 'NAMESPACE', description: 'namespace of the pod' },
  { name: 'pod', kind: 'string', value: 'POD', description: 'running pod to exec into' },
  { name: 'container', kind: 'string', value: 'NAME', description: "container in the pod (default: kubectl's default container)" },
  { name: 'workdir', kind: 'string', value: 'DIR', description: 'absolute directory in the pod that receives the code', default: DEFAULT_WORKDIR },
]

export const SYNC_FLAGS: readonly FlagSpec[] = [
  { name: 'project-dir', kind: 'string', value: 'DIR', description: 'the eval repo to sync (default: the current directory)' },
  { name: 'max-file-size', kind: 'string', value: 'SIZE', description: 'refuse to sync any file larger than this', default: '50M' },
  { name: 'max-total-size', kind: 'string', value: 'SIZE', description: 'refuse to sync more than this in total', default: '500M' },
  { name: 'adopt-remote-dir', kind: 'boolean', description: 'sync into a non-empty directory this tool did not create' },
  { name: 'full-sync', kind: 'boolean', description: 'repair a remote edited by hand: compare the content really there with the local files and restore what differs or is missing' },
  { name: 'allow-secret', kind: 'list', value: 'PATH', description: "send this file although it holds a secret's value or a private key (relative to the project)" },
  { name: 'no-wait', kind: 'boolean', description: 'when another runner is syncing into the same directory, fail at once (exit 12) instead of waiting' },
]

export interface SyncTarget {
  transport: Transport
  remoteDir: string
  remoteDirFlag: string
}

/** Reads the size limits; a bad size is a UsageError naming its flag. */
export function sizeLimitsFrom(flags: FlagValues): SizeLimits {
  const read = (name: string, fallback: number) => {
    const text = stringFlag(flags, name)
    if (text === undefined) return fallback
    const bytes = parseSize(text)
    if (bytes === null || bytes <= 0) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a size. Write e.g. 50M, 2G or 500k.`)
    return bytes
  }
  return { maxFileBytes: read('max-file-size', DEFAULT_LIMITS.maxFileBytes), maxTotalBytes: read('max-total-size', DEFAULT_LIMITS.maxTotalBytes) }
}

/** The project directory: --project-dir, or the current directory. */
export function projectDirFrom(flags: FlagValues): string {
  return path.resolve(stringFlag(flags, 'project-dir') ?? process.cwd())
}

/** Requires a flag; the message names it and says what it is for. */
export function required(flags: FlagValues, name: string, what: string): string {
  const value = stringFlag(flags, name)
  if (value === undefined) throw new UsageError(`--${name} is required: ${what}.`)
  return value
}

/** Checks every SSH target flag without connecting; returns what SshTransport.open needs. */
export function sshTargetFrom(flags: FlagValues) {
  const host = required(flags, 'host', 'the SSH host to run on')
  const sshOptions = listFlag(flags, 'ssh-option')
  validateSshTarget(host, sshOptions)
  const remoteDir = validateRemoteDir(required(flags, 'remote-dir', 'the absolute directory on the host that receives the code'), '--remote-dir')
  // Absolute, because rsync's ssh runs from the project directory, not from where we were started.
  const configFile = stringFlag(flags, 'ssh-config')
  return { host, sshOptions, configFile: configFile === undefined ? undefined : path.resolve(configFile), remoteDir }
}

/** Checks every Kubernetes target flag without contacting the cluster. */
export function kubeTargetFrom(flags: FlagValues) {
  const target = {
    context: required(flags, 'context', 'the kubeconfig context of the cluster'),
    namespace: required(flags, 'namespace', 'the namespace of the pod'),
    pod: required(flags, 'pod', 'the running pod to exec into'),
    container: stringFlag(flags, 'container'),
  }
  validateKubeTarget(target)
  const remoteDir = validateRemoteDir(stringFlag(flags, 'workdir') ?? DEFAULT_WORKDIR, '--workdir')
  return { ...target, remoteDir }
}

/** Opens the SSH transport (closed on every way out). */
export async function openSshTarget(flags: FlagValues, logger: Logger): Promise<SyncTarget> {
  const { remoteDir, ...options } = sshTargetFrom(flags)
  const transport = await SshTransport.create({ ...options, logger })
  onCleanup(() => transport.close())
  await transport.connect()
  return { transport, remoteDir, remoteDirFlag: '--remote-dir' }
}

/** Opens the kubectl transport. */
export async function openKubeTarget(flags: FlagValues, logger: Logger): Promise<SyncTarget> {
  const { remoteDir, ...options } = kubeTargetFrom(flags)
  const transport = await KubectlTransport.open({ ...options, logger })
  onCleanup(() => transport.close())
  return { transport, remoteDir, remoteDirFlag: '--workdir' }
}
