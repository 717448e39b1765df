import { RemotePrerequisiteError, TransportError, UsageError, type RemoteEvalError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/log.ts'
import { gnuTar, requireLocalTools } from './prereq.ts'
import { runFramed } from './run.ts'
import { REMOTE_COMMAND } from './script.ts'
import { tarPull, tarPush } from './tree.ts'
import type { PullReport, PushPlan, PushReport, RunOptions, RunResult, Target, TargetKind, Transport } from './types.ts'
import { onCleanup } from '../core/cleanup.ts'
import { required, stringFlag } from '../core/flags.ts'
import { validateRemoteDir } from '../core/remote-path.ts'
import { pasteWord } from '../core/shell.ts'
import { spawnProcess } from '../core/process.ts'

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
  const rules: Array<[flag: string, value: string | undefined, pattern: RegExp, what: string]> = [
    ['--context', options.context, CONTEXT_PATTERN, 'kubeconfig context name (see `kubectl config get-contexts`)'],
    ['--namespace', options.namespace, DNS_NAME, 'namespace name (lowercase letters, digits, -)'],
    ['--pod', options.pod, DNS_NAME, 'pod name (see `kubectl get pods -n NAMESPACE`)'],
    ['--container', options.container, DNS_NAME, 'container name (lowercase letters, digits, -)'],
  ]
  for (const [flag, value, pattern, what] of rules) {
    // '' is a pod that --selector will name.
    if (value !== undefined && value !== '' && (!pattern.test(value) || value.length > 253)) {
      throw new UsageError(`${flag} ${JSON.stringify(value)} is not a valid ${what}.`)
    }
  }
}

/** kubectl's own failures (as opposed to the script's exit code). */
const UNREACHABLE = /^(Unable to connect to the server|The connection to the server)/
const KUBECTL_ERROR = new RegExp(`^(error:|Error from server|Error in configuration|error dialing backend)|${UNREACHABLE.source}`)
const TERMINATED = /^command terminated with exit code \d+$/
const DEFAULTED = /^Defaulted container ".*" out of:/

/**
 * What a failure kubectl printed means (the wording of the real client against an API server):
 * a context, namespace, pod or container that is not there is bad input (exit 2, nothing was
 * touched); an image without bash is a missing remote prerequisite (4); a pod that is not running
 * or a cluster that does not answer is a failed connection (5).
 */
function kubectlFailure(line: string, options: KubectlTransportOptions, target: string): RemoteEvalError {
  const { context, namespace, pod, container } = options
  const said = `(kubectl: ${line})`
  if (/context was not found for specified context|context ".*" does not exist/.test(line)) {
    return new UsageError(`--context ${context} is not in your kubeconfig ${said}. Pick one that \`kubectl config get-contexts\` lists.`)
  }
  if (/\(NotFound\): namespaces ".*" not found/.test(line)) {
    return new UsageError(
      `--namespace ${namespace} does not exist in context ${context} ${said}. Pick one that \`kubectl --context ${context} get namespaces\` lists.`,
    )
  }
  if (/\(NotFound\): pods ".*" not found/.test(line)) {
    return new UsageError(
      `--pod ${pod} is not in namespace ${namespace} of context ${context} ${said}. Pick one that \`kubectl --context ${context} --namespace ${namespace} get pods\` lists.`,
    )
  }
  if (/container \S+ is not valid for pod|container \S+ not found in pod/.test(line)) {
    return new UsageError(
      `--container ${container} is not a container of ${target} ${said}. Its containers: \`kubectl --context ${context} --namespace ${namespace} get pod ${pod} -o jsonpath='{.spec.containers[*].name}'\`.`,
    )
  }
  if (/executable file not found in \$PATH|no such file or directory: unknown/.test(line)) {
    return new RemotePrerequisiteError(
      `bash is not available in ${target} ${said}. Use an image with bash, or pick its container with --container.`,
    )
  }
  if (/cannot exec into a container in a completed pod|container not found \(|does not have a host assigned|is not running/.test(line)) {
    return new TransportError(
      `${target} is not running ${said}. See \`kubectl --context ${context} --namespace ${namespace} get pod ${pod}\`; run again when it is Running.`,
    )
  }
  if (UNREACHABLE.test(line)) {
    return new TransportError(
      `the cluster of context ${context} did not answer ${said}. Check the network (VPN, proxy) and \`kubectl --context ${context} cluster-info\`.`,
    )
  }
  return new TransportError(`kubectl exec into ${target} failed: ${line}`)
}

/** How messages name a pod. */
export const podTargetName = (pod: { namespace: string; pod: string; container?: string }) =>
  `pod ${pod.namespace}/${pod.pod}${pod.container ? ` (container ${pod.container})` : ''}`

export class KubectlTransport implements Transport {
  readonly kind = 'kubectl' as const
  readonly pushesByRsync = KUBECTL_KIND.pushesByRsync
  readonly target: string
  private readonly options: KubectlTransportOptions
  private readonly logger: Logger

  private constructor(options: KubectlTransportOptions) {
    this.options = options
    this.logger = options.logger ?? silentLogger
    this.target = podTargetName(options)
  }

  /**
   * Checks kubectl and tar locally. The pod is not probed: every exec is a TLS handshake and a
   * stream upgrade through the API server, so the first script says whether the pod answers, with
   * kubectl's message made advice (exit 2 or 5, see kubectlFailure).
   */
  static async open(options: KubectlTransportOptions): Promise<KubectlTransport> {
    validateKubeTarget(options)
    await requireLocalTools(['kubectl', 'tar'], `to reach pod ${options.pod} with kubectl exec`)
    await gnuTar()
    const transport = new KubectlTransport(options)
    transport.logger.step('kubectl', `${transport.target} in context ${options.context}: each step is one kubectl exec`)
    return transport
  }

  private execArgs(): string[] {
    const { context, namespace, pod, container } = this.options
    return [
      '--context',
      context,
      '--namespace',
      namespace,
      'exec',
      '-i',
      pod,
      ...(container ? ['--container', container] : []),
      '--',
      ...REMOTE_COMMAND,
    ]
  }

  async run(script: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
    let terminated = false
    const onStderrLine = (line: string) => {
      if (TERMINATED.test(line)) terminated = true
      else if (!DEFAULTED.test(line)) options.onStderrLine?.(line)
    }
    const result = await runFramed(
      { command: 'kubectl', commandArgs: this.execArgs(), target: this.target },
      { script, args, options: { ...options, onStderrLine } },
    )
    const failure = result.stderrTail.find((line) => KUBECTL_ERROR.test(line))
    if (result.exitCode !== 0 && !terminated && failure) throw kubectlFailure(failure, this.options, this.target)
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

/** Where the code goes in a pod unless --workdir says otherwise (the bash runner's default). */
export const DEFAULT_WORKDIR = '/workdir/guardrails'

export interface PodTarget extends Target {
  kind: 'kubectl'
  context: string
  namespace: string
  /** '' while the target stands for --selector's pods, which expand finds. */
  pod: string
  container?: string
  /** --selector: the running pods of the namespace with these labels, each a target (the runners only). */
  selector?: string
}

// Label selectors as people write them (app=eval,tier!=cpu, gpu in (a100,h100), !spot); kubectl gets
// the value as one argument of its own, so this only keeps out what no selector holds.
const SELECTOR = /^[A-Za-z0-9!=(),. _/-]+$/

/** The running pods that --selector names, sorted by name (kubectl get pods --selector). */
async function podsMatching(target: PodTarget, logger: Logger): Promise<PodTarget[]> {
  const { context, namespace, selector } = target
  await requireLocalTools(['kubectl'], `to find the pods of --selector ${selector}`)
  const listed = await spawnProcess('kubectl', [
    '--context',
    context,
    '--namespace',
    namespace,
    'get',
    'pods',
    '--selector',
    selector!,
    '--output',
    'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.phase}{"\\n"}{end}',
  ])
  const failure = listed.stderrTail.find((line) => KUBECTL_ERROR.test(line))
  if (failure && /\(BadRequest\)/.test(failure))
    throw new UsageError(
      `--selector ${selector} is not a label selector the cluster accepts (kubectl: ${failure}). Write it as app=eval,tier!=cpu or 'gpu in (a100,h100)'.`,
    )
  if (listed.exitCode !== 0)
    throw failure
      ? kubectlFailure(failure, target, `the pods of --selector ${selector}`)
      : new TransportError(`kubectl get pods --selector ${selector} failed: ${listed.stderrTail.join(' ')}`)
  const pods = listed.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ') as [string, string])
  // What the cluster says is checked as a flag would be: a pod is a DNS name.
  const running = pods
    .filter(([pod, phase]) => phase === 'Running' && DNS_NAME.test(pod))
    .map(([pod]) => pod)
    .sort()
  const list = `kubectl --context ${context} --namespace ${namespace} get pods --selector ${pasteWord(selector!)}`
  if (!running.length)
    throw new UsageError(
      `No running pod in namespace ${namespace} of context ${context} has the labels ${selector} (${pods.length ? `${pods.length} found, none Running` : 'none found'}). See \`${list}\`; fix --selector, or run again when they are Running.`,
    )
  logger.step('kubectl', `--selector ${selector}: ${running.length} running pod(s) in ${namespace}: ${running.join(', ')}`)
  return running.map((pod) => ({ ...target, pod, selector: undefined }))
}

/** A pod, reached with kubectl exec, as a kind of target (see kinds.ts). */
export const KUBECTL_KIND: TargetKind<PodTarget> = {
  kind: 'kubectl',
  what: 'a pod',
  pushesByRsync: false,
  namedBy: 'pod',
  dirFlag: '--workdir',
  usage: '--context C --namespace NS --pod POD',
  perTarget: [],
  fleetFlags: [
    {
      name: 'selector',
      kind: 'string',
      value: 'LABELS',
      description: 'instead of --pod: every running pod of the namespace with these labels (e.g. app=guardrails-eval), one target each',
    },
  ],
  flags: [
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
  ],
  fromFlags(flags) {
    const selector = stringFlag(flags, 'selector')
    if (selector !== undefined && stringFlag(flags, 'pod') !== undefined)
      throw new UsageError('Give --pod POD (repeatable) or --selector LABELS, not both.')
    if (selector !== undefined && (!SELECTOR.test(selector) || selector.length > 1024))
      throw new UsageError(
        `--selector ${JSON.stringify(selector)} is not a label selector, e.g. --selector app=guardrails-eval or 'gpu in (a100,h100)'.`,
      )
    const target = {
      context: required(flags, 'context', 'the kubeconfig context of the cluster'),
      namespace: required(flags, 'namespace', 'the namespace of the pod'),
      pod: selector === undefined ? required(flags, 'pod', 'the running pod to exec into') : '',
      container: stringFlag(flags, 'container'),
    }
    validateKubeTarget(target)
    const remoteDir = validateRemoteDir(stringFlag(flags, 'workdir') ?? DEFAULT_WORKDIR, '--workdir')
    return { kind: 'kubectl', ...target, ...(selector !== undefined && { selector }), remoteDir, remoteDirFlag: '--workdir' }
  },
  name: (target) =>
    target.selector === undefined ? podTargetName(target) : `the pods of ${target.namespace} with labels ${target.selector}`,
  expand: (target, logger) => (target.selector === undefined ? Promise.resolve([target]) : podsMatching(target, logger)),
  async open(target, logger) {
    const { context, namespace, pod, container } = target
    const transport = await KubectlTransport.open({ context, namespace, pod, container, logger })
    onCleanup(() => transport.close())
    return transport
  },
  copyCommand(target, dir) {
    // A tar stream through kubectl exec: the image needs nothing but tar.
    const { context, namespace, pod, container } = target
    const exec = [
      'kubectl',
      '--context',
      context,
      '--namespace',
      namespace,
      'exec',
      '-i',
      pod,
      ...(container ? ['--container', container] : []),
    ]
    return `tar -C "$d" -c -f - . | ${[...exec, '--', 'sh', '-c', 'mkdir -p "$0" && tar -x -f - -C "$0"', dir].map(pasteWord).join(' ')}`
  },
}
