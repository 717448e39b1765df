import { lstatSync } from 'node:fs'
import { lstat, readFile } from 'node:fs/promises'
import path from 'node:path'
import { ExitCode, RemoteEvalError, UsageError } from '../core/errors.ts'
import { CliResult } from '../core/result.ts'
import { prefixedLogger, secretValuesFromEnv, type Logger, type Step } from '../core/log.ts'
import { bothOrFirstError } from '../core/async.ts'
import { takeTargetLock, type HeldLock } from '../target/lock.ts'
import { inspectionFor, prepareSync, pushPrepared } from '../sync/sync.ts'
import { kindOf } from '../transport/kinds.ts'
import { recordingTransport, tripSummary, type RoundTrip } from '../transport/recording.ts'
import type { Transport } from '../transport/types.ts'
import { DRY_RUN_ASSUMES, simulatedTarget, stepOf } from './dry-run.ts'
import { guardRun, oneRun } from './interrupt.ts'
import { attachShards, runSharded, stopGroup } from './sharded.ts'
import {
  GROUP_ID,
  OUTPUT_DIR,
  REMOTE_RUN_ID,
  optionsFor,
  takesSeveralTargets,
  type EvalMode,
  type EvalOptions,
  type TargetSlot,
} from './options.ts'
import { attachHint, detachedRun, followRun, listRuns, newRunId, runDirOf, runEndedError, stopRun, type RunEnd } from './runs.ts'
import {
  checkRunDir,
  PREFLIGHT_LIBRARY,
  preflightArgs,
  prepareAssets,
  pullRunDir,
  readPreflight,
  type PreparedSplits,
  runModule,
  startEval,
  syncDeps,
  type RunContext,
  type TargetContext,
} from './steps.ts'
import { reportDeltas } from './deltas.ts'
import { compareOnTarget } from './repo-compare.ts'
import { checkAssetsOnTarget, listOnTarget, pruneOnTarget } from './housekeeping.ts'
import { metricsTable } from './summary.ts'
import { RunTimeline } from './timeline.ts'
import { codeVersion, writeRunRecord } from './record.ts'
import { publishRun } from './history.ts'
import { toolVersion } from '../core/version.ts'

// The run, the same for SSH and kubectl: preflight, sync, deps, assets, run, fetch, summary.

/** Opens the transport for the target, as its kind does (closed on every way out, Ctrl-C included). */
export function openTarget(options: EvalOptions, logger: Logger): Promise<Transport> {
  return kindOf(options.target).open(options.target, logger)
}

export interface EvalContext {
  logger: Logger
  signal: AbortSignal
  /** Opens the target; by default as the options say (tests wrap it to record what is sent). */
  open?: (options: EvalOptions, logger: Logger) => Promise<Transport>
}

/** Runs the eval on the target (or detaches, attaches, stops, lists); returns the JSON and exit code. */
export async function runRemoteEval(options: EvalOptions, context: EvalContext): Promise<CliResult> {
  // --env values named like secrets are hidden here too (on the target, the run's redaction does it).
  context.logger.addSecrets(secretValuesFromEnv(options.env))
  // A dry run names no --selector (options.ts): finding targets connects nowhere there.
  options = await findTargets(options, context.logger)
  const { mode } = options
  if (mode.kind === 'list') return listTargets(options, context)
  if (mode.kind === 'prune' || mode.kind === 'check-assets') {
    const upkeep = { transport: await (context.open ?? openTarget)(options, context.logger), options, logger: context.logger }
    if (mode.kind === 'prune') return pruneOnTarget(upkeep, mode)
    return checkAssetsOnTarget(upkeep, mode)
  }
  if (options.dryRun) return dryRun(options, context)
  if (mode.kind === 'attach' || mode.kind === 'stop') return controlRuns(options, mode, context)
  return startRun(options, context)
}

/** The runner's id of a run given by either id: its own, or the eval's run_id (the report's folder), looked up in --list's. */
async function remoteRunIdOf({
  transport,
  remoteDir,
  given,
  logger,
}: {
  transport: Transport
  remoteDir: string
  given: string
  logger: Logger
}): Promise<string> {
  if (REMOTE_RUN_ID.test(given)) return given
  const found = (await listRuns(transport, remoteDir)).filter((run) => run.run_id === given).at(-1)
  if (!found)
    throw new UsageError(
      `No run in ${remoteDir} on ${transport.target} wrote the report folder ${given}. See the runs there, with both ids, with --list.`,
    )
  logger.step('run', `report folder ${given} is run ${found.id} on ${transport.target}`)
  return found.id
}

/** A target made ready under its lock: preflight, sync, deps and (but for --run-module) assets done. */
interface ReadyTarget {
  run: RunContext
  lock: HeldLock
  tokenPath?: string
  /** The splits the assets step prepared or checked; null for --run-module, which needs none. */
  splits: PreparedSplits | null
}

/**
 * Opens the target and takes its lock; under it the preflight and inspection, the push, deps and
 * assets. The lock is held on return (released by the caller); on a failure it is released here.
 */
async function prepareTarget(
  options: EvalOptions,
  { logger, signal, open = openTarget }: EvalContext,
  timeline: RunTimeline,
): Promise<ReadyTarget> {
  const [transport, prepared] = await bothOrFirstError(
    open(options, logger),
    prepareSync({ projectDir: options.projectDir, remoteDir: options.remoteDir, limits: options.limits, logger }),
  )
  // Preflight, sync, deps and downloads under the target's lock, held until the eval runs.
  const locking = takeTargetLock(transport, {
    remoteDir: options.remoteDir,
    wait: options.wait,
    library: PREFLIGHT_LIBRARY,
    fn: 'eval_preflight_and_inspect',
    args: [...preflightArgs(options), ...inspectionFor(prepared, options.fullSync)],
    logger,
    step: 'preflight',
  })
  try {
    const target: TargetContext = { transport, options, logger, signal }
    const preflight = locking.then((lock) => readPreflight(lock, target))
    let preflightEnded = 0
    void preflight.then(() => (preflightEnded = performance.now())).catch(() => undefined)
    // The push prepares its local side while the target answers; it sends nothing before that.
    const pushed = await pushPrepared({
      transport,
      prepared,
      facts: preflight.then((p) => p.remoteDir),
      session: locking.then((lock) => lock.session),
      remoteDirFlag: options.remoteDirFlag,
      adopt: options.adopt,
      full: options.fullSync,
      allowSecrets: options.allowSecrets,
      logger,
    })
    const [facts, lock] = await Promise.all([preflight, locking])
    timeline.end('preflight', preflightEnded)
    timeline.end('sync')
    if (pushed.unchanged) timeline.skip('sync', 'unchanged tree')
    const { python, tokenPath } = facts
    const run: RunContext = { ...target, python, session: lock.session }
    const deps = await syncDeps(run, facts.depsStamp)
    timeline.end('deps')
    if (deps !== 'synced') timeline.skip('deps', deps === 'venv' ? 'a prebuilt --venv' : 'pyproject.toml, uv.lock and extras unchanged')
    if (options.mode.kind === 'module') return { run, lock, tokenPath, splits: null }
    const splits = await prepareAssets(run, facts)
    timeline.end('assets')
    if (!options.online) timeline.skip('assets', 'complete, checked against their manifests')
    return { run, lock, tokenPath, splits }
  } catch (error) {
    await (await locking.catch(() => null))?.release()
    throw error
  }
}

/** A new run: the target made ready under its lock, then the eval, its report. */
async function startRun(options: EvalOptions, context: EvalContext): Promise<CliResult> {
  if (options.shard) return startShardedRun(options, context)
  const { logger } = context
  const timeline = new RunTimeline()
  const { run, lock, tokenPath } = await prepareTarget(options, context, timeline)
  const { transport } = run
  const runId = newRunId()
  let end: RunEnd | null
  try {
    if (options.mode.kind === 'module') {
      const code = await runModule(run, { ...options.mode, tokenPath })
      return new CliResult(undefined, code)
    }
    let disarm = () => {}
    const follow = options.mode.kind === 'run'
    end = await startEval(run, {
      id: runId,
      follow,
      tokenPath,
      onStarted: () => {
        void lock.release()
        if (follow) disarm = guard(run, runId)
      },
    }).finally(() => disarm())
  } finally {
    await lock.release()
  }
  timeline.end('run')
  if (!end) {
    logger.step('done', `run ${runId} started on ${transport.target}; to follow it and fetch its report, ${attachHint(runId)}`)
    logger.step('done', timeline.line())
    return new CliResult({ ...detachedRun(transport.target, options.remoteDir, runId), ...timeline.json() }, ExitCode.ok)
  }
  const fetched = await fetchReport(run, { runId, end, timeline })
  logger.step('done', timeline.line())
  return new CliResult({ ...(fetched.output as Record<string, unknown>), ...timeline.json() }, fetched.exitCode)
}

/** The options with the targets named and a --selector's pods found (with their GPUs); several for --shard, --list and groups only. */
async function findTargets(options: EvalOptions, logger: Logger): Promise<EvalOptions> {
  const slots: TargetSlot[] = []
  for (const slot of options.targets) {
    const kind = kindOf(slot.target)
    const found = kind.expand ? await kind.expand(slot.target, logger) : [slot.target]
    slots.push(...found.map((target) => ({ target, gpus: slot.gpus })))
  }
  if (slots.length > 1 && !takesSeveralTargets(options.mode, options.shard))
    throw new UsageError(
      `${slots.length} targets were found (${slots.map((s) => kindOf(s.target).name(s.target)).join(', ')}); this works on one: add --shard to share the suite between them, or name one.`,
    )
  return { ...optionsFor(options, slots[0]!), targets: slots }
}

/** Each target's own options and log (prefixed with its name when there are several). */
function perTarget(options: EvalOptions, logger: Logger) {
  const slots = options.targets
  return slots.map((slot) => {
    const name = kindOf(slot.target).name(slot.target)
    return { slot, name, options: optionsFor(options, slot), logger: slots.length > 1 ? prefixedLogger(logger, `[${name}]`) : logger }
  })
}

/**
 * --shard: every target made ready at once, each under its own lock; when one fails, nothing
 * starts anywhere (unless --skip-failed-targets), then the shards of the plan start on them all.
 */
async function startShardedRun(options: EvalOptions, context: EvalContext): Promise<CliResult> {
  const { logger } = context
  const targets = perTarget(options, logger)
  const settled = await Promise.allSettled(
    targets.map((t) => prepareTarget(t.options, { ...context, logger: t.logger }, new RunTimeline())),
  )
  const failed = settled.flatMap((s, i) =>
    s.status === 'rejected' ? [{ name: targets[i]!.name, error: s.reason as unknown, message: messageOf(s.reason) }] : [],
  )
  const ready = settled.flatMap((s, i) => (s.status === 'fulfilled' ? [{ ...s.value, name: targets[i]!.name }] : []))
  if (failed.length && targets.length > 1) {
    for (const f of failed) logger.step('error', `${f.name}: ${f.message}`)
  }
  if (failed.length && (!options.skipFailedTargets || !ready.length)) {
    await Promise.all(ready.map((r) => r.lock.release()))
    if (targets.length > 1)
      logger.step(
        'error',
        `${failed.length} of ${targets.length} targets could not be made ready (${failed.map((f) => f.name).join(', ')}): nothing was started on any. Fix it and run again, or add --skip-failed-targets to go on with the others.`,
      )
    throw failed[0]!.error
  }
  if (failed.length)
    logger.step('warn', `going on without ${failed.map((f) => f.name).join(', ')} (--skip-failed-targets): their GPUs get no shard`)
  return runSharded(
    ready.map((r) => ({ run: r.run, tokenPath: r.tokenPath, splits: r.splits ?? [], release: () => void r.lock.release() })),
    { logger, skipped: failed.map((f) => ({ target: f.name, error: f.message })) },
  )
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** --attach and --stop: earlier runs on the target; nothing is synced. */
async function controlRuns(
  options: EvalOptions,
  mode: Extract<EvalMode, { kind: 'attach' | 'stop' }>,
  { logger, signal, open = openTarget }: EvalContext,
): Promise<CliResult> {
  if (GROUP_ID.test(mode.runId)) {
    const targets: TargetContext[] = []
    for (const t of perTarget(options, logger))
      targets.push({ transport: await open(t.options, t.logger), options: t.options, logger: t.logger, signal })
    return mode.kind === 'stop' ? stopGroup(targets, mode.runId, logger) : attachShards(targets, mode.runId, logger)
  }
  const transport = await open(options, logger)
  const runId = await remoteRunIdOf({ transport, remoteDir: options.remoteDir, given: mode.runId, logger })
  if (mode.kind === 'stop') {
    logger.step(
      'run',
      `stopping run ${runId} on ${transport.target}: SIGTERM to its process group, SIGKILL after ${options.stopGraceSeconds} s`,
    )
    const stopped = await stopRun(transport, { remoteDir: options.remoteDir, runId, graceSeconds: options.stopGraceSeconds, logger })
    logger.step('done', `run ${runId} is ${stopped.state}${stopped.exitCode === null ? '' : ` (exit ${stopped.exitCode})`}`)
    return new CliResult({ remote_run_id: runId, state: stopped.state, exit_code: stopped.exitCode }, ExitCode.ok)
  }
  logger.step('run', `attached to run ${runId} on ${transport.target}; its last lines, then what it writes`)
  const target: TargetContext = { transport, options, logger, signal }
  const disarm = guard(target, runId)
  const end = await followRun(transport, { remoteDir: options.remoteDir, runId, fromEnd: true, logger, signal }).finally(disarm)
  return fetchReport(target, { runId, end })
}

/** --list: the runs on each target named. */
async function listTargets(options: EvalOptions, { logger, open = openTarget }: EvalContext): Promise<CliResult> {
  const targets = perTarget(options, logger)
  const listed: CliResult[] = []
  for (const t of targets)
    listed.push(await listOnTarget({ transport: await open(t.options, t.logger), options: t.options, logger: t.logger }))
  if (listed.length === 1) return listed[0]!
  return new CliResult({ targets: listed.map((l) => l.output) }, ExitCode.ok)
}

/** Arms Ctrl-C for a followed run (see interrupt.ts); returns the disarm. */
function guard({ transport, options, logger, signal }: TargetContext, runId: string): () => void {
  const stop = (graceSeconds: number) => stopRun(transport, { remoteDir: options.remoteDir, runId, graceSeconds, logger })
  const detached = detachedRun(transport.target, options.remoteDir, runId)
  return guardRun({
    guarded: oneRun(runId),
    target: transport.target,
    signal,
    logger,
    graceSeconds: options.stopGraceSeconds,
    stop,
    detached,
  })
}

/** After a run: check and fetch its report directory, print the metrics; exit 0, or 1 when it failed. */
async function fetchReport(target: TargetContext, run: { runId: string; end: RunEnd; timeline?: RunTimeline }): Promise<CliResult> {
  const { runId, end, timeline } = run
  const { transport, options, logger } = target
  if (end.meta.stragglers) {
    logger.step(
      'warn',
      `the eval left ${end.meta.stragglers} process(es) behind; they were stopped ${options.stopGraceSeconds} s after it ended (--stop-grace). Which: ${runDirOf(options.remoteDir, runId)}/stragglers on ${transport.target}`,
    )
  }
  if (!end.json) throw runEndedError(end, runId, transport.target)
  const failed = end.exitCode !== 0
  logger.step(
    'run',
    failed
      ? `the eval ${end.state === 'stopped' ? 'was stopped' : 'failed'} (exit ${end.exitCode ?? 'unknown'}); fetching what it reported`
      : 'the eval finished',
  )
  const json: Record<string, unknown> = { ...end.json, remote_run_id: runId }
  let localRunDir: string | null = null
  let remoteRunDir: string | null = null
  let history: string | null = null
  try {
    const checked = await checkRunDir(target, { json: end.json, reportDir: end.reportDir })
    remoteRunDir = checked.remote
    // The eval's own id of the run: the name of its report's folder (the real CLI prints no run_id).
    json.run_id ??= checked.runId
    localRunDir = path.join(options.projectDir, OUTPUT_DIR, checked.runId)
    // A dry run shows the pull and writes nothing here.
    if (options.dryRun) {
      if (!checked.received) await transport.pull(checked.remote, localRunDir)
      return new CliResult(json, ExitCode.ok)
    }
    const files = await pullRunDir(target, checked, localRunDir)
    logger.step('fetch', `${files} files of ${checked.remote} -> ${localRunDir}`)
    timeline?.end('fetch')
    history = await recordRun(target, { runId, end, json, localRunDir, timeline })
  } catch (error) {
    if (!(error instanceof RemoteEvalError) || error.exitCode !== ExitCode.evalFailed) throw error
    logger.step('error', error.message)
    return new CliResult({ ...localPaths(json, null), local_run_dir: null }, ExitCode.evalFailed)
  }
  // Read only a regular file (never through a link, though the pull removed those).
  const metricsPath = path.join(localRunDir, 'metrics.csv')
  const metrics = (await lstat(metricsPath).catch(() => null))?.isFile() ? await readFile(metricsPath, 'utf8') : null
  // An attached run's suite and split are the run's, not this command's defaults.
  const { suite = options.suite, split = options.split } = end.meta
  if (metrics !== null) logger.step('done', `metrics (${suite} / ${split}):\n${metricsTable(metrics)}`)
  const compared =
    metrics === null ? { baseline: null, deltas: null } : compareWithBaseline(options, logger, { localRunDir, suite, split, end, metrics })
  const repoCompare =
    options.compareTo && !failed && remoteRunDir
      ? await compareOnTarget(target, { id: runId, newReport: `${remoteRunDir}/report.json`, localDir: localRunDir })
      : null
  if (history) logger.step('done', history)
  logger.step(failed ? 'error' : 'done', failed ? `the eval failed; its report is in ${localRunDir}` : `report in ${localRunDir}`)
  return new CliResult(
    { ...localPaths(json, localRunDir), local_run_dir: localRunDir, ...compared, ...(options.compareTo ? { compare: repoCompare } : {}) },
    failed ? ExitCode.evalFailed : ExitCode.ok,
  )
}

/** The deltas against the baseline; the report is fetched already, so a failure here is only a warning. */
function compareWithBaseline(
  options: EvalOptions,
  logger: Logger,
  run: { localRunDir: string; suite: string; split: string; end: RunEnd; metrics: string },
): ReturnType<typeof reportDeltas> {
  try {
    return reportDeltas({ ...run, baseline: options.baseline, startedAt: run.end.meta.started ?? null }, logger)
  } catch (error) {
    logger.step('warn', `could not compare with an earlier run: ${(error as Error).message}`)
    return { baseline: null, deltas: null }
  }
}

/**
 * run.json and run.log beside the fetched report, reports/evaluations/latest pointing at it, and the
 * history page rewritten; returns the line that names the page (null when it could not be written).
 */
async function recordRun(
  { transport, options, logger }: TargetContext,
  run: { runId: string; end: RunEnd; json: Record<string, unknown>; localRunDir: string; timeline?: RunTimeline },
): Promise<string | null> {
  const { end } = run
  const record = {
    target: transport.target,
    remote_dir: options.remoteDir,
    remote_run_id: run.runId,
    run_id: run.json.run_id ?? null,
    suite: end.meta.suite ?? options.suite,
    split: end.meta.split ?? options.split,
    runtime: options.runtime,
    gpus: end.meta.gpus ?? null,
    started_at: end.meta.started ?? null,
    state: end.state,
    exit_code: end.exitCode,
    code: await codeVersion(options.projectDir),
    argv: process.argv.slice(2).map((arg) => logger.redact(arg)),
    runner: toolVersion(),
    ...run.timeline?.json(),
  }
  await writeRunRecord(run.localRunDir, record, end.log)
  return publishRun(path.dirname(run.localRunDir), path.basename(run.localRunDir), logger)
}

/** The eval's paths, as they are on the target, kept under remote_* keys; its own keys point here. */
const REPORT_PATHS = ['run_dir', 'report_json', 'report_md', 'metrics_csv'] as const

/**
 * The eval's JSON with its paths made local: `run_dir` is the fetched directory, each file the
 * fetched copy (null where nothing was fetched); `remote_run_dir` and the other remote_* keys hold
 * what the eval printed.
 */
export function localPaths(json: Record<string, unknown>, localRunDir: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = { ...json }
  const remoteRunDir = typeof json.run_dir === 'string' ? json.run_dir : null
  for (const key of REPORT_PATHS) {
    const remote = json[key]
    if (typeof remote !== 'string') continue
    out[`remote_${key}`] = remote
    if (key === 'run_dir' || localRunDir === null || remoteRunDir === null) {
      out[key] = localRunDir
      continue
    }
    const inside = path.posix.relative(remoteRunDir, remote)
    const local = inside && !inside.startsWith('..') && !path.posix.isAbsolute(inside) ? path.join(localRunDir, ...inside.split('/')) : null
    out[key] = local && lstatSync(local, { throwIfNoEntry: false })?.isFile() ? local : null
  }
  return out
}

/**
 * --dry-run: the pipeline of a real run against a simulated fresh target (dry-run.ts) that runs
 * nothing; each round trip it would send is printed (in full in the JSON). No connection is made.
 */
async function dryRun(options: EvalOptions, { logger, signal }: EvalContext): Promise<CliResult> {
  const kind = kindOf(options.target)
  const target = { kind, name: options.targets.map((slot) => kind.name(slot.target)).join(', ') }
  const several = options.targets.length > 1
  const trips: Array<RoundTrip & { step: Step; target?: string }> = []
  const recorder = (name: string) => (trip: RoundTrip) => {
    const step = stepOf(trip, options)
    trips.push({ step, ...(several && { target: name }), ...trip })
    logger.step(step, `[dry-run] ${trips.length}. ${several ? `${name}: ` : ''}${tripSummary(trip)}`)
  }
  logger.step('preflight', `[dry-run] nothing is sent to ${target.name}. The round trips of a real run, answered as by ${DRY_RUN_ASSUMES}:`)
  // The pipeline's own lines would tell the simulated answers as facts: only the round trips are shown.
  const quiet: Logger = { step() {}, addSecrets: (values) => logger.addSecrets(values), redact: logger.redact }
  const ran = await startRun(options, {
    logger: quiet,
    signal,
    open: async (each) => recordingTransport(simulatedTarget(each, kind), recorder(kind.name(each.target))),
  })
  // --shard: the plan the shards were started by (a fresh target's manifest counts no rows).
  const plan = (ran.output as { plan?: { lines: string[] } } | undefined)?.plan
  if (plan) logger.step('run', `[dry-run] ${plan.lines.join('\n')}`)
  logger.step(
    'done',
    `dry run: ${trips.length} round trips, each script in full in the JSON on stdout (round_trips[].script); nothing was touched on ${target.name}`,
  )
  return new CliResult(
    {
      dry_run: true,
      target: target.name,
      remote_dir: options.remoteDir,
      assumes: DRY_RUN_ASSUMES,
      ...(plan && { plan }),
      round_trips: trips,
    },
    ExitCode.ok,
  )
}
