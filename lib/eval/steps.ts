import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { STALE_SPLITS_FIX } from '../assets/fetch.ts'
import {
  checkPreparedDir,
  checkPreparedDirs,
  datasetsCacheEnv,
  DATASETS_CACHE,
  downloadDatasets,
  downloadModels,
} from '../assets/prepare.ts'
import { describeReport, isComplete, PREPARED_DIRS_LIBRARY, type VerifyReport } from '../assets/verify.ts'
import { ExitCode, InterruptedError, RemoteEvalError, RemotePrerequisiteError, TransportError, UsageError } from '../core/errors.ts'
import { LAYOUT_VARS, TOOL_DIR } from '../core/layout.ts'
import { ENVFILE_LIBRARY } from '../target/envfile.ts'
import { INSPECT_LIBRARY, parseInspection, type RemoteDirFacts } from '../sync/remote-dir.ts'
import { isSystemDir } from '../core/remote-path.ts'
import type { Logger } from '../core/log.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import { pasteWord } from '../core/shell.ts'
import { lastLine } from '../core/text.ts'
import type { HeldSession, Transport } from '../transport/types.ts'
import { unpackReceived } from '../transport/tree.ts'
import { formatBytes } from '../core/units.ts'
import { INSTALL_UV_HINT, pythonCommand, syncCommand, UV_ON_PATH, type PythonEnv } from '../target/uv.ts'
import { OUTPUT_DIR, type EvalOptions } from './options.ts'
import {
  followEnd,
  NO_HEARTBEAT,
  quietRunHeartbeat,
  reportArgs,
  reportsDirOf,
  runGoesOn,
  runMeta,
  RUNS_LIBRARY,
  type ReportDirCheck,
  type RunEnd,
} from './runs.ts'
import { RemoteStatus } from '../core/remote-status.ts'
import { kindOf } from '../transport/kinds.ts'

// The remote steps of a run, each one round trip (but the downloads): preflight, deps, assets,
// the eval itself, and the check of the run directory before it is fetched.

const REMOTE_SH = loadBashLibrary(new URL('./remote.sh', import.meta.url))
/** The functions of the preflight round trip (run under the target's lock, see lib/target/lock.ts). */
export const PREFLIGHT_LIBRARY = `${ENVFILE_LIBRARY}\n${REMOTE_SH}\n${INSPECT_LIBRARY}\n${PREPARED_DIRS_LIBRARY}`
export const SCRIPTS = {
  preflight: callFunction(PREFLIGHT_LIBRARY, 'eval_preflight_and_inspect', LAYOUT_VARS),
  deps: callFunction(REMOTE_SH, 'eval_deps', `${LAYOUT_VARS}\n${UV_ON_PATH}`),
  run: callFunction(`${REMOTE_SH}\n${RUNS_LIBRARY}`, 'eval_run', `${LAYOUT_VARS}\n${UV_ON_PATH}`),
  reportDir: callFunction(RUNS_LIBRARY, 'run_report_dir', LAYOUT_VARS),
  module: callFunction(`${ENVFILE_LIBRARY}\n${REMOTE_SH}`, 'eval_module', `${LAYOUT_VARS}\n${UV_ON_PATH}`),
}

/** The eval's extras: eval, plus cuda on a GPU. */
export const extrasFor = (options: EvalOptions) => (options.runtime === 'cuda' ? ['eval', 'cuda'] : ['eval'])

/** The repo's Python on the target where no preflight asked (--attach): the --venv's, else uv in the remote directory. */
export function pythonOnTarget(options: EvalOptions): PythonEnv {
  return options.venv
    ? { kind: 'venv', python: `${options.venv}/bin/python` }
    : { kind: 'uv', projectDir: options.remoteDir, extras: extrasFor(options) }
}

export function preflightArgs(options: EvalOptions): string[] {
  return [options.remoteDir, options.venv ?? '', options.runtime, options.online ? '1' : '0', options.modelsDir, options.datasetsDir]
}

/**
 * Reads the preflight round trip: bash, uv or the venv, Python, free disk, GPU, token (exit 4
 * naming what to install), and the code sync's inspection of the remote dir.
 */
export interface TargetFacts {
  python: PythonEnv
  remoteDir: RemoteDirFacts
  /** A token `hf auth login` stored on the target, used when HF_TOKEN is set nowhere (online). */
  tokenPath?: string
  /** What the last uv sync there saw (eval_deps' stamp), when its .venv is there. */
  depsStamp?: string
  /** Air-gapped: list_prepared_dirs' listing of the models and datasets directories. */
  assetListing?: string
}

/**
 * What every step of a run works with, passed as one object (as webpod passes {$, host} to each
 * task): the target's transport, the run's options, the logger, Ctrl-C's signal.
 */
export interface TargetContext {
  transport: Transport
  options: EvalOptions
  logger: Logger
  signal: AbortSignal
}

/** A step after the preflight: it also knows the eval repo's Python on the target. */
export interface RunContext extends TargetContext {
  python: PythonEnv
  /** The session holding the target's lock: the steps under it run there, in no session of their own. */
  session?: HeldSession
}

/** Python versions the runbook says break the eval's dependencies. */
const BROKEN_PYTHON = /^3\.(1[4-9])\./

export function readPreflight(
  result: { exitCode: number; stdout: string; stderrTail: readonly string[] },
  target: TargetContext,
): TargetFacts {
  const { transport, options, logger } = target
  if (result.exitCode !== 0) {
    throw new RemotePrerequisiteError(
      `The preflight on ${transport.target} failed (exit ${result.exitCode}): ${lastLine(result.stderrTail)}. The target needs bash and coreutils.`,
    )
  }
  const [preflightPart = '', inspectOutput = ''] = result.stdout.split('@@inspect\0')
  const [preflightOutput = '', assetListing] = preflightPart.split('@@assets\0')
  const facts = new Map<string, string[]>()
  for (const record of preflightOutput.split('\0').filter(Boolean)) {
    const eq = record.indexOf('=')
    facts.set(record.slice(0, eq), [...(facts.get(record.slice(0, eq)) ?? []), record.slice(eq + 1)])
  }
  const one = (key: string) => facts.get(key)?.[0]
  const problems: string[] = []
  let python: PythonEnv | null = null
  if (one('venv')) python = { kind: 'venv', python: one('venv')! }
  else if (one('uv')) python = { kind: 'uv', projectDir: options.remoteDir, extras: extrasFor(options) }
  else if (one('novenv')) problems.push(`--venv ${one('novenv')} has no executable bin/python on ${transport.target}.`)
  else problems.push(`uv is not on ${transport.target}'s PATH, nor in ~/.local/bin or ~/.cargo/bin. ${INSTALL_UV_HINT}`)
  for (const entry of facts.get('free') ?? []) {
    const [kb, where] = [Number(entry.split(' ')[0]), entry.slice(entry.indexOf(' ') + 1)]
    if (kb * 1024 < options.minFreeBytes) {
      problems.push(
        `only ${formatBytes(kb * 1024)} free in ${where} on ${transport.target}; at least ${formatBytes(options.minFreeBytes)} is needed (--min-free-disk). Free some space.`,
      )
    }
  }
  const missing = facts.get('missing') ?? []
  if (missing.length)
    problems.push(
      `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not on ${transport.target}'s PATH: install ${missing.map((m) => (m === 'awk' ? 'awk (mawk or gawk)' : 'util-linux')).join(' and ')} there.`,
    )
  if (one('nvidia-smi') === 'missing')
    problems.push(
      `--runtime cuda, but nvidia-smi is not on ${transport.target}: install the NVIDIA driver there, or run with --runtime cpu.`,
    )
  const gpus = facts.get('gpu') ?? []
  const gpuProblem = gpuProblemOf({ error: one('gpuerror'), listed: one('gpus-listed') !== undefined, gpus, target: transport.target })
  if (gpuProblem) problems.push(gpuProblem)
  if (one('token') === 'none' && !options.env.HF_TOKEN) {
    problems.push(
      `HF_TOKEN is not set on ${transport.target}: export it in the remote login environment, or put HF_TOKEN=hf_... in ` +
        `${options.remoteDir}/.env.eval (the local one never travels). Or prepare the directories and pass --remote-has-internet no.`,
    )
  }
  if (problems.length)
    throw new RemotePrerequisiteError(problems.length === 1 ? problems[0]! : `The target is not ready:\n- ${problems.join('\n- ')}`)
  const version = one('python') ? `, Python ${one('python')}` : ''
  const gpuText = gpus.length ? `, ${gpus.length} GPU(s)` : ''
  const sources: Record<string, string> = {
    environment: 'HF_TOKEN from the environment',
    'env-file': 'HF_TOKEN from .env.eval there',
    login: `the token \`hf auth login\` stored there (${one('token_path')})`,
  }
  const token = options.env.HF_TOKEN ? ', HF_TOKEN from --env' : one('token') ? `, ${sources[one('token')!]}` : ''
  logger.step(
    'preflight',
    `${transport.target}: bash ${one('bash')}, ${python!.kind === 'uv' ? `uv at ${one('uv')}` : `venv ${python!.python}`}${version}${gpuText}${token}`,
  )
  for (const key of facts.get('envwarn') ?? []) {
    logger.step(
      'warn',
      `${options.remoteDir}/.env.eval on ${transport.target}: the line of ${key} reads differently in the eval than in python-dotenv ` +
        '(an inline "# comment" stays in the value, an "export " prefix stays in the key, quotes are stripped from both ends). Write it as KEY=value, with nothing after the value.',
    )
  }
  if (BROKEN_PYTHON.test(one('python') ?? '')) {
    logger.step(
      'warn',
      `Python ${one('python')} on ${transport.target}: the eval's dependencies are known to break on 3.14 (pydantic v1/v2 assumptions); 3.12 works. Pin it: uv python pin 3.12, then run again.`,
    )
  }
  checkGpuIds(options.gpus, gpus, transport.target)
  const tokenPath = one('token') === 'login' && !options.env.HF_TOKEN ? one('token_path') : undefined
  const remoteDir = parseInspection(inspectOutput)
  checkAssetDirs(facts.get('asset') ?? [], remoteDir, target)
  return { python: python!, remoteDir, tokenPath, depsStamp: one('deps'), assetListing }
}

/**
 * The models and datasets directories are guarded as the remote dir is (exit 2, nothing touched):
 * not /, a system directory, the home directory or one every user may write (resolved on the
 * target, through symlinks), not the remote dir itself, not one for both; and, online (where files
 * are written there), not a non-empty directory this tool or the Python tools did not prepare,
 * unless --adopt-asset-dirs.
 */
export function checkAssetDirs(records: readonly string[], remote: RemoteDirFacts, { options, transport }: TargetContext): void {
  const target = transport.target
  const seen = new Map<string, string>()
  for (const record of records) {
    const [label, kind, ww, manifest, ours, nonempty, ...rest] = record.split(' ')
    const flag = `--${label}-dir`
    const dir = label === 'models' ? options.modelsDir : options.datasetsDir
    const real = kind === 'dir' ? rest.join(' ') : dir
    const through = real !== dir ? ` (it resolves to ${real} there)` : ''
    const refuse = (why: string, fix: string) => new UsageError(`${flag} ${dir} ${why} on ${target}${through}. ${fix}`)
    if (kind === 'notdir') throw refuse('exists but is not a directory', `Choose another ${flag}.`)
    if (real === '/' || isSystemDir(real))
      throw refuse('is a system directory', `Use a directory of its own, e.g. ${flag} ${remote.home || '/home/you'}/${label}.`)
    if (remote.home && real === remote.home)
      throw refuse('is the home directory', `Use a directory of its own, e.g. ${flag} ${remote.home}/${label}.`)
    if (ww === '1')
      throw refuse('is writable by every user (as /tmp is)', `Use a directory of your own under it, e.g. ${flag} ${real}/${label}.`)
    if (real === (remote.real ?? options.remoteDir) || real === options.remoteDir)
      throw refuse(
        'is the remote directory itself',
        `Give the ${label} a directory of their own, e.g. ${flag} ${options.remoteDir}/.${label}.`,
      )
    const other = seen.get(real)
    if (other)
      throw refuse(
        `is also ${other}`,
        'Models and datasets each need a directory of their own (their manifests would overwrite each other).',
      )
    seen.set(real, flag)
    if (options.online && kind === 'dir' && nonempty === '1' && manifest === '0' && ours === '0' && !options.adoptAssetDirs) {
      throw refuse(
        "already holds files that neither this tool nor the repo's download tools put there (no manifest.json)",
        `Point ${flag} at a new or empty directory, or pass --adopt-asset-dirs to download into it anyway (nothing of it is deleted).`,
      )
    }
  }
}

/** What decides whether uv sync must run: pyproject.toml, uv.lock and the extras. */
export function depsStamp(projectDir: string, extras: readonly string[]): string {
  const hash = createHash('sha256').update(JSON.stringify(extras))
  for (const file of ['pyproject.toml', 'uv.lock']) {
    try {
      hash.update(`\n${file}\n`).update(readFileSync(path.join(projectDir, file)))
    } catch {
      hash.update(`\n${file} absent\n`)
    }
  }
  return hash.digest('hex')
}

/** uv sync with the extras, skipped when `stored`, the stamp the preflight read there, says nothing changed. */
export async function syncDeps(
  { transport, options, python, logger, session }: RunContext,
  stored: string | undefined,
): Promise<'synced' | 'unchanged' | 'venv'> {
  const command = syncCommand(python)
  if (!command) {
    logger.step('deps', `prebuilt venv ${python.kind === 'venv' ? python.python : ''}: no uv sync`)
    return 'venv'
  }
  const stamp = depsStamp(options.projectDir, extrasFor(options))
  if (stored === stamp) {
    logger.step('deps', 'pyproject.toml, uv.lock and extras unchanged since the last sync: skipped')
    return 'unchanged'
  }
  const result = await transport.run(SCRIPTS.deps, [options.remoteDir, stamp, '--', ...command], {
    onStderrLine: (line) => logger.step('deps', line),
    session,
  })
  if (result.exitCode !== 0) {
    throw new RemotePrerequisiteError(
      `uv sync failed on ${transport.target} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}. Fix the eval repo's dependencies, or pass --venv with a prebuilt environment.`,
    )
  }
  logger.step('deps', `uv sync --extra ${extrasFor(options).join(' --extra ')}: done`)
  return 'synced'
}

/**
 * A command to paste on a machine with internet, from anywhere: prepare the directory in a fresh
 * temporary one with this tool's own script (the eval repo's Makefile may have other targets), then
 * copy it to the target the way this run reached it (the same ssh config and options; for a pod, a
 * tar stream through kubectl exec, which needs nothing but tar in the image).
 */
function fixCommand(options: EvalOptions, kind: 'models' | 'datasets'): string {
  const dir = kind === 'models' ? options.modelsDir : options.datasetsDir
  const q = pasteWord
  const prepare =
    kind === 'models'
      ? [path.join(TOOL_SCRIPTS, 'download_models.ts'), '--models-dir', `$d`, '--project-dir', options.projectDir]
      : [
          path.join(TOOL_SCRIPTS, 'download_datasets.ts'),
          '--datasets-dir',
          `$d`,
          '--project-dir',
          options.projectDir,
          '--suite',
          options.suite,
          '--splits',
          options.downloadSplits.join(','),
        ]
  const words = (list: string[]) => list.map((w) => (w === '$d' ? '"$d"' : q(w))).join(' ')
  const copy = kindOf(options.target).copyCommand(options.target, dir)
  return `on a machine with internet: d=$(mktemp -d) && ${words(prepare)} && ${copy} (or run with --remote-has-internet yes)`
}

/** This tool's scripts/, for commands printed to paste. */
const TOOL_SCRIPTS = fileURLToPath(new URL('../../scripts', import.meta.url))

/** The splits a datasets manifest lists, with the suite's id and rows where it records them. */
export type PreparedSplits = ReadonlyArray<{ dataset_id?: string; split: string; rows?: number }>

/**
 * Online: fetch what the directories lack, on the target. Air-gapped: check them (from the
 * preflight's listing); exit 10 or 11. Returns the datasets manifest's splits, as read or written.
 */
export async function prepareAssets(
  { transport, options, python, logger }: RunContext,
  facts: Pick<TargetFacts, 'tokenPath' | 'assetListing'>,
): Promise<PreparedSplits> {
  const { tokenPath } = facts
  if (options.online) {
    // The token stays on the target: fetch.py reads it from there (environment or .env.eval).
    const common = {
      transport,
      python,
      logger,
      envFile: `${options.remoteDir}/.env.eval`,
      extraEnv: { ...pickToken(options.env), ...tokenPathEnv(tokenPath) },
      wait: options.wait,
    }
    await downloadModels({
      ...common,
      modelsDir: options.modelsDir,
      needs: options.models,
      policyPath: path.join(options.projectDir, 'configs/policy.yaml'),
    })
    // Every split the suite declares of fast and full, as download_datasets.py prepares them: the
    // directory is then a bundle an air-gapped run of either split can use.
    const manifest = await downloadDatasets({
      ...common,
      datasetsDir: options.datasetsDir,
      needs: { ...options.datasets, splits: options.downloadSplits },
      fresh: options.freshCache,
    })
    return manifest.datasets
  }
  const reports = await verifyAssetDirs(
    { transport, options, logger },
    {
      listed: facts.assetListing,
      checksums: false,
      consequence: ' (air-gapped: nothing is downloaded there), so the eval was not started',
    },
  )
  return reports.find((report) => report.kind === 'datasets')?.datasets ?? []
}

/**
 * Checks the target's models and datasets directories against their manifests and what the suite
 * and policy need (sizes; every file's sha256 with checksums). An incomplete one is exit 10 or 11,
 * with the command that prepares it; the error's output holds both reports.
 */
export async function verifyAssetDirs(
  { transport, options, logger }: Pick<TargetContext, 'transport' | 'options' | 'logger'>,
  how: { listed?: string; checksums: boolean; consequence: string },
): Promise<VerifyReport[]> {
  const requests = [
    { dir: options.modelsDir, kind: 'models', needs: { models: options.models } },
    { dir: options.datasetsDir, kind: 'datasets', needs: { datasets: options.datasets } },
  ] as const
  const reports = how.checksums
    ? // Both directories hashed at once: each is a round trip that reads all its data there.
      await Promise.all(requests.map((request) => checkPreparedDir({ ...request, transport, checksums: true })))
    : await checkPreparedDirs(transport, requests, how.listed)
  for (const report of reports) logger.step(report.kind, describeReport(report))
  const incomplete = reports.find((report) => !isComplete(report))
  if (incomplete)
    throw new RemoteEvalError(
      `The ${incomplete.kind} on ${transport.target} are not complete${how.consequence}.`,
      incomplete.kind === 'models' ? ExitCode.modelsMissing : ExitCode.datasetsMissing,
      { hint: fixCommand(options, incomplete.kind), output: assetsJson(reports) },
    )
  return reports
}

/** The reports of --check-assets as JSON: per directory, whether it is complete and what is wrong. */
export function assetsJson(reports: readonly VerifyReport[]): Record<string, unknown> {
  return Object.fromEntries(
    reports.map((r) => [
      r.kind,
      {
        dir: r.dir,
        complete: isComplete(r),
        files: r.checkedFiles,
        bytes: r.checkedBytes,
        checksums: r.checksums,
        problem: r.noManifest ?? null,
        ...r.problems,
        uncovered: r.uncovered,
      },
    ]),
  )
}

/** HF_TOKEN_PATH at a token `hf auth login` stored: the run moves HF_HOME away from it. */
const tokenPathEnv = (tokenPath: string | undefined): Record<string, string> => (tokenPath ? { HF_TOKEN_PATH: tokenPath } : {})
const pickToken = (env: Record<string, string>): Record<string, string> => (env.HF_TOKEN ? { HF_TOKEN: env.HF_TOKEN } : {})

/**
 * The environment of the eval on the target: the bash runner's (docs/REMOTE_EVAL.md), the stored token's
 * path when that is the token, then the user's --env (which wins).
 */
export function evalEnvironment(options: EvalOptions, tokenPath?: string): Record<string, string> {
  const env: Record<string, string> = {
    GR_RUNTIME_MODE: options.runtime,
    GR_MODEL_DIR: options.modelsDir,
    ...datasetsCacheEnv(options.datasetsDir),
    HF_HUB_DISABLE_TELEMETRY: '1',
  }
  if (!options.online)
    Object.assign(env, { GR_OFFLINE_MODE: 'true', HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' })
  if (process.env.HF_ENDPOINT) env.HF_ENDPOINT = process.env.HF_ENDPOINT
  if (options.gpus !== undefined) env.CUDA_VISIBLE_DEVICES = options.gpus
  return { ...env, ...tokenPathEnv(tokenPath), ...options.env }
}

/** The eval's command line on the target: uv run (no sync: deps did it) or the venv's python. */
export function evalCommand(options: EvalOptions, python: PythonEnv): string[] {
  const args = [
    '-m',
    options.evalModule,
    '--suite',
    options.suite,
    '--split',
    options.split,
    '--env-file',
    '.env.eval',
    '--output-dir',
    OUTPUT_DIR,
  ]
  if (options.workers !== undefined) args.push('--workers', String(options.workers))
  return pythonCommand(python, [...args, ...options.evalArgs], { sync: false })
}

/** A shard of a --shard run, as its record on the target names it. */
export interface ShardMeta {
  group: string
  number: number
  datasets: string[]
}

export function runArgs(options: EvalOptions, python: PythonEnv, run: { id: string; follow: boolean; shard?: ShardMeta }): string[] {
  const cacheRoot = `${options.datasetsDir}/${DATASETS_CACHE}`
  const meta = runMeta({
    suite: options.suite,
    split: options.split,
    gpus: options.gpus,
    runner: `${hostname()} pid ${process.pid}`,
    stop_grace: String(options.stopGraceSeconds),
    ...(run.shard && { group: run.shard.group, shard: String(run.shard.number), datasets: run.shard.datasets.join(',') }),
  })
  // The overlay for a read-only cache is the run's own: another run may be reading its own.
  const overlay = `${options.remoteDir}/${TOOL_DIR}/datasets-cache/${run.id}`
  return [
    options.remoteDir,
    cacheRoot,
    overlay,
    run.id,
    meta,
    run.follow ? '1' : '0',
    options.runtime === 'cuda' ? '1' : '0',
    ...reportArgs(options.remoteDir),
    '--',
    ...evalCommand(options, python),
  ]
}

/**
 * Starts the eval as run `id` on the target, in its own session (runs.sh). With follow, streams its
 * stderr as [run] lines and returns how it ended; `onStarted` is called once it runs.
 */
export async function startEval(
  { transport, options, python, logger, signal, session }: RunContext,
  run: { id: string; follow: boolean; onStarted: () => void; tokenPath?: string; shard?: ShardMeta },
): Promise<RunEnd | null> {
  logger.step('run', `${evalCommand(options, python).join(' ')}  (in ${options.remoteDir} on ${transport.target}, run ${run.id})`)
  let started = false
  let staleSplits = false
  const log: string[] = []
  // A start that does not follow (a shard's) has no heartbeat: the group's follow has one for all.
  const beat = run.follow ? quietRunHeartbeat(logger) : NO_HEARTBEAT
  const result = await transport
    .run(SCRIPTS.run, runArgs(options, python, run), {
      env: evalEnvironment(options, run.tokenPath),
      stdoutEncoding: 'latin1',
      onStderrLine: (line) => {
        if (line === `@@started ${run.id}`) {
          started = true
          run.onStarted()
          return
        }
        beat.saw()
        log.push(line)
        logger.step('run', line)
        if (!staleSplits && line.includes('NonMatchingSplitsSizesError')) {
          staleSplits = true
          logger.step('warn', STALE_SPLITS_FIX)
        }
      },
      signal,
      session,
      releaseLock: true,
    })
    .finally(() => beat.stop())
    .catch((error: unknown) => {
      if (started) throw runGoesOn(error, run.id, signal)
      // Cut off while starting: the target may still have started it, unseen.
      if (signal.aborted)
        throw new InterruptedError(
          `Interrupted while run ${run.id} was starting; it may have started there: see --list, and --stop ${run.id} if so.`,
        )
      if (error instanceof TransportError)
        throw new TransportError(error.message, {
          cause: error,
          hint: `run ${run.id} may have started there: see --list, and --attach ${run.id} or --stop ${run.id}.`,
        })
      throw error
    })
  if (!started) {
    if (signal.aborted)
      throw new InterruptedError(
        `Interrupted while run ${run.id} was starting; it may have started there: see --list, and --stop ${run.id} if so.`,
      )
    // The target could not make the run's directory or the cache overlay, or lacks setsid.
    if (([RemoteStatus.noDirectory, RemoteStatus.noOverlay, RemoteStatus.missingTool] as number[]).includes(result.exitCode))
      throw new RemotePrerequisiteError(
        `Could not start the eval on ${transport.target}: ${lastLine(result.stderrTail)}. Check free space and permissions in ${options.remoteDir} there.`,
      )
    throw new TransportError(`Could not start the eval on ${transport.target} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}`)
  }
  return run.follow ? { ...(await followEnd(result, transport, { runId: run.id, signal })), log } : null
}

/**
 * --run-module: python -m MODULE ARGS in the synced repo on the target, outside the report contract:
 * its stderr as [run] lines, its stdout passed through to ours, its exit code returned.
 */
export async function runModule(
  { transport, options, python, logger, signal, session }: RunContext,
  module: { module: string; args: string[]; tokenPath?: string },
): Promise<number> {
  const command = pythonCommand(python, ['-m', module.module, ...module.args], { sync: false })
  logger.step('run', `${command.join(' ')}  (in ${options.remoteDir} on ${transport.target})`)
  const env = {
    HF_HUB_DISABLE_TELEMETRY: '1',
    ...(process.env.HF_ENDPOINT ? { HF_ENDPOINT: process.env.HF_ENDPOINT } : {}),
    ...tokenPathEnv(module.tokenPath),
    ...options.env,
  }
  const result = await transport.run(SCRIPTS.module, [options.remoteDir, '--', ...command], {
    env,
    stdoutSink: process.stdout,
    onStderrLine: (line) => logger.step('run', line),
    signal,
    session,
  })
  logger.step(result.exitCode === 0 ? 'done' : 'error', `python -m ${module.module} exited ${result.exitCode}`)
  return result.exitCode
}

const RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9_.@+=-]*$/

/** A run directory fit to fetch; `received`: it already came along at the end of the followed run. */
export interface CheckedRunDir {
  remote: string
  runId: string
  skipped: string[]
  received?: Buffer
}

/**
 * The run directory to fetch, checked: a non-empty absolute path strictly inside the remote output
 * directory, symlinks resolved on the target (by the follow as the run ended, when it checked the
 * same path; else in a round trip of its own). Anything else is an error, never a fetch.
 */
export async function checkRunDir(
  { transport, options }: TargetContext,
  run: { json: Record<string, unknown>; reportDir?: ReportDirCheck },
): Promise<CheckedRunDir> {
  const output = reportsDirOf(options.remoteDir)
  const claimed = run.json.run_dir
  const refuse = (why: string) =>
    new RemoteEvalError(`Not fetching the report: ${why}. The eval's run_dir must be a directory inside ${output}.`, ExitCode.evalFailed)
  if (typeof claimed !== 'string' || claimed.trim() === '')
    throw refuse(`the eval printed ${claimed === undefined ? 'no run_dir' : `run_dir ${JSON.stringify(claimed)}`}`)
  const absolute = path.posix.resolve(options.remoteDir, claimed)
  const folded = run.reportDir?.absolute === absolute ? run.reportDir : undefined
  // The real eval prints run_dir resolved (write_outputs.py): through a --remote-dir that is a
  // symlink it lies outside the path as given, and only the target, which resolved both, can say
  // it is inside.
  const resolvedInside = folded?.status === 0
  if (!absolute.startsWith(`${output}/`) && !resolvedInside) throw refuse(`run_dir ${JSON.stringify(claimed)} is outside ${output}`)
  const checked = folded ? { exitCode: folded.status, stdout: folded.output } : await transport.run(SCRIPTS.reportDir, [output, absolute])
  if (([RemoteStatus.noOutputDir, RemoteStatus.noRunDir, RemoteStatus.runDirOutside] as number[]).includes(checked.exitCode))
    throw refuse(checked.stdout)
  if (checked.exitCode !== 0)
    throw new TransportError(
      `Cannot check run_dir on ${transport.target} (exit ${checked.exitCode}): ${'stderrTail' in checked ? lastLine(checked.stderrTail) : checked.stdout}`,
    )
  const [remote = '', ...skipped] = checked.stdout.split('\0')
  const runId = path.posix.basename(remote)
  if (!RUN_ID.test(runId)) throw refuse(`its name ${JSON.stringify(runId)} is not a plain directory name`)
  return { remote, runId, skipped, ...(folded?.archive ? { received: folded.archive } : {}) }
}

/**
 * Pulls a checked run directory into localDir: into a fresh directory beside it first, from which
 * anything but regular files and directories is removed (a link could point anywhere here), then
 * renamed into place. What was there before under that name is replaced.
 */
export async function pullRunDir({ transport, logger }: TargetContext, run: CheckedRunDir, localDir: string): Promise<number> {
  if (run.skipped.length) {
    logger.step(
      'warn',
      `not fetched (not a regular file or directory): ${run.skipped.slice(0, 5).join(', ')}${run.skipped.length > 5 ? ` and ${run.skipped.length - 5} more` : ''}`,
    )
  }
  await mkdir(path.dirname(localDir), { recursive: true })
  const fresh = await mkdtemp(`${localDir}.partial-`)
  try {
    const pulled = run.received
      ? await unpackReceived(run.received, fresh, { remoteDir: run.remote, target: transport.target })
      : await transport.pull(run.remote, fresh)
    const strays = (await readdir(fresh, { recursive: true, withFileTypes: true })).filter((e) => !e.isFile() && !e.isDirectory())
    for (const entry of strays) await rm(path.join(entry.parentPath, entry.name), { force: true })
    await rm(localDir, { recursive: true, force: true })
    await rename(fresh, localDir)
    return pulled.files
  } finally {
    await rm(fresh, { recursive: true, force: true })
  }
}

/** What keeps a CUDA run from starting, from what `nvidia-smi -L` said: its failure, or no GPU listed. */
function gpuProblemOf({
  error,
  listed,
  gpus,
  target,
}: {
  error?: string
  listed: boolean
  gpus: readonly string[]
  target: string
}): string | null {
  if (error !== undefined) {
    const [status, ...message] = error.split(' ')
    const said = message.join(' ').trim() || 'no message'
    if (/No devices were found/i.test(said))
      return `--runtime cuda, but nvidia-smi -L on ${target} finds no GPU ("${said}"): check that the host has GPUs and the driver sees them, or run with --runtime cpu.`
    const hint = /version mismatch/i.test(said) ? ' (after a driver upgrade, reboot the host or reload the nvidia kernel module)' : ''
    return `--runtime cuda, but nvidia-smi -L failed on ${target} (exit ${status}): "${said}". Fix the NVIDIA driver there${hint}, or run with --runtime cpu.`
  }
  if (listed && gpus.length === 0)
    return `--runtime cuda, but nvidia-smi -L on ${target} lists no GPU: check the driver there, or run with --runtime cpu.`
  return null
}

/** Each --gpus id must be one that nvidia-smi lists (exit 2 otherwise). */
function checkGpuIds(wanted: string | undefined, gpus: readonly string[], target: string): void {
  if (wanted === undefined || gpus.length === 0) return
  const unknown = wanted.split(',').filter((id) => !gpus.includes(String(Number(id))))
  if (unknown.length) {
    throw new UsageError(
      `--gpus ${wanted}: ${target} has no GPU ${unknown.join(', ')}; nvidia-smi -L lists ${gpus.join(', ')}. Pass ids from that list, e.g. --gpus ${gpus[0]}.`,
    )
  }
}
