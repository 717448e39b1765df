import path from 'node:path'
import { validateRemoteDir } from '../core/remote-path.ts'
import { KubectlTransport, validateKubeTarget } from './kubectl.ts'
import { SshTransport, validateSshTarget } from './ssh.ts'
import type { Transport } from './types.ts'
import type { Logger } from '../core/log.ts'
import { onCleanup } from '../core/cleanup.ts'
import { listFlag, required, stringFlag, type FlagSpec, type FlagValues } from '../core/flags.ts'

// The flags that name a target, shared by every script that reaches one; and the one place that
// turns them into a transport.

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
  {
    name: 'workdir',
    kind: 'string',
    value: 'DIR',
    description: 'absolute directory in the pod that receives the code',
    default: DEFAULT_WORKDIR,
  },
]

export interface SyncTarget {
  transport: Transport
  remoteDir: string
  remoteDirFlag: string
}

/** Checks every SSH target flag without connecting; returns what SshTransport.open needs. */
export function sshTargetFrom(flags: FlagValues) {
  const host = required(flags, 'host', 'the SSH host to run on')
  const sshOptions = listFlag(flags, 'ssh-option')
  validateSshTarget(host, sshOptions)
  const remoteDir = validateRemoteDir(
    required(flags, 'remote-dir', 'the absolute directory on the host that receives the code'),
    '--remote-dir',
  )
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
