import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { PassThrough, Writable } from 'node:stream'
import { onCleanup } from '../core/cleanup.ts'
import { ExitCode, RemoteEvalError, RemotePrerequisiteError, TransportError } from '../core/errors.ts'
import { utcNow, lastLine } from '../core/text.ts'
import { LAYOUT_VARS } from '../core/layout.ts'
import type { Logger, Step } from '../core/log.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import type { Transport } from '../transport/types.ts'
import { RemoteStatus } from '../core/remote-status.ts'

// One runner at a time syncs code and installs dependencies into a remote directory: a second one
// waits for the first (and says so), or with --no-wait gives up at once. The lock is taken in the
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
}

export interface LockOptions {
  remoteDir: string
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
  // The function's stdout, up to the trailer that says it is done (the session then stays open).
  const chunks: Buffer[] = []
  let last = Buffer.alloc(0)
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk)
      last = Buffer.concat([last, chunk]).subarray(-40)
      const trailer = TRAILER.exec(last.toString('latin1'))
      if (trailer && !gotLock) {
        gotLock = true
        const all = Buffer.concat(chunks)
        answered({ status: Number(trailer[1]), stdout: all.subarray(0, all.length - trailer[0].length).toString('utf8') })
      }
      done()
    },
  })
  const script = callFunction(`${LOCK_LIBRARY}\n${options.library}`, 'lock_hold', LAYOUT_VARS)
  const beat = heartbeat()
  const session = transport.run(
    script,
    [lockKey(options.remoteDir), options.wait ? '1' : '0', holderText(), String(beat.silenceS), '--', options.fn, ...options.args],
    {
      stdin: hold,
      stdoutSink: stdout,
      onStderrLine: (line) => {
        if (line.startsWith('@@waiting ')) {
          logger.step(
            step,
            `waiting for the lock on ${options.remoteDir} (${transport.target}): ${line.slice('@@waiting '.length) || 'another runner'} is syncing there; pass --no-wait to give up instead`,
          )
        } else if (line.startsWith('@@busy ')) {
          busyHolder = line.slice('@@busy '.length) || 'another runner'
        } else {
          tail.push(line)
          if (tail.length > 40) tail.shift()
          options.onStderrLine?.(line)
        }
      },
    },
  )
  let released = false
  session.catch(() => undefined)
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
        `${options.remoteDir} on ${transport.target} is busy: ${busyHolder} is syncing there (--no-wait). Try again later, or drop --no-wait to wait for it.`,
        ExitCode.targetBusy,
      )
    }
    if (result.exitCode === RemoteStatus.missingTool)
      throw new RemotePrerequisiteError(`${lastLine(result.stderrTail)} (flock serializes runners on one target).`)
    if (result.exitCode === RemoteStatus.lockUnusable) throw new RemotePrerequisiteError(lastLine(result.stderrTail))
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
    }
  } catch (error) {
    unregister()
    await release()
    throw error
  }
}
