import { RemotePrerequisiteError, TransportError, UsageError } from '../cli/errors.ts'
import { silentLogger, type Logger } from '../log.ts'
import { gnuTar, requireLocalTools } from './prereq.ts'
import { runFramed } from './run.ts'
import { REMOTE_COMMAND } from './script.ts'
import { lastLine, tarPull, tarPush } from './tree.ts'
import type { PullReport, PushPlan, PushReport, RunOptions, RunResult, Transport } from './types.ts'

// A running pod as the target: `kubectl exec -i POD -- bash -s`, the script on stdin. Files move as
// tar streams over the same exec, so the pod needs neither rsync nor `kubectl cp` (which itself
// needs tar in the pod and cannot skip unchanged files).

export interface KubectlTransportOptions {
  context: string
  namespace: string
  pod: string
  container?: string
  logger?: Logger
}

const CONTEXT_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:/@-]*$/
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/

/** Refuses names kubectl would read as flags or that no cluster accepts. */
export function validateKubeTarget(options: KubectlTransportOptions): void {
  const check = (flag: string, value: string | undefined, pattern: RegExp, what: string) => {
    if (value !== undefined && (!pattern.test(value) || value.length > 253)) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a valid ${what}.`)
    }
  }
  check('--context', options.context, CONTEXT_PATTERN, 'kubeconfig context name (see `kubectl config get-contexts`)')
  check('--namespace', options.namespace, DNS_NAME, 'namespace name (lowercase letters, digits, -)')
  check('--pod', options.pod, DNS_NAME, 'pod name (see `kubectl get pods -n NAMESPACE`)')
  check('--container', options.container, DNS_NAME, 'container name (lowercase letters, digits, -)')
}

/** kubectl's own failures (as opposed to the script's exit code). */
const KUBECTL_ERROR = /^(error:|Error from server|Unable to connect to the server|error dialing backend)/
const TERMINATED = /^command terminated with exit code \d+$/
const DEFAULTED = /^Defaulted container ".*" out of:/

export class KubectlTransport implements Transport {
  readonly kind = 'kubectl' as const
  readonly target: string
  private readonly options: KubectlTransportOptions
  private readonly logger: Logger

  private constructor(options: KubectlTransportOptions) {
    this.options = options
    this.logger = options.logger ?? silentLogger
    this.target = `pod ${options.namespace}/${options.pod}${options.container ? ` (container ${options.container})` : ''}`
  }

  /** Checks kubectl and tar locally, then that the pod answers (exit 5 with kubectl's message if not). */
  static async open(options: KubectlTransportOptions): Promise<KubectlTransport> {
    validateKubeTarget(options)
    await requireLocalTools(['kubectl', 'tar'], `to reach pod ${options.pod} with kubectl exec`)
    await gnuTar()
    const transport = new KubectlTransport(options)
    const probe = await transport.run('exit 0')
    if (probe.exitCode === 126 || probe.exitCode === 127) {
      throw new RemotePrerequisiteError(`bash is not available in ${transport.target} (exit ${probe.exitCode}): ${lastLine(probe.stderrTail)}. Use an image with bash, or pick its container with --container.`)
    }
    if (probe.exitCode !== 0) {
      throw new TransportError(`${transport.target} answered with exit ${probe.exitCode}: ${lastLine(probe.stderrTail)}`)
    }
    transport.logger.step('kubectl', `reached ${transport.target} in context ${options.context}`)
    return transport
  }

  private execArgs(): string[] {
    const { context, namespace, pod, container } = this.options
    return [
      '--context', context,
      '--namespace', namespace,
      'exec', '-i', pod,
      ...(container ? ['--container', container] : []),
      '--', ...REMOTE_COMMAND,
    ]
  }

  async run(script: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
    let terminated = false
    const onStderrLine = (line: string) => {
      if (TERMINATED.test(line)) terminated = true
      else if (!DEFAULTED.test(line)) options.onStderrLine?.(line)
    }
    const result = await runFramed('kubectl', this.execArgs(), script, args, { ...options, onStderrLine }, this.target)
    const failure = result.stderrTail.find((line) => KUBECTL_ERROR.test(line))
    if (result.exitCode !== 0 && !terminated && failure) {
      throw new TransportError(`kubectl exec into ${this.target} failed: ${failure}`)
    }
    return { ...result, stderrTail: result.stderrTail.filter((line) => !TERMINATED.test(line) && !DEFAULTED.test(line)) }
  }

  push(plan: PushPlan): Promise<PushReport> {
    return tarPush(this, plan, plan.compress)
  }

  pull(remoteDir: string, localDir: string): Promise<PullReport> {
    return tarPull(this, remoteDir, localDir)
  }

  async close(): Promise<void> {}
}
