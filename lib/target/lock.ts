import { createHash, randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { PassThrough, Writable } from 'node:stream'
import { onCleanup } from '../core/cleanup.ts'
import { ExitCode, RemoteEvalError, RemotePrerequisiteError, TransportError } from '../core/errors.ts'
import { utcNow, lastLine } from '../core/text.ts'
import { LAYOUT_VARS } from '../core/layout.ts'
import type { Logger, Step } from '../core/log.ts'
import { callFunction, frameScript, loadBashLibrary } from '../transport/script.ts'
import type { HeldSession, RunOptions, RunResult, Transport } from '../transport/types.ts'
import { RemoteStatus } from '../core/remote-status.ts'

// One runner at a time syncs code and installs dependencies into a remote directory, and one at a
// time downloads into a models or datasets directory: a second one waits for the first (and says
// so), or with --no-wait gives up at once. The lock is taken in the
// same round trip as the first look at the target, and held by that session until released; the
// look's output arrives on the session's stdout, ended by a trailer, while the session stays open.

const LOCK_LIBRARY = loadBashLibrary(new URL('./lock.sh', import.meta.url))
const TRAILER = /\0@@locked (\d+)\0$/
/**
 * How often the holder is told this runner is alive (15 s); the target gives up after four beats
 * of silence (60 s). GRE_LOCK_HEARTBEAT_MS shortens both, for the tests that watch it happen.
 */
function heartbeat(): { everyMs: number; silenceS: number } {
  const everyMs = /^[1-9]\d{0,6}$/.test(process.env.GRE_LOCK_HEARTBEAT_MS ?? '') ? Number(process.env.GRE_LOCK_HEARTBEAT_MS) : 15_000
  return { everyMs, silenceS: Math.ceil((4 * everyMs) / 1000) }
}

export interface HeldLock {
  /** What the function run under the lock printed on stdout, and its exit status. */
  stdout: string
  exitCode: number
  stderrTail: string[]
  /**
   * Releases the lock: ends the holding session's stdin, without waiting for the session to end
   * (the target frees the lock when it reads that end, or when the connection closes). Safe twice.
   */
  release(): Promise<void>
  /** The holding session, for the steps that follow under the lock (RunOptions.session). */
  session: HeldSession
}

export interface LockOptions {
  /** The remote directory whose lock this is; with `downloads`, the asset directory. */
  remoteDir: string
  /**
   * The download lock of an asset directory (kept in that directory), not a remote directory's;
   * `badDirectory` is the error for a directory that cannot hold it (the target's reason given).
   */
  downloads?: { badDirectory: (why: string) => Error }
  /** false: fail at once (exit 12) when another runner holds the lock. */
  wait: boolean
  /** Bash functions the call needs (the lock library is added). */
  library: string
  fn: string
  args: readonly string[]
  logger: Logger
  step: Step
  /** Lines the function writes to stderr. */
  onStderrLine?: (line: string) => void
}

/** The lock file's key on the target: one lock per remote directory. */
const lockKey = (remoteDir: string) => createHash('sha256').update(remoteDir).digest('hex').slice(0, 16)

/** Who holds the lock, as the next runner will be told. */
const holderText = () => `a runner on ${hostname()} (pid ${process.pid}) since ${utcNow()}`

/**
 * Takes the target's lock for `remoteDir` (waiting for another runner's release unless told not
 * to), runs `fn args` under it in the same round trip, and keeps it until release() (or cleanup).
 */
export async function takeTargetLock(transport: Transport, options: LockOptions): Promise<HeldLock> {
  const { logger, step } = options
  const hold = new PassThrough()
  let busyHolder: string | null = null
  let gotLock = false
  const tail: string[] = []
  let answered: (value: { status: number; stdout: string }) => void
  const locked = new Promise<{ status: number; stdout: string }>((resolve) => (answered = resolve))
  // The function's stdout, up to the trailer that says it is done (the session then stays open);
  // after it, the output of the scripts run in the session (SessionCall).
  const chunks: Buffer[] = []
  let last = Buffer.alloc(0)
  let current: SessionCall | null = null
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (gotLock) return current ? current.take(chunk, done) : done()
      chunks.push(chunk)
      last = Buffer.concat([last, chunk]).subarray(-40)
      const trailer = TRAILER.exec(last.toString('latin1'))
      if (trailer) {
        gotLock = true
        const all = Buffer.concat(chunks)
        answered({ status: Number(trailer[1]), stdout: all.subarray(0, all.length - trailer[0].length).toString('utf8') })
      }
      done()
    },
  })
  const stopSession = new AbortController()
  const script = callFunction(`${LOCK_LIBRARY}\n${options.library}`, options.downloads ? 'asset_lock_hold' : 'lock_hold', LAYOUT_VARS)
  const doing = options.downloads ? 'is downloading into it' : 'is syncing there'
  const beat = heartbeat()
  const session = transport.run(
    script,
    [
      options.downloads ? options.remoteDir : lockKey(options.remoteDir),
      options.wait ? '1' : '0',
      holderText(),
      String(beat.silenceS),
      '--',
      options.fn,
      ...options.args,
    ],
    {
      stdin: hold,
      stdoutSink: stdout,
      onStderrLine: (line) => {
        if (line.startsWith('@@waiting ')) {
          logger.step(
            step,
            `waiting for the lock on ${options.remoteDir} (${transport.target}): ${line.slice('@@waiting '.length) || 'another runner'} ${doing}; pass --no-wait to give up instead`,
          )
        } else if (line.startsWith('@@busy ')) {
          busyHolder = line.slice('@@busy '.length) || 'another runner'
        } else if (current) {
          current.stderrLine(line)
        } else {
          tail.push(line)
          if (tail.length > 40) tail.shift()
          options.onStderrLine?.(line)
        }
      },
      signal: stopSession.signal,
    },
  )
  let released = false
  // Once its output is all taken (a slow sink may hold some back): a script cut off with the session.
  session.then(
    (result) => stdout.end(() => current?.sessionEnded(result, transport.target)),
    (error: unknown) => stdout.end(() => current?.sessionFailed(error)),
  )
  const beating = setInterval(() => hold.write('\n'), beat.everyMs)
  beating.unref()
  const release = async () => {
    if (released) return
    released = true
    clearInterval(beating)
    hold.end()
  }
  const unregister = onCleanup(release)
  const ended = session.then((result) => {
    if (gotLock) return null
    if (busyHolder !== null) {
      throw new RemoteEvalError(
        `${options.remoteDir} on ${transport.target} is busy: ${busyHolder} ${doing} (--no-wait). Try again later, or drop --no-wait to wait for it.`,
        ExitCode.targetBusy,
      )
    }
    if (result.exitCode === RemoteStatus.missingTool)
      throw new RemotePrerequisiteError(`${lastLine(result.stderrTail)} (flock serializes runners on one target).`)
    if (result.exitCode === RemoteStatus.lockUnusable) throw new RemotePrerequisiteError(lastLine(result.stderrTail))
    if (result.exitCode === RemoteStatus.absent && options.downloads) throw options.downloads.badDirectory(lastLine(result.stderrTail))
    throw new TransportError(
      `The session holding the lock on ${transport.target} ended early (exit ${result.exitCode}): ${lastLine(result.stderrTail)}`,
    )
  })
  try {
    const answer = (await Promise.race([locked, ended]))!
    return {
      stdout: answer.stdout,
      exitCode: answer.status,
      stderrTail: tail,
      release: async () => {
        unregister()
        await release()
      },
      session: {
        call: async (script, args, callOptions) => {
          if (released) throw new Error('a script sent to the lock session after its release')
          if (current) throw new Error('a script sent to the lock session while another runs there')
          const call = new SessionCall(callOptions, () => (current = null))
          current = call
          const onAbort = () => stopSession.abort()
          callOptions.signal?.addEventListener('abort', onAbort, { once: true })
          hold.write(call.request(script, args))
          return call.result.finally(() => callOptions.signal?.removeEventListener('abort', onAbort))
        },
      },
    }
  } catch (error) {
    unregister()
    await release()
    throw error
  }
}

/**
 * One script run in the lock's session (lock.sh): its request, its stdout up to the trailer
 * "\0@@done-NONCE STATUS\0" and its stderr up to the line "@@done-NONCE" (the two streams arrive
 * apart). Only this call knows the nonce, so the script's own output (an eval's) cannot end it.
 */
class SessionCall {
  private readonly nonce = randomBytes(8).toString('hex')
  private readonly marker = Buffer.from(`\0@@done-${this.nonce} `)
  private pending = Buffer.alloc(0)
  private readonly collected: Buffer[] = []
  private readonly tail: string[] = []
  private bytesSent = 0
  /** The exit status from the stdout trailer, and whether stderr's end was seen: both end the call. */
  private status: number | null = null
  private stderrEnded = false
  private settle!: (result: RunResult) => void
  private fail!: (error: unknown) => void
  readonly result = new Promise<RunResult>((resolve, reject) => {
    this.settle = resolve
    this.fail = reject
  })

  constructor(
    private readonly options: RunOptions,
    private readonly finished: () => void,
  ) {}

  /** What travels on the session's stdin: the request line, the framed script, its data. */
  request(script: string, args: readonly string[]): Buffer {
    const framed = Buffer.from(frameScript(script, args, this.options.env))
    const data = dataOf(this.options.stdin)
    const line = Buffer.from(`@@call ${framed.length} ${this.nonce} ${this.options.releaseLock ? 1 : 0} ${data.length}\n`)
    this.bytesSent = line.length + framed.length + data.length
    return Buffer.concat([line, framed, data])
  }

  /** A chunk of the session's stdout; `done` once the script's sink took it. */
  take(chunk: Buffer, done: () => void): void {
    this.pending = Buffer.concat([this.pending, chunk])
    const at = this.pending.indexOf(this.marker)
    const end = at < 0 ? -1 : this.pending.indexOf(0, at + this.marker.length)
    if (end >= 0) {
      const status = Number(this.pending.subarray(at + this.marker.length, end).toString('latin1'))
      this.emit(this.pending.subarray(0, at), () => {
        this.status = status
        this.endWhenBoth()
      })
      return done()
    }
    // Keep back what could be the start of the trailer.
    const keep = at >= 0 ? this.pending.length - at : Math.min(this.pending.length, this.marker.length + 4)
    const ready = this.pending.subarray(0, this.pending.length - keep)
    this.pending = this.pending.subarray(this.pending.length - keep)
    this.emit(ready, done)
  }

  stderrLine(line: string): void {
    if (line === `@@done-${this.nonce}`) {
      this.stderrEnded = true
      return this.endWhenBoth()
    }
    this.tail.push(line)
    if (this.tail.length > 40) this.tail.shift()
    this.options.onStderrLine?.(line)
  }

  /** The session ended before the trailer (killed, say): the script ended with it. */
  sessionEnded(session: RunResult, target: string): void {
    if (session.exitCode === 0)
      return this.sessionFailed(new TransportError(`The session on ${target} ended before its script did: ${lastLine(session.stderrTail)}`))
    this.emit(this.pending, () => this.end(session.exitCode))
  }

  sessionFailed(error: unknown): void {
    this.finished()
    this.fail(error)
  }

  private emit(data: Buffer, then: () => void): void {
    const sink = this.options.stdoutSink
    if (!data.length) return then()
    if (!sink) {
      this.collected.push(data)
      return then()
    }
    if (sink.write(data)) then()
    else sink.once('drain', then)
  }

  private endWhenBoth(): void {
    if (this.status !== null && this.stderrEnded) this.end(this.status)
  }

  private end(exitCode: number): void {
    this.finished()
    const stdout = this.options.stdoutSink ? '' : Buffer.concat(this.collected).toString(this.options.stdoutEncoding ?? 'utf8')
    this.settle({ exitCode, stdout, stderrTail: this.tail, bytesSent: this.bytesSent })
  }
}

/** A script's data for the lock's session: known bytes only (a stream takes a session of its own). */
function dataOf(stdin: RunOptions['stdin']): Buffer {
  const parts = stdin === undefined ? [] : Array.isArray(stdin) ? stdin : [stdin]
  return Buffer.concat(
    parts.map((part: unknown) => {
      if (typeof part === 'string') return Buffer.from(part)
      if (Buffer.isBuffer(part)) return part
      throw new Error("a stream cannot travel in the lock's session; run it in a session of its own")
    }),
  )
}
