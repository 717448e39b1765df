import { spawn } from 'node:child_process'
import { PassThrough, pipeline, type Readable, type Writable } from 'node:stream'

// One way to start a local program for the transports. Built on child_process rather than zx's $
// because transports stream binary tar data both ways and zx keeps every byte of output in memory.

/** A piece of stdin: text, bytes, or a stream piped through. */
export type InputPart = string | Buffer | Readable

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** Written to stdin in order, then stdin is closed. */
  input?: InputPart[]
  /** 'collect' (default) keeps stdout as text; 'stream' leaves it to the caller; a Writable gets it piped. */
  stdout?: 'collect' | 'stream' | Writable
  /** How collected stdout becomes text: 'latin1' keeps every byte (file names, see filenames.ts). */
  stdoutEncoding?: 'utf8' | 'latin1'
  /** Called once per stderr line (without the newline), as the line arrives. */
  onStderrLine?: (line: string) => void
  /** Kills the process (SIGTERM, then SIGKILL 2 s later) after this many milliseconds. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface SpawnResult {
  exitCode: number | null
  signal: NodeJS.Signals | null
  /** Collected stdout ('' unless stdout was 'collect'). */
  stdout: string
  /** The last stderr lines, for error messages. */
  stderrTail: string[]
  timedOut: boolean
  /** Bytes written to the child's stdin. */
  bytesIn: number
}

export interface StartedProcess {
  /** The child's stdout when stdout was 'stream'. */
  stdout: Readable
  /** Settles when the process has exited and its streams are closed; rejects if it could not start. */
  result: Promise<SpawnResult>
  kill(signal?: NodeJS.Signals): void
}

const STDERR_TAIL_LINES = 40

/** Runs a program to completion. Rejects only when it cannot be started (e.g. ENOENT). */
export function spawnProcess(command: string, args: string[], options: SpawnOptions = {}): Promise<SpawnResult> {
  return startProcess(command, args, options).result
}

/** Starts a program and hands back its stdout stream and a promise of its result. */
export function startProcess(command: string, args: string[], options: SpawnOptions = {}): StartedProcess {
  const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: 'pipe' })
  // With stdout: 'stream', the output is held here (with backpressure) until read: a child that
  // ends before anyone reads it (a small tar archive behind a long list) must not take it along.
  const streamed = new PassThrough()
  const result = new Promise<SpawnResult>((resolve, reject) => {
    const stdoutChunks: Buffer[] = []
    const stderrTail: string[] = []
    let pendingErr = ''
    let bytesIn = 0
    let timedOut = false
    let settled = false

    const pushErrLine = (line: string) => {
      const clean = line.replace(/\r$/, '')
      stderrTail.push(clean)
      if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift()
      options.onStderrLine?.(clean)
    }

    const mode = options.stdout ?? 'collect'
    if (mode === 'collect') child.stdout.on('data', (chunk: Buffer) => stdoutChunks.push(chunk))
    // pipeline: when the reader gives up (destroys it), the child's stdout goes too, which stops the child.
    else if (mode === 'stream') pipeline(child.stdout, streamed, () => {})
    else child.stdout.pipe(mode, { end: false })
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      pendingErr += chunk
      let at: number
      while ((at = pendingErr.indexOf('\n')) >= 0) {
        pushErrLine(pendingErr.slice(0, at))
        pendingErr = pendingErr.slice(at + 1)
      }
    })

    let killTimer: NodeJS.Timeout | undefined
    const terminate = () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000)
      killTimer.unref()
    }
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          terminate()
        }, options.timeoutMs)
      : undefined
    const onAbort = () => terminate()
    options.signal?.addEventListener('abort', onAbort, { once: true })

    child.on('error', (error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(error)
    })

    // The child may exit without reading all of its stdin; that is its business, not an error.
    child.stdin.on('error', () => {})
    void writeInput(child.stdin, options.input ?? [], (n) => (bytesIn += n))

    child.on('close', (exitCode, signal) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(killTimer)
      options.signal?.removeEventListener('abort', onAbort)
      if (pendingErr) pushErrLine(pendingErr)
      resolve({
        exitCode,
        signal,
        stdout: Buffer.concat(stdoutChunks).toString(options.stdoutEncoding ?? 'utf8'),
        stderrTail,
        timedOut,
        bytesIn,
      })
    })
  })
  return { stdout: streamed, result, kill: (signal = 'SIGTERM') => child.kill(signal) }
}

async function writeInput(stdin: Writable, parts: InputPart[], count: (n: number) => void) {
  // Stops as soon as the child's stdin is gone (the child exited or closed it): waiting for a
  // drain that never comes would hang, and a stream left unread would stall whatever feeds it.
  const gone = () => stdin.destroyed || stdin.writableEnded
  try {
    for (const part of parts) {
      if (gone()) break
      if (typeof part === 'string' || Buffer.isBuffer(part)) {
        const buf = typeof part === 'string' ? Buffer.from(part) : part
        count(buf.length)
        if (!stdin.write(buf)) await onceDrainOrClose(stdin)
      } else {
        for await (const chunk of part) {
          if (gone()) break // leaving the loop destroys the source stream, which stops its producer
          const buf = chunk as Buffer
          count(buf.length)
          if (!stdin.write(buf)) await onceDrainOrClose(stdin)
        }
      }
    }
  } catch {
    // A broken pipe ends the input early; the exit code tells the caller what happened.
  } finally {
    if (!stdin.destroyed) stdin.end()
    for (const part of parts) if (typeof part === 'object' && !Buffer.isBuffer(part) && !part.destroyed) part.destroy()
  }
}

function onceDrainOrClose(stream: Writable): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done)
      stream.off('close', done)
      stream.off('error', done)
      resolve()
    }
    stream.on('drain', done)
    stream.on('close', done)
    stream.on('error', done)
  })
}
