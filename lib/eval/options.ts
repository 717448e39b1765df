import { realpathSync, statSync } from 'node:fs'
import path from 'node:path'
import {
  DEFAULT_POLICY,
  DEFAULT_SPLITS,
  DEFAULT_SUITES,
  declaredSplits,
  readDatasetNeeds,
  readModelNeeds,
  type DatasetNeeds,
  type ModelRef,
} from '../assets/registry.ts'
import { EXIT_CODES, UsageError, exitCodesHelp, type ExitCodeName } from '../core/errors.ts'
import {
  formatFlags,
  listFlag,
  stringFlag,
  UsageWithHelpError,
  wholeNumberFlag,
  type FlagSpec,
  type FlagValues,
  projectDirFrom,
  STANDARD_FLAGS,
} from '../core/flags.ts'
import { KUBECTL_KIND } from '../transport/kubectl.ts'
import { SSH_KIND } from '../transport/ssh.ts'
import type { Target, TargetKind } from '../transport/types.ts'
import { runnerFlags, targetsFromFlags } from '../transport/kinds.ts'
import { SYNC_FLAGS, sizeLimitsFrom } from '../sync/flags.ts'
import { validateRemoteDir } from '../core/remote-path.ts'
import type { SizeLimits } from '../sync/guard.ts'
import { parseSize } from '../core/units.ts'
import { readBaseline, type Baseline } from './deltas.ts'

// The runners' flags: the documented bash interface (same names, same defaults), plus ours. Every
// value is checked here, before anything connects; a mistake is exit 2 naming the flag.

export const DEFAULT_SUITE = 'guardrails_ru'
export const DEFAULT_SPLIT = 'fast'
export const DEFAULT_EVAL_MODULE = 'app.eval.cli'
export const DEFAULT_MERGE_MODULE = 'app.tools.merge_eval_reports'
export const DEFAULT_COMPARE_MODULE = 'app.eval.compare'
export const OUTPUT_DIR = 'reports/evaluations'

const EVAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'runtime',
    kind: 'string',
    value: 'cpu|cuda',
    description: 'where the eval runs; cuda checks nvidia-smi and gives the run its own PyTriton ports (required)',
  },
  { name: 'suite', kind: 'string', value: 'NAME', description: 'eval suite (configs/eval/suites.yaml)', default: DEFAULT_SUITE },
  { name: 'split', kind: 'string', value: 'NAME', description: 'split of the suite', default: DEFAULT_SPLIT },
  {
    name: 'remote-has-internet',
    kind: 'string',
    value: 'yes|no',
    description: 'yes: download missing models/datasets there; no: require prepared ones (required)',
  },
  { name: 'models-dir', kind: 'string', value: 'DIR', description: 'models directory on the target (required)' },
  { name: 'datasets-dir', kind: 'string', value: 'DIR', description: 'datasets directory on the target (required)' },
  {
    name: 'adopt-asset-dirs',
    kind: 'boolean',
    description: 'download into non-empty models/datasets directories this tool did not prepare (nothing of them is deleted)',
  },
  {
    name: 'env',
    kind: 'list',
    value: 'NAME=VALUE',
    description: 'a variable for the eval on the target, e.g. GR_ENABLE_NEMOTRON=true (sent on stdin, never in argv)',
  },
  {
    name: 'eval-module',
    kind: 'string',
    value: 'MODULE',
    description: 'the eval CLI, run as python -m MODULE',
    default: DEFAULT_EVAL_MODULE,
  },
  {
    name: 'eval-arg',
    kind: 'list',
    value: 'ARG',
    description: 'an argument passed through to the eval CLI (write --eval-arg=--flag for ones starting with -)',
  },
  {
    name: 'gpus',
    kind: 'list',
    value: 'IDS',
    description:
      'GPUs for the eval, e.g. 0, 0,1 or 0-7 (sets CUDA_VISIBLE_DEVICES); with several targets, once for all or once per target in their order',
  },
  {
    name: 'shard',
    kind: 'boolean',
    description:
      "one eval per GPU of --gpus on every target named (--runtime cuda), the suite's datasets split among them by expected time; their reports merged on the first target with --merge-module",
  },
  {
    name: 'skip-failed-targets',
    kind: 'boolean',
    description:
      'with --shard on several targets: go on with those that passed their preflight and preparation (default: when one fails, nothing starts anywhere)',
  },
  {
    name: 'merge-module',
    kind: 'string',
    value: 'MODULE',
    description: `with --shard: the repo's report merger, run as python -m MODULE --out OUT A.json B.json ... (default: ${DEFAULT_MERGE_MODULE})`,
  },
  { name: 'workers', kind: 'string', value: 'N', description: 'worker processes for the eval (passed as --workers N)' },
  { name: 'venv', kind: 'string', value: 'DIR', description: 'a prebuilt venv on the target instead of uv' },
  {
    name: 'min-free-disk',
    kind: 'string',
    value: 'SIZE',
    description: 'refuse to start with less free space on the target',
    default: '1G',
  },
  {
    name: 'fresh-cache',
    kind: 'boolean',
    description: "online only: delete the datasets dir's hf_cache and the download records on the target, then download again",
  },
  { name: 'dry-run', kind: 'boolean', description: 'print each step and the exact remote scripts; touch nothing' },
  { name: 'detach', kind: 'boolean', description: 'start the run and return at once, printing its run id' },
  {
    name: 'attach',
    kind: 'string',
    value: 'RUN_ID',
    description: "follow a run's log from its last lines and fetch its results when it ends (remote_run_id or the report folder's run_id)",
  },
  {
    name: 'stop',
    kind: 'string',
    value: 'RUN_ID',
    description: 'stop a run (either id): SIGTERM to its process group, SIGKILL after --stop-grace',
  },
  {
    name: 'list',
    kind: 'boolean',
    description: 'list the runs on the target: both ids, state, start and end time, exit code, ports',
  },
  {
    name: 'prune',
    kind: 'boolean',
    description:
      'remove ended runs on the target, with their report directories, that ended over --older-than days ago or are beyond the newest --keep-last; never a running one (with --dry-run: only name them)',
  },
  { name: 'older-than', kind: 'string', value: 'DAYS', description: 'with --prune: runs that ended more than DAYS days ago' },
  { name: 'keep-last', kind: 'string', value: 'K', description: 'with --prune: all but the newest K runs' },
  {
    name: 'check-assets',
    kind: 'boolean',
    description: "check the target's --models-dir and --datasets-dir against their manifests and the suite; nothing is synced or run",
  },
  { name: 'verify-checksums', kind: 'boolean', description: "with --check-assets: also compare every file's sha256 (reads all data)" },
  {
    name: 'run-module',
    kind: 'string',
    value: 'MODULE',
    description:
      "run another module of the repo there instead of the eval (python -m MODULE, e.g. app.tools.rebalance_fast_splits): synced code and deps, the target's token, output streamed, its exit code passed through",
  },
  {
    name: 'module-arg',
    kind: 'list',
    value: 'ARG',
    description: 'an argument for --run-module (write --module-arg=--push for ones starting with -)',
  },
  {
    name: 'baseline',
    kind: 'string',
    value: 'PATH',
    description:
      'compare the metrics with this run (a fetched report directory, its report.json or metrics.csv); default: the newest earlier finished local run of the same suite and split',
  },
  { name: 'no-baseline', kind: 'boolean', description: 'no comparison with an earlier run after the metrics' },
  {
    name: 'compare-to',
    kind: 'string',
    value: 'DIR|latest',
    description:
      "after the run, the repo's compare module compares its report with that fetched run's (latest: the newest here) on the target; diff.md comes home and is printed",
  },
  {
    name: 'compare-module',
    kind: 'string',
    value: 'MODULE',
    description: `with --compare-to: the repo's compare module, run as python -m MODULE --base B.json --new N.json --out DIR (default: ${DEFAULT_COMPARE_MODULE})`,
  },
  {
    name: 'stop-grace',
    kind: 'string',
    value: 'SECONDS',
    description:
      'how long a stopped run may take to exit before SIGKILL; also how long what an ended eval left behind may go on before it is stopped',
    default: '10',
  },
]

export const SSH_EVAL_FLAGS: readonly FlagSpec[] = [
  ...runnerFlags(SSH_KIND as unknown as TargetKind),
  ...EVAL_FLAGS,
  ...SYNC_FLAGS,
  ...STANDARD_FLAGS,
]
export const K8S_EVAL_FLAGS: readonly FlagSpec[] = [
  ...runnerFlags(KUBECTL_KIND as unknown as TargetKind),
  ...EVAL_FLAGS,
  ...SYNC_FLAGS,
  ...STANDARD_FLAGS,
]

const PIPELINE_TEXT = `Runs the eval suite on the target: checks this machine and the target in one round trip, syncs
the code only (never models, datasets or .env files), runs uv sync when pyproject.toml, uv.lock or
the extras changed, downloads missing models and datasets there (--remote-has-internet yes) or
checks the prepared ones (no: exit 10 or 11 before any GPU work), runs
  python -m app.eval.cli --suite S --split P --env-file .env.eval --output-dir reports/evaluations
with its stderr streamed live, fetches the run's directory into reports/evaluations/<run_id>/ here,
prints the metrics table on stderr and the eval's JSON on stdout, its paths (run_dir, report_json,
report_md, metrics_csv) pointing at the fetched copies and the target's under remote_*.
The eval runs in a session of its own on the target (.remote-eval/runs/<id>/), so a dropped link
does not stop it: come back with --attach ID; --detach, --stop ID and --list manage runs. Ctrl-C
asks (on a terminal) whether to stop the run or detach; without a terminal it stops it.`

export const SSH_EVAL_USAGE = `Usage: scripts/remote_eval/ssh_eval.ts --host HOST --remote-dir DIR --runtime cpu|cuda [--suite S]
         [--split P] --remote-has-internet yes|no --models-dir DIR --datasets-dir DIR [options]

${PIPELINE_TEXT}
One SSH connection per host carries the whole run.

Options:
${formatFlags(SSH_EVAL_FLAGS)}

${exitCodesHelp(Object.keys(EXIT_CODES) as ExitCodeName[])}
`

export const K8S_EVAL_USAGE = `Usage: scripts/remote_eval/k8s_eval.ts --context C --namespace NS --pod POD [--container NAME]
         [--workdir DIR] --runtime cpu|cuda [--suite S] [--split P] --remote-has-internet yes|no
         --models-dir DIR --datasets-dir DIR [options]

${PIPELINE_TEXT}
Everything goes through kubectl exec; the pod needs bash and tar, not rsync.

Options:
${formatFlags(K8S_EVAL_FLAGS)}

${exitCodesHelp(Object.keys(EXIT_CODES) as ExitCodeName[])}
`

/** What the runner does: a run (followed or detached), or one of the controls of earlier runs. */
export type EvalMode =
  | { kind: 'run' }
  | { kind: 'detach' }
  | { kind: 'attach'; runId: string }
  | { kind: 'stop'; runId: string }
  | { kind: 'list' }
  | { kind: 'module'; module: string; args: string[] }
  | { kind: 'prune'; maxAgeMinutes: number | null; keep: number | null }
  | { kind: 'check-assets'; checksums: boolean }

export interface EvalOptions {
  mode: EvalMode
  /** false (--no-wait): fail at once when another runner holds the target's lock, or an asset directory's download lock. */
  wait: boolean
  stopGraceSeconds: number
  freshCache: boolean
  /** The target as its kind read it from the flags (lib/transport/kinds.ts); the first of targets. */
  target: Target
  /** Every target named (--host or --pod repeated, --selector), each with its GPUs; one but for --shard, --list and groups. */
  targets: TargetSlot[]
  /** --skip-failed-targets: a sharded run goes on with the targets that prepared when others did not. */
  skipFailedTargets: boolean
  remoteDir: string
  remoteDirFlag: string
  projectDir: string
  runtime: 'cpu' | 'cuda'
  suite: string
  split: string
  online: boolean
  modelsDir: string
  datasetsDir: string
  evalModule: string
  evalArgs: string[]
  gpus?: string
  /** --shard: one eval per GPU, each on its share of the suite's datasets, merged by mergeModule. */
  shard: boolean
  mergeModule: string
  workers?: number
  venv?: string
  minFreeBytes: number
  dryRun: boolean
  limits: SizeLimits
  adopt: boolean
  fullSync: boolean
  models: ModelRef[]
  datasets: DatasetNeeds
  /** Online: the splits prepared on the target (fast and full where the suite has them, and --split). */
  downloadSplits: string[]
  /** --env NAME=VALUE: more environment for the eval. */
  env: Record<string, string>
  /** --allow-secret PATH: files the push may send although they hold a secret. */
  allowSecrets: string[]
  /** --adopt-asset-dirs: download into non-empty asset directories this tool did not prepare. */
  adoptAssetDirs: boolean
  /** What the metrics are compared with: the previous local run, a --baseline read already, or nothing. */
  baseline: 'previous run' | Baseline | null
  /** --compare-to: the local report.json the repo's compare module compares the run's with, on the target. */
  compareTo: { report: string; module: string } | null
}

/** A target with the GPUs --gpus gives it there. */
export interface TargetSlot {
  target: Target
  gpus?: string
}

/** The options of one target of several: its own target, remote directory and GPUs. */
export const optionsFor = (options: EvalOptions, slot: TargetSlot): EvalOptions => ({
  ...options,
  target: slot.target,
  remoteDir: slot.target.remoteDir,
  remoteDirFlag: slot.target.remoteDirFlag,
  gpus: slot.gpus,
  targets: [slot],
})

/** The flags the bash runner refused to start without. */
const REQUIRED = ['runtime', 'remote-has-internet', 'models-dir', 'datasets-dir'] as const
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/** --env NAME=VALUE, each checked: a name as a shell variable, a value on one line. */
function envFrom(flags: FlagValues): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of listFlag(flags, 'env')) {
    const eq = entry.indexOf('=')
    const name = eq > 0 ? entry.slice(0, eq) : entry
    if (eq < 0 || !ENV_NAME.test(name))
      throw new UsageError(
        `--env ${JSON.stringify(name)} is not NAME=VALUE with a variable name (letters, digits, _), e.g. --env GR_ENABLE_NEMOTRON=true.`,
      )
    if (/[\0\n\r]/.test(entry)) throw new UsageError(`--env ${name}=... holds a line break or NUL byte; give a value on one line.`)
    env[name] = entry.slice(eq + 1)
  }
  return env
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/
const MODULE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/

function oneOf<T extends string>(flags: FlagValues, name: string, choices: readonly T[]): T {
  const value = stringFlag(flags, name) ?? ''
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} ${JSON.stringify(value)} is not one of ${choices.join(', ')}.`)
  }
  return value as T
}

function named(flags: FlagValues, name: string, fallback: string): string {
  const value = stringFlag(flags, name) ?? fallback
  if (!NAME.test(value)) throw new UsageError(`--${name} ${JSON.stringify(value)} is not a name (letters, digits, _ . - only).`)
  return value
}

/** Every flag of ssh_eval.ts or k8s_eval.ts, checked; reads the local registry for suite and split. */
export function evalOptionsFrom(flags: FlagValues, kind: TargetKind): EvalOptions {
  const mode = modeFrom(flags)
  const targets = slotsFrom(flags, kind, mode)
  const target = targets[0]!.target
  const remoteDir = target.remoteDir
  // A new run (or its dry run) needs the four flags the bash runner required; whether the target is
  // air-gapped is the user's statement, never a default.
  if (mode.kind === 'run' || mode.kind === 'detach') {
    const missing = REQUIRED.filter((name) => stringFlag(flags, name) === undefined)
    if (missing.length) {
      throw new UsageWithHelpError(
        `Missing ${missing.map((m) => `--${m}`).join(', ')}: a run needs --runtime cpu|cuda, --remote-has-internet yes|no, --models-dir DIR and --datasets-dir DIR on the target, as the bash runner did.`,
      )
    }
  }
  const starts = mode.kind === 'run' || mode.kind === 'detach'
  // What --check-assets checks the directories against: the suite's datasets and the policy's models.
  const assets = starts || mode.kind === 'check-assets'
  if (mode.kind === 'check-assets') {
    const missing = (['models-dir', 'datasets-dir'] as const).filter((name) => stringFlag(flags, name) === undefined)
    if (missing.length)
      throw new UsageError(
        `--check-assets checks --models-dir DIR and --datasets-dir DIR on the target: give ${missing.map((m) => `--${m}`).join(' and ')}.`,
      )
  }
  const runtime =
    starts || (mode.kind === 'module' && stringFlag(flags, 'runtime') !== undefined)
      ? oneOf(flags, 'runtime', ['cpu', 'cuda'] as const)
      : 'cpu'
  // A module run (--run-module) usually talks to the Hub: online unless told otherwise.
  const online =
    starts || (mode.kind === 'module' && stringFlag(flags, 'remote-has-internet') !== undefined)
      ? oneOf(flags, 'remote-has-internet', ['yes', 'no'] as const) === 'yes'
      : mode.kind === 'module'
  const suite = named(flags, 'suite', DEFAULT_SUITE)
  const split = named(flags, 'split', DEFAULT_SPLIT)
  const modelsDir = assets ? validateRemoteDir(stringFlag(flags, 'models-dir')!, '--models-dir') : ''
  const datasetsDir = assets ? validateRemoteDir(stringFlag(flags, 'datasets-dir')!, '--datasets-dir') : ''
  const env = envFrom(flags)
  const venv = stringFlag(flags, 'venv') === undefined ? undefined : validateRemoteDir(stringFlag(flags, 'venv')!, '--venv')
  const evalModule = stringFlag(flags, 'eval-module') ?? DEFAULT_EVAL_MODULE
  if (!MODULE.test(evalModule))
    throw new UsageError(`--eval-module ${JSON.stringify(evalModule)} is not a Python module name, e.g. app.eval.cli.`)
  const evalArgs = listFlag(flags, 'eval-arg')
  const badArg = evalArgs.find((a) => /[\n\r\0]/.test(a))
  if (badArg !== undefined)
    throw new UsageError(`--eval-arg ${JSON.stringify(badArg)} holds a line break; give one argument per --eval-arg.`)
  const gpus = targets[0]!.gpus
  const mergeModule = stringFlag(flags, 'merge-module') ?? DEFAULT_MERGE_MODULE
  if (!MODULE.test(mergeModule))
    throw new UsageError(`--merge-module ${JSON.stringify(mergeModule)} is not a Python module name, e.g. ${DEFAULT_MERGE_MODULE}.`)
  const shard = shardFrom(flags, { mode, kind, targets, evalArgs })
  const workers = wholeNumberFlag(flags, 'workers', { min: 1, max: 1024, unit: 'workers', example: 4 })
  const minFree = parseSize(stringFlag(flags, 'min-free-disk') ?? '1G')
  if (minFree === null)
    throw new UsageError(`--min-free-disk ${JSON.stringify(stringFlag(flags, 'min-free-disk'))} is not a size, e.g. 1G or 500M.`)
  const projectDir = projectDirFrom(flags)
  const baseline = baselineFrom(flags, mode)
  const compareTo = compareToFrom(flags, mode, projectDir)
  if (!statSync(projectDir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UsageError(`--project-dir ${projectDir} is not a directory. Run from the eval repo or pass --project-dir.`)
  }
  const stopGraceSeconds = wholeNumberFlag(flags, 'stop-grace', { min: 0, max: 3600, unit: 'seconds', example: 10 }) ?? 10
  const freshCache = flags['fresh-cache'] === true
  if (freshCache && !online)
    throw new UsageError('--fresh-cache downloads again, which an air-gapped target cannot do: drop it, or use --remote-has-internet yes.')
  // The suite and split must exist in the local registry; the models come from the policy. The
  // controls of earlier runs (attach, stop, list) need neither.
  const suitesPath = path.join(projectDir, DEFAULT_SUITES)
  const datasets = assets
    ? readDatasetNeeds({ suitesPath, suite, splits: [split], splitFlag: '--split', suitesFlag: null })
    : { suite, splits: [split], datasets: [], suitesPath }
  const models = assets ? readModelNeeds({ policyPath: path.join(projectDir, DEFAULT_POLICY), policyFlag: null }) : []
  const declared = starts ? declaredSplits(suitesPath, suite, null) : null
  const downloadSplits = [...new Set([split, ...DEFAULT_SPLITS.filter((s) => declared === null || declared.includes(s))])]
  return {
    mode,
    wait: flags['no-wait'] !== true,
    stopGraceSeconds,
    freshCache,
    target,
    targets,
    skipFailedTargets: flags['skip-failed-targets'] === true,
    remoteDir,
    remoteDirFlag: target.remoteDirFlag,
    projectDir,
    runtime,
    suite,
    split,
    online,
    modelsDir,
    datasetsDir,
    evalModule,
    evalArgs,
    gpus,
    shard,
    mergeModule,
    workers,
    venv,
    minFreeBytes: minFree,
    dryRun: flags['dry-run'] === true,
    limits: sizeLimitsFrom(flags),
    adopt: flags['adopt-remote-dir'] === true,
    fullSync: flags['full-sync'] === true,
    models,
    datasets,
    downloadSplits,
    env,
    allowSecrets: listFlag(flags, 'allow-secret'),
    adoptAssetDirs: flags['adopt-asset-dirs'] === true,
    baseline,
    compareTo,
  }
}

/** `0-3,6` as 0,1,2,3,6: GPU indices, each once, in the order given (exit 2 on anything else). */
export function gpuList(text: string): string {
  const bad = () =>
    new UsageError(`--gpus ${JSON.stringify(text)} is not a list of GPU indices, e.g. 0, 0,1 or 0-7 (several: --gpus 0-3,6).`)
  if (!/^\d{1,3}(-\d{1,3})?(,\d{1,3}(-\d{1,3})?)*$/.test(text)) throw bad()
  const ids: number[] = []
  for (const part of text.split(',')) {
    const [from, to = from] = part.split('-').map(Number) as [number, number?]
    if (to < from) throw bad()
    for (let id = from; id <= to; id++) if (!ids.includes(id)) ids.push(id)
  }
  return ids.join(',')
}

/**
 * The targets and each one's GPUs. Several (or a --selector) go with --shard, or with --list and a
 * group's --attach or --stop; everything else works on one target.
 */
function slotsFrom(flags: FlagValues, kind: TargetKind, mode: EvalMode): TargetSlot[] {
  const targets = targetsFromFlags(kind, flags)
  const gpus = listFlag(flags, 'gpus').map(gpuList)
  const naming = kind.namedBy
  if (gpus.length > 1 && gpus.length !== targets.length)
    throw new UsageError(
      targets.length === 1
        ? `--gpus was given ${gpus.length} times; give it once, e.g. --gpus 0,1.`
        : `--gpus was given ${gpus.length} times for ${targets.length} --${naming}: give it once (the same GPUs on every target) or once per --${naming}, in their order.`,
    )
  const fleet = kind.fleetFlags.find((f) => flags[f.name] !== undefined)
  if (fleet && flags['dry-run'] === true)
    throw new UsageError(
      `--dry-run connects nowhere, so it cannot find the targets --${fleet.name} names: name each with --${naming} for the dry run.`,
    )
  if (targets.length > 1 && !takesSeveralTargets(mode, flags.shard === true)) {
    const what =
      mode.kind === 'run' || mode.kind === 'detach'
        ? 'share one suite with --shard (which follows its shards to the end)'
        : `go with --shard, --list, or --attach/--stop of a group (shards-...); --${mode.kind === 'module' ? 'run-module' : mode.kind}${mode.kind === 'attach' || mode.kind === 'stop' ? ' of a run id' : ''} works on one`
    throw new UsageError(
      `${targets.length} targets (--${naming} given ${targets.length} times) ${what}: add --shard, or give one --${naming}.`,
    )
  }
  return targets.map((target, i) => ({ target, gpus: gpus[i] ?? gpus[0] }))
}

/** Whether a command works on several targets: a --shard run, --list, and a group's --attach or --stop. */
export const takesSeveralTargets = (mode: EvalMode, shard: boolean): boolean =>
  (shard && mode.kind === 'run') || mode.kind === 'list' || ((mode.kind === 'attach' || mode.kind === 'stop') && GROUP_ID.test(mode.runId))

/** --shard: a followed CUDA run on two GPUs or more, whose datasets this tool chooses. */
function shardFrom(
  flags: FlagValues,
  { mode, kind, targets, evalArgs }: { mode: EvalMode; kind: TargetKind; targets: TargetSlot[]; evalArgs: string[] },
): boolean {
  if (flags.shard !== true) {
    if (stringFlag(flags, 'merge-module') !== undefined) throw new UsageError('--merge-module goes with --shard: add --shard, or drop it.')
    if (flags['skip-failed-targets'] === true) throw new UsageError('--skip-failed-targets goes with --shard on several targets.')
    return false
  }
  // The same command with --attach GROUP, --stop GROUP or --list comes back to a sharded run.
  if (mode.kind === 'attach' || mode.kind === 'stop' || mode.kind === 'list') return false
  if (mode.kind !== 'run')
    throw new UsageError(
      `--shard starts shards and follows them to the end: it does not go with --${mode.kind === 'module' ? 'run-module' : mode.kind}.`,
    )
  if (targets.some((slot) => slot.gpus === undefined))
    throw new UsageError(
      '--shard gives each shard a GPU of --gpus: add --gpus, e.g. --gpus 0,1 (with several targets, once for all or once per target).',
    )
  // A --selector's pods are counted when it is asked; one pod found runs the suite as one shard.
  const counted = !kind.fleetFlags.some((f) => flags[f.name] !== undefined)
  if (counted && targets.reduce((n, slot) => n + slot.gpus!.split(',').length, 0) < 2)
    throw new UsageError(
      '--shard splits the suite across the GPUs of --gpus on the targets named: give two or more in all, e.g. --gpus 0,1, or a second target.',
    )
  if (evalArgs.some((arg) => arg === '--dataset' || arg.startsWith('--dataset=')))
    throw new UsageError('--shard gives each shard its own --dataset list: drop --eval-arg=--dataset, or drop --shard.')
  if (stringFlag(flags, 'runtime') !== 'cuda') throw new UsageError('--shard gives each shard a GPU of its own: add --runtime cuda.')
  return true
}

/** --compare-to DIR|latest and --compare-module: a fetched run's report.json, found now (exit 2 before anything connects). */
function compareToFrom(flags: FlagValues, mode: EvalMode, projectDir: string): EvalOptions['compareTo'] {
  const given = stringFlag(flags, 'compare-to')
  const module = stringFlag(flags, 'compare-module')
  if (given === undefined) {
    if (module !== undefined) throw new UsageError('--compare-module goes with --compare-to DIR|latest: add it, or drop --compare-module.')
    return null
  }
  if (mode.kind !== 'run' && mode.kind !== 'attach')
    throw new UsageError(`--compare-to goes with a run that fetches its report (a plain run, or --attach); not with --${mode.kind}.`)
  if (module !== undefined && !MODULE.test(module))
    throw new UsageError(`--compare-module ${JSON.stringify(module)} is not a Python module name, e.g. ${DEFAULT_COMPARE_MODULE}.`)
  const where = given === 'latest' ? path.join(projectDir, OUTPUT_DIR, 'latest') : path.resolve(given)
  let real: string
  try {
    real = realpathSync(where)
  } catch {
    throw new UsageError(
      given === 'latest'
        ? `--compare-to latest: there is no fetched run in ${path.join(projectDir, OUTPUT_DIR)} yet. Run once without it, or give a report directory.`
        : `--compare-to ${given} does not exist. Give a fetched report directory (reports/evaluations/<run_id>), its report.json, or latest.`,
    )
  }
  const report = statSync(real).isDirectory() ? path.join(real, 'report.json') : real
  if (!statSync(report, { throwIfNoEntry: false })?.isFile() || !report.endsWith('.json'))
    throw new UsageError(
      `--compare-to ${given} has no report.json. Give a fetched report directory (reports/evaluations/<run_id>), its report.json, or latest.`,
    )
  return { report, module: module ?? DEFAULT_COMPARE_MODULE }
}

/** --baseline PATH (read now: a bad one is exit 2 before anything connects), --no-baseline, or the previous run. */
function baselineFrom(flags: FlagValues, mode: EvalMode): EvalOptions['baseline'] {
  const given = stringFlag(flags, 'baseline')
  if (given !== undefined && flags['no-baseline'] === true)
    throw new UsageError('--baseline PATH and --no-baseline exclude each other: give one of them.')
  const flag = given !== undefined ? '--baseline' : flags['no-baseline'] === true ? '--no-baseline' : null
  if (flag && mode.kind !== 'run' && mode.kind !== 'attach')
    throw new UsageError(`${flag} goes with a run that fetches its report (a plain run, or --attach); not with --${mode.kind}.`)
  if (flags['no-baseline'] === true) return null
  return given === undefined ? 'previous run' : readBaseline(given)
}

/** The tool's run ids (runs.ts newRunId), not the eval's report ids. */
/** The runner's id of a run on the target (remote_run_id). */
export const REMOTE_RUN_ID = /^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/
/** A --shard run's group of runs, named by its first shard's run id. */
export const GROUP_ID = /^shards-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$/
/** The eval's run_id, which names the report's folder (eval_guardrails_ru_fast_20261128T134256Z_3f2a...). */
export const REPORT_RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9_.@+=-]{0,200}$/

/** --detach, --attach, --stop and --list exclude each other; a run id must look like one. */
function modeFrom(flags: FlagValues): EvalMode {
  const chosen = (['detach', 'attach', 'stop', 'list', 'run-module', 'prune', 'check-assets'] as const).filter(
    (name) => flags[name] !== undefined && flags[name] !== false,
  )
  if (chosen.length > 1) throw new UsageError(`--${chosen.join(' and --')} exclude each other: give one of them.`)
  if (chosen.length && chosen[0] !== 'prune' && flags['dry-run'] === true)
    throw new UsageError(`--dry-run shows the steps of a new run (or what --prune would remove); it does not combine with --${chosen[0]}.`)
  const kind = chosen[0]
  for (const [flag, owner] of [
    ['older-than', 'prune'],
    ['keep-last', 'prune'],
    ['verify-checksums', 'check-assets'],
  ] as const) {
    if (flags[flag] !== undefined && flags[flag] !== false && kind !== owner) throw new UsageError(`--${flag} goes with --${owner}.`)
  }
  if (kind === 'prune') {
    // At least a day, at least one run: a run detached a moment ago may not have been fetched yet.
    const days = wholeNumberFlag(flags, 'older-than', { min: 1, max: 36500, unit: 'days', example: 30 })
    const keep = wholeNumberFlag(flags, 'keep-last', { min: 1, max: 1_000_000, unit: 'runs', example: 20 })
    if (days === undefined && keep === undefined)
      throw new UsageError('--prune needs --older-than DAYS, --keep-last K or both, e.g. --prune --older-than 30 --keep-last 20.')
    return { kind, maxAgeMinutes: days === undefined ? null : days * 1440, keep: keep ?? null }
  }
  if (kind === 'check-assets') return { kind, checksums: flags['verify-checksums'] === true }
  if (listFlag(flags, 'module-arg').length && kind !== 'run-module') throw new UsageError('--module-arg goes with --run-module MODULE.')
  if (kind === 'run-module') {
    const module = stringFlag(flags, 'run-module')!
    if (!MODULE.test(module))
      throw new UsageError(`--run-module ${JSON.stringify(module)} is not a Python module name, e.g. app.tools.rebalance_fast_splits.`)
    const args = listFlag(flags, 'module-arg')
    const bad = args.find((a) => /[\n\r\0]/.test(a))
    if (bad !== undefined)
      throw new UsageError(`--module-arg ${JSON.stringify(bad)} holds a line break; give one argument per --module-arg.`)
    return { kind: 'module', module, args }
  }
  if (kind === 'attach' || kind === 'stop') {
    const runId = stringFlag(flags, kind) ?? ''
    if (!REMOTE_RUN_ID.test(runId) && !REPORT_RUN_ID.test(runId))
      throw new UsageError(
        `--${kind} ${JSON.stringify(runId)} is not a run id: pass remote_run_id (like 20261128-134256-a1b2) or the run_id that names the report's folder (like eval_guardrails_ru_fast_20261128T134256Z_3f2a9c1b7e). See both with --list.`,
      )
    return { kind, runId }
  }
  return kind ? { kind } : { kind: 'run' }
}
