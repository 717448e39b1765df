import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { ExitCode, RemoteEvalError, UsageError } from '../core/errors.ts'
import { prefixedLogger } from '../core/log.ts'
import { CliResult } from '../core/result.ts'
import { lastLine } from '../core/text.ts'
import { pythonCommand } from '../target/uv.ts'
import { publishRun } from './history.ts'
import { guardRun } from './interrupt.ts'
import { compareOnTarget } from './repo-compare.ts'
import { metricsFromReport } from './metrics.ts'
import { OUTPUT_DIR, type EvalOptions } from './options.ts'
import { finishedRuns, writeRunRecord } from './record.ts'
import { attachHint, detachedRun, followRun, listRuns, newRunId, reportsDirOf, stopRun, type RunEnd } from './runs.ts'
import { datasetCosts, planShards, timedDatasets, type ShardPlan, type TimedDataset } from './shards.ts'
import {
  checkRunDir,
  pullRunDir,
  pythonOnTarget,
  SCRIPTS,
  startEval,
  type CheckedRunDir,
  type PreparedSplits,
  type RunContext,
  type TargetContext,
} from './steps.ts'
import { rowsTable } from './summary.ts'

// --shard: the suite's datasets split across the GPUs of --gpus, one eval per GPU, each started
// after the shared work (preflight, sync, deps, assets) was done once; followed together; their
// reports merged on the target by the repo's own merger and brought home under one folder.

/** One shard as planned and started: its GPU, its datasets, what it is expected to cost, its run. */
export interface ShardRun {
  number: number
  gpu: string
  datasets: string[]
  expected: number
  runId: string
}

/** The suite's datasets with their rows in the split, from the datasets manifest the assets step read or wrote. */
function suiteDatasets(options: EvalOptions, prepared: PreparedSplits): { rows: Array<{ id: string; rows: number }>; counted: boolean } {
  const rows = new Map<string, number>()
  // A fresh target's (a dry run's) manifest counts no rows: none is counted.
  for (const entry of prepared)
    if (entry.split === options.split && entry.dataset_id !== undefined && (entry.rows ?? 0) > 0) rows.set(entry.dataset_id, entry.rows!)
  // A dataset the manifest does not count (a Python tool's older manifest) costs as much as the largest one.
  const fallback = Math.max(1, ...rows.values())
  return { rows: options.datasets.datasets.map((d) => ({ id: d.id, rows: rows.get(d.id) ?? fallback })), counted: rows.size > 0 }
}

/** The timed datasets of the newest finished local run of this suite and split, and its folder. */
function earlierTimes(run: RunContext): { folder: string; times: TimedDataset[] } | null {
  const reportsDir = path.join(run.options.projectDir, OUTPUT_DIR)
  for (const local of finishedRuns(reportsDir, run.options).reverse()) {
    try {
      const times = timedDatasets(JSON.parse(readFileSync(path.join(local.dir, 'report.json'), 'utf8')))
      if (times.length) return { folder: local.folder, times }
    } catch {
      // No readable report there: an older run may have one.
    }
  }
  return null
}

/** The plan for the GPUs of --gpus, printed as it will run. */
export function planFor(
  run: RunContext,
  prepared: PreparedSplits,
): { plan: ShardPlan; shards: Omit<ShardRun, 'runId'>[]; lines: string[] } {
  const gpus = [...new Set(run.options.gpus!.split(',').map((id) => String(Number(id))))]
  const earlier = earlierTimes(run)
  const datasets = suiteDatasets(run.options, prepared)
  const plan = planShards(datasetCosts(datasets.rows, earlier?.times ?? []), gpus.length)
  const shards = plan.shards.map((shard, i) => ({ number: i + 1, gpu: gpus[i]!, ...shard }))
  const unit = (n: number) => (plan.unit === 'rows' ? `${Math.round(n)} rows` : n < 1 ? 'under 1 s' : `${Math.round(n)} s`)
  const basis = earlier
    ? `times of the earlier run ${earlier.folder}`
    : datasets.counted
      ? 'rows in the datasets manifest (no earlier run timed them)'
      : 'equal shares (no earlier run timed the datasets, and the datasets manifest counts no rows)'
  const lines = [
    `plan: ${shards.length} shards on GPUs ${shards.map((s) => s.gpu).join(',')} of ${run.transport.target}, by ${basis}; expected ${unit(plan.makespan)} in all`,
    ...shards.map((s) => `  shard ${s.number} on GPU ${s.gpu}: ${s.datasets.join(', ')} (${unit(s.expected)})`),
    ...(gpus.length > shards.length ? [`  GPU(s) ${gpus.slice(shards.length).join(', ')} idle: fewer datasets than GPUs`] : []),
  ]
  run.logger.step('run', lines.join('\n'))
  return { plan, shards, lines }
}

/** Starts every shard of the plan detached, on the lock's session, each recorded as one of `group`. */
async function startShards(run: RunContext, plan: { group: string; shards: ShardRun[] }, tokenPath?: string): Promise<void> {
  for (const shard of plan.shards) {
    const options = {
      ...run.options,
      gpus: shard.gpu,
      evalArgs: [...run.options.evalArgs, ...shard.datasets.flatMap((id) => ['--dataset', id])],
    }
    const meta = { group: plan.group, number: shard.number, datasets: shard.datasets }
    await startEval(
      { ...run, options, logger: prefixedLogger(run.logger, shardPrefix(shard)) },
      { id: shard.runId, follow: false, onStarted: () => {}, tokenPath, shard: meta },
    )
  }
}

const shardPrefix = (shard: { number: number; gpu: string }) => `[shard ${shard.number} gpu ${shard.gpu}]`

/** A sharded run, after the shared work: plan, start, follow together, merge, fetch under one folder. */
export async function runSharded(
  run: RunContext,
  context: { tokenPath?: string; prepared: PreparedSplits; release: () => void },
): Promise<CliResult> {
  const startedAt = new Date().toISOString()
  const { shards: planned, plan, lines } = planFor(run, context.prepared)
  const shards = planned.map((shard) => ({ ...shard, runId: newRunId() }))
  const group = `shards-${shards[0]!.runId}`
  try {
    await startShards(run, { group, shards }, context.tokenPath)
  } finally {
    context.release()
  }
  // A dry run shows the plan and each shard's start; following and merging send nothing new to see.
  if (run.options.dryRun) return new CliResult({ plan: { ...plan, lines } }, ExitCode.ok)
  const ends = await followShards(run, { group, shards, fromEnd: false })
  return fetchShards(run, { group, shards, ends, plan, startedAt })
}

/** Follows the shards together, their lines prefixed; Ctrl-C stops (or detaches from) all of them. */
async function followShards(run: RunContext, { group, shards, fromEnd }: { group: string; shards: ShardRun[]; fromEnd: boolean }) {
  const { transport, options, logger, signal } = run
  const disarm = guardRun({
    guarded: { name: `${shards.length} shards (runs ${shards.map((s) => s.runId).join(', ')})`, plural: true, comeBack: attachHint(group) },
    target: transport.target,
    signal,
    logger,
    graceSeconds: options.stopGraceSeconds,
    stop: (grace) => stopShards(run, { shards, graceSeconds: grace }),
    detached: { group, runs: shards.map((s) => detachedRun(transport.target, options.remoteDir, s.runId)) },
  })
  try {
    return await Promise.all(
      shards.map((s) =>
        followRun(transport, {
          remoteDir: options.remoteDir,
          runId: s.runId,
          fromEnd,
          logger: prefixedLogger(logger, shardPrefix(s)),
          signal,
        }),
      ),
    )
  } finally {
    disarm()
  }
}

/** Stops every shard at once; their states, in shard order. */
async function stopShards(
  { transport, options, logger }: TargetContext,
  { shards, graceSeconds }: { shards: ShardRun[]; graceSeconds: number },
) {
  const ended = await Promise.all(
    shards.map((s) =>
      stopRun(transport, { remoteDir: options.remoteDir, runId: s.runId, graceSeconds, logger: prefixedLogger(logger, shardPrefix(s)) }),
    ),
  )
  return { state: ended.map((e) => e.state).join(', '), exitCode: null, each: ended }
}

/** The shards of `group` on the target, from their records (exit 2 when there are none). */
async function shardsOf({ transport, options }: TargetContext, group: string): Promise<ShardRun[]> {
  const runs = (await listRuns(transport, options.remoteDir)).filter((r) => r.group === group)
  if (!runs.length)
    throw new UsageError(
      `There is no sharded run ${group} in ${options.remoteDir} on ${transport.target}. See the runs there, with their groups, with --list.`,
    )
  return runs
    .map((r, i) => ({ number: r.shard ?? i + 1, gpu: r.gpus ?? '?', datasets: r.datasets ?? [], expected: 0, runId: r.id }))
    .sort((a, b) => a.number - b.number)
}

/** --attach GROUP: follows its shards from their last lines, then fetches and merges as a sharded run does. */
export async function attachShards(target: TargetContext, group: string): Promise<CliResult> {
  const run: RunContext = { ...target, python: pythonOnTarget(target.options) }
  const shards = await shardsOf(run, group)
  target.logger.step(
    'run',
    `attached to the ${shards.length} shards of ${group} on ${target.transport.target}; their last lines, then what they write`,
  )
  const ends = await followShards(run, { group, shards, fromEnd: true })
  const started = ends
    .map((e) => e.meta.started)
    .filter((t): t is string => Boolean(t))
    .sort()[0]
  return fetchShards(run, { group, shards, ends, plan: null, startedAt: started ?? new Date().toISOString() })
}

/** --stop GROUP: stops every shard of it. */
export async function stopGroup(target: TargetContext, group: string): Promise<CliResult> {
  const shards = await shardsOf(target, group)
  target.logger.step(
    'run',
    `stopping the ${shards.length} shards of ${group} on ${target.transport.target}: SIGTERM to their process groups, SIGKILL after ${target.options.stopGraceSeconds} s`,
  )
  const stopped = await stopShards(target, { shards, graceSeconds: target.options.stopGraceSeconds })
  target.logger.step('done', `${group}: ${stopped.state}`)
  const runs = shards.map((s, i) => ({ remote_run_id: s.runId, state: stopped.each[i]!.state, exit_code: stopped.each[i]!.exitCode }))
  return new CliResult({ group, runs }, ExitCode.ok)
}

/**
 * With every shard finished, their reports merged on the target and the merged folder brought
 * here; then each shard's report into the group's folder beside it (also when one failed).
 */
async function fetchShards(
  run: RunContext,
  {
    group,
    shards,
    ends,
    plan,
    startedAt,
  }: { group: string; shards: ShardRun[]; ends: RunEnd[]; plan: ShardPlan | null; startedAt: string },
): Promise<CliResult> {
  const { transport, options, logger } = run
  const localGroup = path.join(options.projectDir, OUTPUT_DIR, group)
  // An attached group's suite and split are its runs', not this command's defaults.
  const { suite = options.suite, split = options.split } = ends[0]?.meta ?? {}
  const checks = await Promise.all(shards.map((shard, i) => checkShard(run, shard, ends[i]!)))
  const fetched = shards.map((shard, i) => ({
    shard: shard.number,
    gpu: shard.gpu,
    datasets: shard.datasets,
    expected: shard.expected,
    remote_run_id: shard.runId,
    state: ends[i]!.state,
    exit_code: ends[i]!.exitCode,
    run_id: checks[i]?.runId ?? null,
    local_run_dir: checks[i] ? path.join(localGroup, checks[i].runId) : null,
  }))
  const failed = fetched.filter((f) => f.exit_code !== 0 || f.local_run_dir === null)
  // The merged folder first: its pull replaces the group's folder, into which the shards then come.
  const merging = failed.length ? null : await mergeOnTarget(run, { group, reports: checks.map((c) => `${c!.remote}/report.json`) })
  if (merging?.out) await pullRunDir(run, { remote: path.posix.dirname(merging.out), runId: group, skipped: [] }, localGroup)
  for (const [i, checked] of checks.entries()) {
    if (!checked) continue
    const shardLogger = prefixedLogger(logger, shardPrefix(shards[i]!))
    const files = await pullRunDir({ ...run, logger: shardLogger }, checked, fetched[i]!.local_run_dir!)
    shardLogger.step('fetch', `${files} files of ${checked.remote} -> ${fetched[i]!.local_run_dir}`)
  }
  const output = {
    group,
    target: transport.target,
    local_run_dir: localGroup,
    plan: plan && { unit: plan.unit, makespan: plan.makespan },
    shards: fetched,
  }
  const record = { localGroup, shards: fetched, startedAt, suite, split }
  if (failed.length) {
    logger.step(
      'error',
      `${failed.length} of ${shards.length} shards failed (shard ${failed.map((f) => f.shard).join(', ')}): no merged report, as it would miss their datasets. The shards' reports are in ${localGroup}`,
    )
    await writeGroupRecord(run, { ...record, state: 'failed' })
    return new CliResult({ ...output, merged_report: null }, ExitCode.evalFailed)
  }
  if (merging?.error) throw merging.error
  const mergedLocal = path.join(localGroup, 'report.json')
  const rows = metricsFromReport(readMerged(mergedLocal, options.mergeModule))
  logger.step('done', `merged metrics of ${shards.length} shards (${suite} / ${split}):\n${rowsTable(rows)}`)
  await writeGroupRecord(run, { ...record, state: 'finished' })
  const compare = options.compareTo ? await compareOnTarget(run, { id: group, newReport: merging!.out!, localDir: localGroup }) : null
  const history = await publishRun(path.dirname(localGroup), group, logger)
  if (history) logger.step('done', history)
  logger.step('done', `merged report in ${mergedLocal}; each shard's report beside it`)
  return new CliResult({ ...output, merged_report: mergedLocal, ...(options.compareTo ? { compare } : {}) }, ExitCode.ok)
}

/** A shard's report directory on the target, checked; null (said why) when there is none to fetch. */
async function checkShard(run: RunContext, shard: ShardRun, end: RunEnd): Promise<CheckedRunDir | null> {
  const shardLogger = prefixedLogger(run.logger, shardPrefix(shard))
  if (!end.json) {
    shardLogger.step('error', `ended ${end.state} (exit ${end.exitCode ?? 'unknown'}) without the JSON that names its report`)
    return null
  }
  try {
    return await checkRunDir({ ...run, logger: shardLogger }, { json: end.json, reportDir: end.reportDir })
  } catch (error) {
    if (!(error instanceof RemoteEvalError) || error.exitCode !== ExitCode.evalFailed) throw error
    shardLogger.step('error', error.message)
    return null
  }
}

/** The merged report, read: one that is not there or not JSON is the merger's failure, said as such. */
function readMerged(file: string, module: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new RemoteEvalError(
      `python -m ${module} ended well but left no readable ${file} (${(error as Error).message}). The shards' reports are beside it; check the merger, or --merge-module.`,
      ExitCode.evalFailed,
      { cause: error },
    )
  }
}

/**
 * Runs the repo's merger on the target over the shards' report.json, in one round trip (the real
 * merger makes the folder of --out itself). Its failure comes back as `error`, to throw once the
 * shards' own reports are home.
 */
async function mergeOnTarget(
  { transport, options, python, logger, signal }: RunContext,
  run: { group: string; reports: string[] },
): Promise<{ out: string | null; error?: RemoteEvalError }> {
  const out = `${reportsDirOf(options.remoteDir)}/${run.group}/report.json`
  const command = pythonCommand(python, ['-m', options.mergeModule, '--out', out, ...run.reports], { sync: false })
  logger.step('run', `merging: ${command.join(' ')}`)
  const result = await transport.run(SCRIPTS.module, [options.remoteDir, '--', ...command], {
    onStderrLine: (line) => logger.step('run', `[merge] ${line}`),
    signal,
  })
  if (result.exitCode === 0) return { out }
  const error = new RemoteEvalError(
    `The merger (python -m ${options.mergeModule}) failed on ${transport.target} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}. The shards' reports are fetched; merge them by hand, or fix --merge-module.`,
    ExitCode.evalFailed,
  )
  return { out: null, error }
}

/** run.json of the group's folder: a local run of the suite and split, whose merged report times the next plan. */
async function writeGroupRecord(
  { transport, options }: RunContext,
  group: { localGroup: string; shards: Array<Record<string, unknown>>; state: string; startedAt: string; suite: string; split: string },
): Promise<void> {
  await mkdir(group.localGroup, { recursive: true })
  await writeRunRecord(
    group.localGroup,
    {
      target: transport.target,
      remote_dir: options.remoteDir,
      suite: group.suite,
      split: group.split,
      runtime: options.runtime,
      gpus: options.gpus ?? null,
      started_at: group.startedAt,
      state: group.state,
      exit_code: group.state === 'finished' ? 0 : 1,
      shards: group.shards,
    },
    undefined,
  )
}
