import { randomBytes } from 'node:crypto'
import { ExitCode, InterruptedError, RemoteEvalError, TransportError, UsageError } from '../core/errors.ts'
import { ENVFILE_LIBRARY } from '../target/envfile.ts'
import { LAYOUT_VARS, TOOL_DIR } from '../core/layout.ts'
import type { Logger } from '../core/log.ts'
import { formatDuration } from '../core/units.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import { PULL_LIBRARY } from '../transport/tree.ts'
import { RemoteStatus } from '../core/remote-status.ts'
import { OUTPUT_DIR, REPORT_RUN_ID } from './options.ts'

// Runs on the target (see runs.sh): each in its own session and process group, with its log, pid
// and exit code in <remote dir>/.remote-eval/runs/<id>/. Follow, stop and list them from here.

/** runs.sh, with the .env.eval reader its redaction uses. */
export const RUNS_LIBRARY = `${ENVFILE_LIBRARY}\n${PULL_LIBRARY}\n${loadBashLibrary(new URL('./runs.sh', import.meta.url))}`
const SCRIPTS = {
  follow: callFunction(RUNS_LIBRARY, 'run_follow', LAYOUT_VARS),
  stop: callFunction(RUNS_LIBRARY, 'run_stop', LAYOUT_VARS),
  list: callFunction(RUNS_LIBRARY, 'run_list', LAYOUT_VARS),
  prune: callFunction(RUNS_LIBRARY, 'run_prune', LAYOUT_VARS),
}

export type RunState = 'running' | 'finished' | 'failed' | 'stopped' | 'lost'

export interface RunEnd {
  state: RunState
  /** The eval's exit code; null when it is not known (a lost run). */
  exitCode: number | null
  /** The JSON the eval printed on stdout, if any. */
  json: Record<string, unknown> | null
  /** What the run recorded at its start (suite, split, gpus, started). */
  meta: Record<string, string>
  /** The report directory its JSON names, checked on the target as the run ended (when written plainly). */
  reportDir?: ReportDirCheck
  /** The log lines this runner was sent (redacted on the target): all of them when it followed from the start. */
  log?: string[]
}

/**
 * A report directory of at most this many bytes comes home at the end of the followed run, in its
 * round trip (kept in memory until unpacked); a larger one is pulled in a round trip of its own.
 */
export const REPORT_ARCHIVE_MAX = 32 * 1024 * 1024

export interface RunInfo {
  /** The runner's id of the run (remote_run_id). */
  id: string
  /** The eval's run_id, the report's folder, once it printed its JSON. */
  run_id: string | null
  state: RunState
  exit_code: number | null
  started_at: string | null
  ended_at: string | null
  suite: string | null
  split: string | null
  gpus: string | null
  /** A CUDA run's embedded PyTriton ports: HTTP, gRPC, metrics. */
  ports: string | null
  /** A shard's group (a --shard run), its number in it and its datasets. */
  group: string | null
  shard: number | null
  datasets: string[] | null
  /** What its record and its report directory take on the target's disk. */
  bytes: number | null
}

/** A new run id: UTC start time and 16 random bits, e.g. 20261128-134256-a1b2. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
  return `${stamp}-${randomBytes(2).toString('hex')}`
}

/** Where the eval writes its reports on the target. */
export const reportsDirOf = (remoteDir: string) => `${remoteDir}/${OUTPUT_DIR}`

/** run_follow's last arguments: where the report directory must lie, and how large it may come along. */
export const reportArgs = (remoteDir: string) => [reportsDirOf(remoteDir), String(REPORT_ARCHIVE_MAX)]

/** Where a run keeps its files on the target. */
export const runDirOf = (remoteDir: string, id: string) => `${remoteDir}/${TOOL_DIR}/runs/${id}`

/** What the run records about itself besides its log (shown by --list): key=value, tab-separated. */
export function runMeta(fields: Record<string, string | undefined>): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined && !/[\t\n\r]/.test(value))
    .map(([key, value]) => `${key}=${value}`)
    .join('\t')
}

function parseState(line: string): { state: RunState; exitCode: number | null } {
  const [state, code] = line.trim().split(' ')
  return { state: state as RunState, exitCode: code === undefined || code === '-' ? null : Number(code) }
}

/** The eval prints one JSON object on stdout; tolerate other lines before it. */
export function parseEvalJson(stdout: string): Record<string, unknown> | null {
  const candidates = [stdout.trim(), ...stdout.trim().split('\n').reverse()]
  for (const text of candidates) {
    if (!text.startsWith('{')) continue
    try {
      const value = JSON.parse(text) as unknown
      if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>
    } catch {
      // not this one
    }
  }
  return null
}

/**
 * What run_follow (runs.sh) found of the report directory the run's JSON names, checked on the
 * target as the run ended: where it looked, run_report_dir's status and what it printed.
 */
export interface ReportDirCheck {
  absolute: string
  status: number
  output: string
  /** The directory itself, as tree_list_and_tar streams it (lib/transport/pull.sh), when it came along. */
  archive?: Buffer
}

/** Text read as latin1 (byte for byte), as UTF-8. */
const utf8 = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8')

/**
 * The end of a follow or stop (run_follow, run_stop), from their stdout read byte for byte
 * (latin1): state, meta, the run's stdout, the report directory's check. null when the session
 * broke first.
 */
export function parseFollowOutput(stdout: string): RunEnd | null {
  const match = /^@@state ([a-z]+ \S+)\n((?:@@meta .*\n)*)(?:@@stdout (\d+)\n)?/m.exec(stdout)
  if (!match) return null
  const meta = Object.fromEntries(
    utf8(match[2]!)
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const field = line.slice('@@meta '.length)
        return [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]
      }),
  )
  const rest = stdout.slice(match.index + match[0].length)
  const size = match[3] === undefined ? rest.length : Number(match[3])
  const trailer = /^\0@@rundir\0([^\0]*)\0(\d+)\0(\d+)\0/.exec(rest.slice(size))
  let reportDir: ReportDirCheck | undefined
  if (trailer) {
    const start = size + trailer[0].length
    const end = start + Number(trailer[3])
    reportDir = { absolute: utf8(trailer[1]!), status: Number(trailer[2]), output: utf8(rest.slice(start, end)) }
    if (rest.startsWith('@@archive\n', end)) reportDir.archive = Buffer.from(rest.slice(end + '@@archive\n'.length), 'latin1')
  }
  return { ...parseState(match[1]!), meta, json: parseEvalJson(utf8(rest.slice(0, size))), ...(reportDir ? { reportDir } : {}) }
}

const noSuchRun = (runId: string, target: string) =>
  new UsageError(`There is no run ${runId} on ${target}. See the runs there with --list.`)

/** What a run left going on the target prints (--detach, or a detach at the Ctrl-C prompt). */
export function detachedRun(target: string, remoteDir: string, runId: string): Record<string, unknown> {
  return { remote_run_id: runId, state: 'running', target, remote_log_dir: runDirOf(remoteDir, runId) }
}

/** How to come back to a run that goes on without us. */
export const attachHint = (runId: string) => `run the same command with --attach ${runId} (or --stop ${runId})`

/** A failure while a run goes on without us: Ctrl-C, or the same error saying how to come back. */
export function runGoesOn(error: unknown, runId: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return new InterruptedError()
  if (!(error instanceof TransportError)) return error
  return new TransportError(error.message, { cause: error, hint: `run ${runId} goes on there: ${attachHint(runId)}.` })
}

/** The end of a follow session, or the error that says what happened to it. */
export function followEnd(
  result: { exitCode: number; stdout: string; stderrTail: readonly string[] },
  transport: Transport,
  run: { runId: string; signal?: AbortSignal },
): RunEnd {
  const { runId, signal } = run
  if (signal?.aborted) throw new InterruptedError()
  if (result.exitCode === RemoteStatus.noRun) throw noSuchRun(runId, transport.target)
  const end = parseFollowOutput(result.stdout)
  // A session that did not end well may have cut the report directory's stream short.
  if (end?.reportDir && result.exitCode !== 0) delete end.reportDir.archive
  if (end) return end
  throw new TransportError(
    `Lost ${transport.target} while following run ${runId} (exit ${result.exitCode}: ${lastLine(result.stderrTail)}).`,
    {
      hint: `run ${runId} goes on there: ${attachHint(runId)}.`,
    },
  )
}

/** A run's heartbeat: told of each line the run prints, stopped when following ends. */
export type Heartbeat = { saw(): void; stop(): void }

/** The heartbeat of a run nobody watches for silence (not a terminal, or a start that does not follow). */
export const NO_HEARTBEAT: Heartbeat = { saw() {}, stop() {} }

/**
 * On a terminal, a line every 30 s while a followed run prints nothing: how long it has run, and
 * how long since its last line (REMOTE_EVAL_HEARTBEAT_MS changes the period, for the tests).
 */
export function quietRunHeartbeat(logger: Logger): Heartbeat {
  if (!process.stderr.isTTY) return NO_HEARTBEAT
  const setting = process.env.REMOTE_EVAL_HEARTBEAT_MS ?? ''
  const everyMs = /^[1-9]\d{0,7}$/.test(setting) ? Number(setting) : 30_000
  const started = Date.now()
  let last = started
  const timer = setInterval(() => {
    const now = Date.now()
    if (now - last >= everyMs) {
      logger.step('run', `still running: ${formatDuration(now - started)} so far, nothing printed for ${formatDuration(now - last)}`)
    }
  }, everyMs)
  timer.unref()
  return { saw: () => void (last = Date.now()), stop: () => clearInterval(timer) }
}

/**
 * Streams a run's log as [run] lines until it ends (from its last lines when fromEnd). `heartbeat`:
 * one shared by runs followed together (a sharded run's: one line for all), else its own.
 */
export async function followRun(
  transport: Transport,
  options: {
    remoteDir: string
    runId: string
    fromEnd: boolean
    logger: Logger
    signal?: AbortSignal
    heartbeat?: { saw(): void }
  },
): Promise<RunEnd> {
  const log: string[] = []
  // A shared heartbeat is its owner's to stop; only our own stops with this follow.
  const own = options.heartbeat ? NO_HEARTBEAT : quietRunHeartbeat(options.logger)
  const beat = options.heartbeat ?? own
  const result = await transport
    .run(SCRIPTS.follow, [runDirOf(options.remoteDir, options.runId), options.fromEnd ? '-1' : '0', ...reportArgs(options.remoteDir)], {
      stdoutEncoding: 'latin1',
      onStderrLine: (line) => {
        beat.saw()
        log.push(line)
        options.logger.step('run', line)
      },
      signal: options.signal,
    })
    .catch((error: unknown) => {
      throw runGoesOn(error, options.runId, options.signal)
    })
    .finally(() => own.stop())
  return { ...(await followEnd(result, transport, options)), log }
}

/** Stops a run: SIGTERM to its process group, SIGKILL after graceSeconds. Returns how it ended. */
export async function stopRun(
  transport: Transport,
  options: { remoteDir: string; runId: string; graceSeconds: number; logger: Logger },
): Promise<{ state: RunState; exitCode: number | null }> {
  const result = await transport.run(SCRIPTS.stop, [runDirOf(options.remoteDir, options.runId), String(options.graceSeconds)], {
    onStderrLine: (line) => options.logger.step('run', line),
  })
  if (result.exitCode === RemoteStatus.noRun) throw noSuchRun(options.runId, transport.target)
  const end = result.exitCode === 0 ? parseFollowOutput(result.stdout) : null
  if (!end)
    throw new TransportError(
      `Could not stop run ${options.runId} on ${transport.target} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}`,
    )
  return { state: end.state, exitCode: end.exitCode }
}

/** Every run in the remote directory, oldest first. */
export async function listRuns(transport: Transport, remoteDir: string): Promise<RunInfo[]> {
  const result = await transport.run(SCRIPTS.list, [remoteDir, reportsDirOf(remoteDir)])
  if (result.exitCode !== 0)
    throw new TransportError(`Could not list the runs in ${remoteDir} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  const runs: RunInfo[] = []
  for (const block of result.stdout.split(/^@@run /m).slice(1)) {
    const [id = '', ...lines] = block.split('\n')
    const fields = new Map(lines.filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    const { state, exitCode } = parseState(fields.get('state') ?? 'lost -')
    const report = fields.get('report') ?? ''
    runs.push({
      id,
      run_id: REPORT_RUN_ID.test(report) ? report : null,
      state,
      exit_code: exitCode,
      started_at: fields.get('started') ?? null,
      ended_at: fields.get('ended') ?? null,
      suite: fields.get('suite') ?? null,
      split: fields.get('split') ?? null,
      gpus: fields.get('gpus') ?? null,
      ports: fields.get('ports') ?? null,
      group: fields.get('group') ?? null,
      shard: /^\d+$/.test(fields.get('shard') ?? '') ? Number(fields.get('shard')) : null,
      datasets: fields.get('datasets')?.split(',') ?? null,
      bytes: /^\d+$/.test(fields.get('bytes') ?? '') ? Number(fields.get('bytes')) : null,
    })
  }
  return runs
}

/**
 * Removes the runs that ended more than maxAgeMinutes ago or are beyond the newest `keep`, with
 * their report directories; never a running one. With dry, only says which it would remove.
 */
export async function pruneRuns(
  transport: Transport,
  options: { remoteDir: string; maxAgeMinutes: number | null; keep: number | null; dry: boolean },
): Promise<Array<{ id: string; bytes: number }>> {
  const limit = (n: number | null) => (n === null ? '-' : String(n))
  const args = [
    options.remoteDir,
    reportsDirOf(options.remoteDir),
    limit(options.maxAgeMinutes),
    limit(options.keep),
    options.dry ? '1' : '0',
  ]
  const result = await transport.run(SCRIPTS.prune, args)
  if (result.exitCode !== 0)
    throw new TransportError(`Could not prune the runs in ${options.remoteDir} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  return [...result.stdout.matchAll(/^@@pruned (\S+) (\d+)$/gm)].map((m) => ({ id: m[1]!, bytes: Number(m[2]) }))
}

/** A run that ended without a report: the error that says how, with the right exit code. */
export function runEndedError(end: RunEnd, runId: string, target: string): RemoteEvalError {
  const how: Record<RunState, string> = {
    running: 'is still running',
    finished: 'finished',
    failed: `failed (exit ${end.exitCode})`,
    stopped: `was stopped${end.exitCode === null ? '' : ` (exit ${end.exitCode})`}`,
    lost: 'ended without recording an exit code (killed from outside, or the host restarted)',
  }
  return new RemoteEvalError(
    `Run ${runId} on ${target} ${how[end.state]} and printed no JSON on stdout, so there is no report to fetch. See the [run] lines above; its whole log is in ${TOOL_DIR}/runs/${runId}/log there.`,
    end.state === 'stopped' ? ExitCode.interrupted : ExitCode.evalFailed,
  )
}
