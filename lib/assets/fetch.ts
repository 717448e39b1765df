import { readFileSync } from 'node:fs'
import { ExitCode, RemoteEvalError, TransportError, UsageError } from '../core/errors.ts'
import type { Logger, Step } from '../core/log.ts'
import { callFunction } from '../transport/script.ts'
import { shellQuote } from '../core/shell.ts'
import { ENVFILE_LIBRARY } from '../target/envfile.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import { formatBytes, formatDuration } from '../core/units.ts'
import { pythonCommand, UV_ON_PATH, type PythonEnv } from '../target/uv.ts'
import type { ManifestFile } from './manifest.ts'

// Running fetch.py on the target: one Python process per repo, several at once (a bounded pool),
// progress turned into one line per repo, results and failures turned into messages. Completion
// records (.remote-eval/complete/<kind>/<key>.json) are written as each repo finishes, so a run
// that was cut short resumes without fetching finished repos again.

const FETCH_PY = readFileSync(new URL('./fetch.py', import.meta.url), 'utf8')
/** fetch.py runs with HF_TOKEN from the target's .env.eval when its environment has none. */
const FETCH_SCRIPT = callFunction(ENVFILE_LIBRARY, 'envfile_exec', UV_ON_PATH)
export const RECORDS_DIR = '.remote-eval/complete'

/** fetch.py's modes: fetch a model, prepare a dataset, or only ask which commit a revision is at. */
export type FetchMode = 'model' | 'dataset' | 'head'

export interface FetchJob {
  /** Unique within its kind; names the completion record. */
  key: string
  /** For messages: "org/name@main". */
  label: string
  /** fetch.py's arguments after the mode. */
  args: string[]
  repoId: string
}

export interface FetchResult {
  status: 'fetched' | 'skipped'
  sha: string
  files?: ManifestFile[]
  rows?: Record<string, number>
  fingerprints?: Record<string, string | null>
  seconds?: number
}

export interface FetchOutcome {
  job: FetchJob
  result?: FetchResult
  error?: RemoteEvalError
  seconds: number
}

/**
 * What a NonMatchingSplitsSizesError means: the split sizes a dataset card declares differ from its
 * data (a split rebalanced without its card), or a cache holds another commit's split.
 */
export const STALE_SPLITS_FIX =
  'The split sizes the dataset card on the Hub declares differ from the data it serves (a fast split rebalanced without its card?), ' +
  'or the cache holds another commit of it. Prepare the cache again (--fresh-cache, online); if it persists, repair the card: ' +
  'python -m app.tools.publish_dataset_info (docs/RUNBOOK.md, "Fast splits").'

/** Environment for Hugging Face's clients: quiet, no telemetry, the mirror and token when set. */
export function hubEnv(extra: Record<string, string>, token: string | undefined): Record<string, string> {
  return {
    HF_HUB_DISABLE_PROGRESS_BARS: '1',
    HF_DATASETS_DISABLE_PROGRESS_BARS: '1',
    HF_HUB_DISABLE_TELEMETRY: '1',
    HF_UPDATE_DOWNLOAD_COUNTS: '0',
    ...(process.env.HF_ENDPOINT ? { HF_ENDPOINT: process.env.HF_ENDPOINT } : {}),
    ...(token ? { HF_TOKEN: token } : {}),
    ...extra,
  }
}

/** A progress line's figures, or null when it is not one fetch.py writes (the line is then shown as it is). */
function progressOf(json: string): Progress | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return null
  }
  const { bytes, total } = (parsed ?? {}) as { bytes?: unknown; total?: unknown }
  const count = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0
  if (!count(bytes)) return null
  return { bytes: bytes as number, total: count(total) ? (total as number) : null }
}

/** Runs `python - mode args...` with fetch.py on stdin; progress lines go to onProgress. */
async function runFetch(options: {
  transport: Transport
  python: PythonEnv
  mode: FetchMode
  job: FetchJob
  env: Record<string, string>
  envFile: string | undefined
  onProgress: (progress: Progress) => void
  onOther: (line: string) => void
}): Promise<FetchResult> {
  const { transport, python, mode, job, env, envFile, onProgress, onOther } = options
  const command = pythonCommand(python, ['-', mode, ...job.args])
  const result = await transport.run(FETCH_SCRIPT, [envFile ?? '', 'HF_TOKEN', '--', ...command], {
    env,
    stdin: FETCH_PY,
    onStderrLine: (line) => {
      const progress = /^@@progress (.*)$/.exec(line)
      const reported = progress ? progressOf(progress[1]!) : null
      if (reported) onProgress(reported)
      else if (line.trim()) onOther(line)
    },
  })
  const answer = result.stdout.trim().split('\n').at(-1) ?? ''
  let parsed: { status?: string; kind?: string; message?: string } & Partial<FetchResult>
  try {
    parsed = JSON.parse(answer)
  } catch {
    throw new TransportError(
      `Python on ${transport.target} did not answer for ${job.label} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}`,
    )
  }
  if (parsed.status === 'fetched' || parsed.status === 'skipped') return parsed as FetchResult
  throw fetchError({ mode, job, target: transport.target }, parsed.kind ?? 'other', parsed.message ?? 'no message')
}

/** A fetch failure as the user should read it, with its exit code. */
function fetchError(
  { mode, job, target }: { mode: FetchMode; job: FetchJob; target: string },
  kind: string,
  message: string,
): RemoteEvalError {
  const code = mode === 'model' ? ExitCode.modelsMissing : ExitCode.datasetsMissing
  switch (kind) {
    case 'gated':
    case 'auth':
      return new RemoteEvalError(
        `${job.repoId} needs a Hugging Face token with access to it (${message}). Set HF_TOKEN in the environment ` +
          'or put HF_TOKEN=hf_... in .env.eval, and request access on the repo page if it is gated.',
        code,
      )
    case 'not_found':
      return new RemoteEvalError(
        `${job.repoId} was not found on the Hub, or is private (${message}). Check the name; for a private repo set HF_TOKEN (or HF_TOKEN=... in .env.eval).`,
        code,
      )
    case 'revision':
      return new RemoteEvalError(
        `${job.label}: no such revision on the Hub (${message}). Use a branch, tag or commit sha that exists.`,
        code,
      )
    case 'network':
      return new TransportError(
        `Could not reach the Hub from ${target} for ${job.label} (${message}). Check the network, or HF_ENDPOINT if you use a mirror.`,
      )
    case 'missing_package':
      return new RemoteEvalError(`The Python environment on ${target} lacks Hugging Face's clients: ${message}.`, ExitCode.remotePrereq)
    case 'usage':
      return new UsageError(message)
    default:
      if (message.includes('NonMatchingSplitsSizesError')) {
        return new RemoteEvalError(`Fetching ${job.label} failed on ${target}: ${message}. ${STALE_SPLITS_FIX}`, code)
      }
      return new RemoteEvalError(`Fetching ${job.label} failed on ${target}: ${message}`, code)
  }
}

const CHECKING_AFTER_MS = 1500
const PLAIN_PROGRESS_EVERY_MS = 5000

/** What fetch.py reports while it downloads: the bytes so far, and in all when the Hub said. */
export interface Progress {
  bytes: number
  total: number | null
}

/** "12.0 MiB of 40.0 MiB (30 %) at 3.1 MiB/s, about 9 s left"; without a total, bytes and rate. */
export function progressText({ bytes, total }: Progress, seconds: number): string {
  const rate = Math.round(bytes / Math.max(seconds, 0.001))
  if (!total || total < bytes) return `${formatBytes(bytes)} at ${formatBytes(rate)}/s`
  const left = rate > 0 ? `, about ${formatDuration(((total - bytes) / rate) * 1000)} left` : ''
  return `${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((bytes / total) * 100)} %) at ${formatBytes(rate)}/s${left}`
}

/** Runs every job, at most `concurrency` at a time; a failed job does not stop the others. */
export async function fetchAll(options: {
  transport: Transport
  python: PythonEnv
  mode: FetchMode
  jobs: FetchJob[]
  env: (job: FetchJob) => Record<string, string>
  /** The target's .env.eval, read for HF_TOKEN when the target's environment has none. */
  envFile?: string
  concurrency: number
  logger: Logger
  step: Step
}): Promise<FetchOutcome[]> {
  const { logger, step } = options
  const outcomes: FetchOutcome[] = []
  let next = 0
  const worker = async () => {
    while (next < options.jobs.length) {
      const job = options.jobs[next++]!
      const started = Date.now()
      let lastShown = 0
      // A repo found in place answers at once: "checking" only for one that takes a while.
      const checking = setTimeout(() => logger.step(step, `${job.label}: checking`), CHECKING_AFTER_MS)
      const onProgress = (progress: Progress) => {
        const now = Date.now()
        if (!logger.live && now - lastShown < PLAIN_PROGRESS_EVERY_MS) return
        lastShown = now
        const line = `${job.label}: ${progressText(progress, (now - started) / 1000)}`
        if (logger.live) logger.live(job.key, step, line)
        else logger.step(step, line)
      }
      try {
        const result = await runFetch({
          transport: options.transport,
          python: options.python,
          mode: options.mode,
          job,
          env: options.env(job),
          envFile: options.envFile,
          onProgress,
          onOther: (line) => logger.step(step, `${job.label}: ${line}`),
        })
        outcomes.push({ job, result, seconds: (Date.now() - started) / 1000 })
      } catch (error) {
        const wrapped = error instanceof RemoteEvalError ? error : new RemoteEvalError(String(error), 1, { cause: error })
        logger.step(step, `${job.label}: failed: ${wrapped.message}`)
        outcomes.push({ job, error: wrapped, seconds: (Date.now() - started) / 1000 })
      } finally {
        clearTimeout(checking)
        logger.live?.(job.key, step, null)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, options.jobs.length)) }, worker))
  return options.jobs.map((job) => outcomes.find((o) => o.job === job)!)
}

/** Reads every completion record of one kind in a prepared directory: key -> parsed JSON. */
export async function readRecords(transport: Transport, dir: string, kind: 'models' | 'datasets'): Promise<Map<string, unknown>> {
  const result = await transport.run(
    'cd -- "$1/$2" 2>/dev/null || exit 0; for f in *.json; do [ -f "$f" ] && { printf "%s\\0" "${f%.json}"; cat -- "$f"; printf "\\0"; }; done; exit 0',
    [dir, `${RECORDS_DIR}/${kind}`],
  )
  const parts = result.stdout.split('\0')
  const records = new Map<string, unknown>()
  for (let i = 0; i + 1 < parts.length; i += 2) {
    try {
      records.set(parts[i]!, JSON.parse(parts[i + 1]!))
    } catch {
      // A record cut short by a crash is no record: that repo is fetched again.
    }
  }
  return records
}

/** Writes one completion record atomically. */
export async function writeRecord(
  transport: Transport,
  where: { dir: string; kind: 'models' | 'datasets'; key: string },
  record: unknown,
): Promise<void> {
  const { dir, kind, key } = where
  const script = 'set -e; d="$1/$2"; mkdir -p -- "$d"; cat > "$d/.$3.tmp"; mv -f -- "$d/.$3.tmp" "$d/$3.json"'
  const result = await transport.run(script, [dir, `${RECORDS_DIR}/${kind}`, key], { stdin: JSON.stringify(record) })
  if (result.exitCode !== 0)
    throw new TransportError(`Cannot record progress in ${dir} on ${transport.target}: ${lastLine(result.stderrTail)}`)
}

/** A file-name-safe key for a repo at a revision. */
export function recordKey(repoId: string, revision: string): string {
  return `${repoId.replace('/', '__')}@${encodeURIComponent(revision)}`
}

/** A directory to download into that cannot be one (`why`: the target's reason), for the user to fix: exit 2. */
export function badAssetDir(where: { flag: string; dir: string; target: string }, why: string): UsageError {
  const { flag, dir, target } = where
  return new UsageError(
    `${flag} ${dir} ${why} on ${target}. Choose a directory you can write, or fix its permissions (ls -ld ${shellQuote(dir)}).`,
  )
}

/** The final table: one row per repo with what happened, its size and time. */
export function summaryTable(rows: Array<{ label: string; status: string; bytes: number; seconds: number }>): string {
  const width = Math.max(10, ...rows.map((r) => r.label.length))
  const lines = [`${'repo'.padEnd(width)}  ${'status'.padEnd(8)}  ${'size'.padStart(10)}  ${'time'.padStart(8)}`]
  for (const row of rows) {
    lines.push(
      `${row.label.padEnd(width)}  ${row.status.padEnd(8)}  ${formatBytes(row.bytes).padStart(10)}  ${`${row.seconds.toFixed(1)} s`.padStart(8)}`,
    )
  }
  const count = (status: string) => rows.filter((r) => r.status === status).length
  lines.push(`${count('fetched')} fetched, ${count('skipped')} skipped (already complete), ${count('failed')} failed`)
  return lines.join('\n')
}
