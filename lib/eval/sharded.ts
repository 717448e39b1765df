import { readFileSync } from 'node:fs'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { ExitCode, RemoteEvalError, UsageError } from '../core/errors.ts'
import { prefixedLogger, type Logger } from '../core/log.ts'
import { CliResult } from '../core/result.ts'
import { lastLine } from '../core/text.ts'
import { pythonCommand } from '../target/uv.ts'
import { publishRun } from './history.ts'
import { guardRun } from './interrupt.ts'
import { compareOnTarget } from './repo-compare.ts'
import { metricsFromReport } from './metrics.ts'
import { OUTPUT_DIR, type EvalOptions } from './options.ts'
import { finishedRuns, writeRunRecord } from './record.ts'
import { attachHint, detachedRun, followRun, listRuns, newRunId, quietRunHeartbeat, reportsDirOf, stopRun, type RunEnd } from './runs.ts'
import { TOOL_DIR } from '../core/layout.ts'
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

// --shard: the suite's datasets split across the GPUs of --gpus on every target named, one eval per
// GPU, each started after its target's shared work (preflight, sync, deps, assets) was done once;
// followed together; their reports merged by the repo's own merger on the first target (the
// others' report.json sent there first) and brought home under one folder.

/** One shard as planned and started: its target and GPU, its datasets, what it is expected to cost, its run. */
export interface ShardRun {
  number: number
  gpu: string
  datasets: string[]
  expected: number
  runId: string
  /** Its target's context. */
  on: RunContext
  /** Its lines, prefixed [shard N gpu G] (with the target's name when there are several). */
  log: Logger
}

/** A target made ready for its shards: its context, its token, the splits its assets step saw, its lock's release. */
export interface ShardTarget {
  run: RunContext
  tokenPath?: string
  splits: PreparedSplits
  release: () => void
}

/** The group's lines (the plan, the merge, the outcome) go to `logger`, each shard's to its own prefix of it. */
interface Group {
  id: string
  shards: ShardRun[]
  logger: Logger
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

/** How a shard's lines are prefixed: its number and GPU, and its target when there are several. */
const shardLog = (logger: Logger, shard: { number: number; gpu: string; on: TargetContext }, several: boolean) =>
  prefixedLogger(logger, `[shard ${shard.number} ${several ? `${shard.on.transport.target} ` : ''}gpu ${shard.gpu}]`)

/** The plan for the GPUs of every target, printed (to `logger`) as it will run. */
export function planFor(
  targets: readonly ShardTarget[],
  logger: Logger,
): { plan: ShardPlan; shards: Array<Omit<ShardRun, 'runId'>>; lines: string[] } {
  const first = targets[0]!.run
  const several = targets.length > 1
  // The GPUs taken in turn from each target (a0, b0, a1, b1, ...): with fewer datasets than GPUs, the
  // shards still spread over the targets rather than fill the first.
  const perTarget = targets.map(({ run }) => [...new Set(run.options.gpus!.split(',').map((id) => String(Number(id))))])
  const slots = Array.from({ length: Math.max(...perTarget.map((g) => g.length)) }, (_, i) =>
    perTarget.flatMap((gpus, t) => (i < gpus.length ? [{ on: targets[t]!.run, gpu: gpus[i]! }] : [])),
  ).flat()
  const earlier = earlierTimes(first)
  const datasets = suiteDatasets(
    first.options,
    targets.flatMap((t) => t.splits),
  )
  const plan = planShards(datasetCosts(datasets.rows, earlier?.times ?? []), slots.length)
  const shards = plan.shards.map((shard, i) => {
    const slot = { number: i + 1, ...slots[i]! }
    return { ...slot, ...shard, log: shardLog(logger, slot, several) }
  })
  const unit = (n: number) => (plan.unit === 'rows' ? `${Math.round(n)} rows` : n < 1 ? 'under 1 s' : `${Math.round(n)} s`)
  const basis = earlier
    ? `times of the earlier run ${earlier.folder}`
    : datasets.counted
      ? 'rows in the datasets manifest (no earlier run timed them)'
      : 'equal shares (no earlier run timed the datasets, and the datasets manifest counts no rows)'
  const where = (slot: { on: RunContext; gpu: string }) => `${several ? `${slot.on.transport.target} ` : ''}GPU ${slot.gpu}`
  const onWhat = several
    ? `${slots.length} GPUs of ${targets.length} targets (${targets.map((t) => `${t.run.transport.target}: ${t.run.options.gpus}`).join('; ')})`
    : `GPUs ${shards.map((s) => s.gpu).join(',')} of ${first.transport.target}`
  const idle = slots.slice(shards.length)
  const lines = [
    `plan: ${shards.length} shards on ${onWhat}, by ${basis}; expected ${unit(plan.makespan)} in all`,
    ...shards.map((s) => `  shard ${s.number} on ${where(s)}: ${s.datasets.join(', ')} (${unit(s.expected)})`),
    ...(idle.length ? [`  ${idle.map(where).join(', ')} idle: fewer datasets than GPUs`] : []),
  ]
  logger.step('run', lines.join('\n'))
  return { plan, shards, lines }
}

/** Starts a target's shards of the group detached, on its lock's session, each recorded as one of the group. */
async function startShards(group: Group, target: ShardTarget): Promise<void> {
  const { run } = target
  for (const shard of group.shards.filter((s) => s.on === run)) {
    const options = {
      ...run.options,
      gpus: shard.gpu,
      evalArgs: [...run.options.evalArgs, ...shard.datasets.flatMap((id) => ['--dataset', id])],
    }
    const meta = { group: group.id, number: shard.number, datasets: shard.datasets }
    await startEval(
      { ...run, options, logger: shard.log },
      { id: shard.runId, follow: false, onStarted: () => {}, tokenPath: target.tokenPath, shard: meta },
    )
  }
}

/** A sharded run, after each target's shared work: plan, start, follow together, merge, fetch under one folder. */
export async function runSharded(
  targets: readonly ShardTarget[],
  context: { logger: Logger; skipped: Array<{ target: string; error: string }> },
): Promise<CliResult> {
  const { logger } = context
  const startedAt = new Date().toISOString()
  const { shards: planned, plan, lines } = planFor(targets, logger)
  const shards = planned.map((shard) => ({ ...shard, runId: newRunId() }))
  const group: Group = { id: `shards-${shards[0]!.runId}`, shards, logger }
  const starts = await Promise.allSettled(targets.map((target) => startShards(group, target).finally(() => target.release())))
  const failed = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    // A target could not start its shards: the others' are stopped, so no half of the suite runs alone.
    if (!targets[0]!.run.options.dryRun) await stopShards(shards, targets[0]!.run.options.stopGraceSeconds).catch(() => undefined)
    throw failed.reason
  }
  // A dry run shows the plan and each shard's start; following and merging send nothing new to see.
  if (targets[0]!.run.options.dryRun) return new CliResult({ plan: { ...plan, lines } }, ExitCode.ok)
  const ends = await followShards(group, false)
  return fetchShards(group, { ends, plan, startedAt, skipped: context.skipped })
}

/** The targets' names, as one line names them all. */
const targetNames = (shards: readonly ShardRun[]) => [...new Set(shards.map((s) => s.on.transport.target))].join(', ')

/** Follows the shards together, their lines prefixed; Ctrl-C stops (or detaches from) all of them. */
async function followShards(group: Group, fromEnd: boolean): Promise<RunEnd[]> {
  const { shards, logger } = group
  const { options, signal } = shards[0]!.on
  const disarm = guardRun({
    guarded: {
      name: `${shards.length} shards (runs ${shards.map((s) => s.runId).join(', ')})`,
      plural: true,
      comeBack: attachHint(group.id),
    },
    target: targetNames(shards),
    signal,
    logger,
    graceSeconds: options.stopGraceSeconds,
    stop: (grace) => stopShards(shards, grace),
    detached: { group: group.id, runs: shards.map((s) => detachedRun(s.on.transport.target, s.on.options.remoteDir, s.runId)) },
  })
  // One heartbeat for the group, while no shard prints: not one line per quiet shard.
  const heartbeat = quietRunHeartbeat(logger)
  try {
    return await Promise.all(
      shards.map((s) =>
        followRun(s.on.transport, {
          remoteDir: s.on.options.remoteDir,
          runId: s.runId,
          fromEnd,
          logger: s.log,
          signal: s.on.signal,
          heartbeat,
        }),
      ),
    )
  } finally {
    heartbeat.stop()
    disarm()
  }
}

/** Stops every shard at once, each on its target; their states, in shard order. */
async function stopShards(shards: readonly ShardRun[], graceSeconds: number) {
  const ended = await Promise.all(
    shards.map((s) => stopRun(s.on.transport, { remoteDir: s.on.options.remoteDir, runId: s.runId, graceSeconds, logger: s.log })),
  )
  return { state: ended.map((e) => e.state).join(', '), exitCode: null, each: ended }
}

/** The shards of `group` on the targets, from their records (exit 2 when no target has one). */
async function groupOn(targets: readonly TargetContext[], id: string, logger: Logger): Promise<Group> {
  const several = targets.length > 1
  const shards: ShardRun[] = []
  for (const target of targets) {
    const on: RunContext = { ...target, python: pythonOnTarget(target.options) }
    for (const r of (await listRuns(target.transport, target.options.remoteDir)).filter((r) => r.group === id)) {
      const slot = { number: r.shard ?? shards.length + 1, gpu: r.gpus ?? '?', on }
      shards.push({ ...slot, datasets: r.datasets ?? [], expected: 0, runId: r.id, log: shardLog(logger, slot, several) })
    }
  }
  if (!shards.length) {
    const where = targets.map((t) => `${t.options.remoteDir} on ${t.transport.target}`).join(', ')
    throw new UsageError(`There is no sharded run ${id} in ${where}. See the runs there, with their groups, with --list.`)
  }
  return { id, shards: shards.sort((a, b) => a.number - b.number), logger }
}

/** --attach GROUP: follows its shards on every target from their last lines, then fetches and merges as a sharded run does. */
export async function attachShards(targets: readonly TargetContext[], id: string, logger: Logger): Promise<CliResult> {
  const group = await groupOn(targets, id, logger)
  logger.step(
    'run',
    `attached to the ${group.shards.length} shards of ${id} on ${targetNames(group.shards)}; their last lines, then what they write`,
  )
  const ends = await followShards(group, true)
  const started = ends
    .map((e) => e.meta.started)
    .filter((t): t is string => Boolean(t))
    .sort()[0]
  return fetchShards(group, { ends, plan: null, startedAt: started ?? new Date().toISOString(), skipped: [] })
}

/** --stop GROUP: stops every shard of it, on every target. */
export async function stopGroup(targets: readonly TargetContext[], id: string, logger: Logger): Promise<CliResult> {
  const { shards } = await groupOn(targets, id, logger)
  const grace = targets[0]!.options.stopGraceSeconds
  logger.step(
    'run',
    `stopping the ${shards.length} shards of ${id} on ${targetNames(shards)}: SIGTERM to their process groups, SIGKILL after ${grace} s`,
  )
  const stopped = await stopShards(shards, grace)
  logger.step('done', `${id}: ${stopped.state}`)
  const runs = shards.map((s, i) => ({
    remote_run_id: s.runId,
    target: s.on.transport.target,
    state: stopped.each[i]!.state,
    exit_code: stopped.each[i]!.exitCode,
  }))
  return new CliResult({ group: id, runs }, ExitCode.ok)
}

/**
 * With every shard finished, each one's report brought into the group's folder (also when one
 * failed); when all succeeded, merged on the first shard's target (the other targets' report.json
 * sent there from here) and the merged report.json brought beside them.
 */
async function fetchShards(
  group: Group,
  run: { ends: RunEnd[]; plan: ShardPlan | null; startedAt: string; skipped: Array<{ target: string; error: string }> },
): Promise<CliResult> {
  const { shards, logger } = group
  const { ends, plan } = run
  const merger = shards[0]!.on
  const { options } = merger
  const localGroup = path.join(options.projectDir, OUTPUT_DIR, group.id)
  // An attached group's suite and split are its runs', not this command's defaults.
  const { suite = options.suite, split = options.split } = ends[0]?.meta ?? {}
  const checks = await Promise.all(shards.map((shard, i) => checkShard(shard, ends[i]!)))
  const fetched = shards.map((shard, i) => ({
    shard: shard.number,
    target: shard.on.transport.target,
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
  // Every shard's report home first (also when one failed): the merger's inputs from other targets go from here.
  for (const [i, checked] of checks.entries()) {
    if (!checked) continue
    const shard = shards[i]!
    const files = await pullRunDir({ ...shard.on, logger: shard.log }, checked, fetched[i]!.local_run_dir!)
    shard.log.step('fetch', `${files} files of ${checked.remote} -> ${fetched[i]!.local_run_dir}`)
  }
  const several = new Set(shards.map((s) => s.on)).size > 1 || run.skipped.length > 0
  const output = {
    group: group.id,
    target: targetNames(shards),
    ...(several && { targets: [...new Set(fetched.map((f) => f.target))], skipped_targets: run.skipped }),
    local_run_dir: localGroup,
    plan: plan && { unit: plan.unit, makespan: plan.makespan },
    shards: fetched,
  }
  const record = { localGroup, shards: fetched, startedAt: run.startedAt, suite, split }
  if (failed.length) {
    logger.step(
      'error',
      `${failed.length} of ${shards.length} shards failed (shard ${failed.map((f) => f.shard).join(', ')}): no merged report, as it would miss their datasets. The shards' reports are in ${localGroup}`,
    )
    await writeGroupRecord(group, { ...record, state: 'failed' })
    return new CliResult({ ...output, merged_report: null }, ExitCode.evalFailed)
  }
  const mergedLocal = path.join(localGroup, 'report.json')
  // A lone shard (fewer datasets than GPUs, or targets skipped) ran the whole suite: nothing to merge
  // (the real merger wants two reports), its report is the group's.
  const lone = shards.length === 1
  const mergedRemote = lone
    ? `${checks[0]!.remote}/report.json`
    : await mergeOnTarget(group, {
        reports: checks as CheckedRunDir[],
        localRunDirs: fetched.map((f) => f.local_run_dir!),
        out: mergedLocal,
      })
  if (lone) await copyFile(path.join(fetched[0]!.local_run_dir!, 'report.json'), mergedLocal)
  const rows = metricsFromReport(readMerged(mergedLocal, options.mergeModule))
  logger.step(
    'done',
    `${lone ? 'metrics of the one shard' : `merged metrics of ${shards.length} shards`} (${suite} / ${split}):\n${rowsTable(rows)}`,
  )
  await writeGroupRecord(group, { ...record, state: 'finished' })
  const compare = options.compareTo
    ? await compareOnTarget({ ...merger, logger }, { id: group.id, newReport: mergedRemote, localDir: localGroup })
    : null
  const history = await publishRun(path.dirname(localGroup), group.id, logger)
  if (history) logger.step('done', history)
  logger.step('done', `merged report in ${mergedLocal}; each shard's report beside it`)
  return new CliResult({ ...output, merged_report: mergedLocal, ...(options.compareTo ? { compare } : {}) }, ExitCode.ok)
}

/** A shard's report directory on the target, checked; null (said why) when there is none to fetch. */
async function checkShard(shard: ShardRun, end: RunEnd): Promise<CheckedRunDir | null> {
  const shardLogger = shard.log
  if (!end.json) {
    shardLogger.step('error', `ended ${end.state} (exit ${end.exitCode ?? 'unknown'}) without the JSON that names its report`)
    return null
  }
  try {
    return await checkRunDir({ ...shard.on, logger: shardLogger }, { json: end.json, reportDir: end.reportDir })
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
 * Runs the repo's merger on the first shard's target over the shards' report.json, those of other
 * targets sent there from their fetched copies (the real merger makes the folder of --out itself),
 * then brings the merged report to `out`; returns its path on the target. The shards' reports are
 * home already, so a failure is thrown as it comes.
 */
async function mergeOnTarget(
  group: Group,
  files: { reports: readonly CheckedRunDir[]; localRunDirs: readonly string[]; out: string },
): Promise<string> {
  const { shards, logger } = group
  const { transport, options, python, signal } = shards[0]!.on
  const fail = (why: string) =>
    new RemoteEvalError(`${why}. The shards' reports are fetched; merge them by hand, or fix --merge-module.`, ExitCode.evalFailed)
  const inputs: string[] = []
  for (const [i, shard] of shards.entries()) {
    if (shard.on.transport === transport) {
      inputs.push(`${files.reports[i]!.remote}/report.json`)
      continue
    }
    const copy = `${options.remoteDir}/${TOOL_DIR}/merge/${group.id}/${shard.runId}.json`
    const sent = await transport.run('mkdir -p -- "${1%/*}" && cat > "$1"', [copy], {
      stdin: await readFile(path.join(files.localRunDirs[i]!, 'report.json')),
      signal,
    })
    if (sent.exitCode !== 0)
      throw fail(`Could not send shard ${shard.number}'s report.json to ${transport.target} for the merger: ${lastLine(sent.stderrTail)}`)
    inputs.push(copy)
  }
  const out = `${reportsDirOf(options.remoteDir)}/${group.id}/report.json`
  const command = pythonCommand(python, ['-m', options.mergeModule, '--out', out, ...inputs], { sync: false })
  logger.step('run', `merging on ${transport.target}: ${command.join(' ')}`)
  const merged = await transport.run(SCRIPTS.module, [options.remoteDir, '--', ...command], {
    onStderrLine: (line) => logger.step('run', `[merge] ${line}`),
    signal,
  })
  if (merged.exitCode !== 0)
    throw fail(
      `The merger (python -m ${options.mergeModule}) failed on ${transport.target} (exit ${merged.exitCode}): ${lastLine(merged.stderrTail)}`,
    )
  // Byte for byte (latin1 maps each byte to one character and back), and only a regular file.
  const read = await transport.run('[ -f "$1" ] && [ ! -L "$1" ] || { echo "no regular file $1" >&2; exit 1; }; cat -- "$1"', [out], {
    stdoutEncoding: 'latin1',
    signal,
  })
  if (read.exitCode !== 0)
    throw fail(
      `python -m ${options.mergeModule} ended well but left no readable ${out} on ${transport.target} (${lastLine(read.stderrTail)})`,
    )
  await writeFile(files.out, Buffer.from(read.stdout, 'latin1'))
  logger.step('fetch', `${out} -> ${files.out}`)
  return out
}

/** run.json of the group's folder: a local run of the suite and split, whose merged report times the next plan. */
async function writeGroupRecord(
  group: Group,
  record: { localGroup: string; shards: Array<Record<string, unknown>>; state: string; startedAt: string; suite: string; split: string },
): Promise<void> {
  const { options } = group.shards[0]!.on
  const targets = [...new Set(group.shards.map((s) => s.on))]
  await mkdir(record.localGroup, { recursive: true })
  await writeRunRecord(
    record.localGroup,
    {
      target: targetNames(group.shards),
      remote_dir: targets.length > 1 ? targets.map((t) => t.options.remoteDir) : options.remoteDir,
      suite: record.suite,
      split: record.split,
      runtime: options.runtime,
      gpus: targets.length > 1 ? targets.map((t) => t.options.gpus ?? null) : (options.gpus ?? null),
      started_at: record.startedAt,
      state: record.state,
      exit_code: record.state === 'finished' ? 0 : 1,
      shards: record.shards,
    },
    undefined,
  )
}
