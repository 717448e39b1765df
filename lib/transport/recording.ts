import { showName } from '../core/filenames.ts'
import { frameScript } from './script.ts'
import { pasteWord } from '../core/shell.ts'
import type { PushPlan, RunOptions, Transport } from './types.ts'

// What a run sends, round trip by round trip, as a transport sees it: the text `bash -s` reads (the
// framed script: arguments, exported variables, the script), or the plan of a push, or a pull. A
// dry run prints these; a test records a real run's the same way and compares the two.

export type RoundTrip =
  | {
      kind: 'run'
      /** The bash function the script calls, or null for a one-line script. */
      fn: string | null
      /** For people: the function, or the one-line script itself. */
      command: string
      args: string[]
      /** Exactly what `bash -s` reads before any data. */
      script: string
      /** The data after the script: its size, or "held open" for a stream (the lock's session). */
      stdin: string | null
      /** It travels in the session holding the lock, not in a session of its own. */
      in_lock_session: boolean
    }
  | {
      kind: 'push'
      remote_dir: string
      method: PushPlan['method']
      send: string[]
      remove: string[]
      claims: boolean
      stamp: string
      compress: boolean
      checksum: boolean
      whole_tree: boolean
    }
  | { kind: 'pull'; remote_dir: string; local_dir: string }

/** The function a script made by callFunction calls (`... \n fn "$@"\n`). */
export function calledFunction(script: string): string | null {
  return /\n([A-Za-z_]\w*) "\$@"\n$/.exec(script)?.[1] ?? null
}

function describeStdin(stdin: RunOptions['stdin']): string | null {
  if (stdin === undefined) return null
  const parts = Array.isArray(stdin) ? stdin : [stdin]
  if (parts.some((part) => typeof part !== 'string' && !Buffer.isBuffer(part))) return 'a stream, held open'
  const bytes = parts.reduce((sum, part) => sum + Buffer.byteLength(part as string | Buffer), 0)
  return `${bytes} bytes`
}

const SUMMARY_MAX = 240

/** One line for people: what a round trip does (the whole of it is in `script`). */
export function tripSummary(trip: RoundTrip): string {
  if (trip.kind === 'push') {
    return `push by ${trip.method}: ${trip.send.length} file(s) to send, ${trip.remove.length} to delete in ${trip.remote_dir}${trip.claims ? ', claiming it' : ''}`
  }
  if (trip.kind === 'pull') return `pull ${trip.remote_dir} into ${trip.local_dir}`
  const line = `${trip.in_lock_session ? "(in the lock's session) " : ''}${trip.command} ${trip.args.map(pasteWord).join(' ')}${trip.stdin ? ` (stdin: ${trip.stdin})` : ''}`
  return line.length > SUMMARY_MAX ? `${line.slice(0, SUMMARY_MAX - 3)}...` : line
}

/** One round trip of `run` as it travels. */
export function runRoundTrip(script: string, args: readonly string[], options: RunOptions = {}): RoundTrip {
  const fn = calledFunction(script)
  const command = fn ?? `bash -c ${pasteWord(script.trim().replace(/\s+/g, ' '))}`
  return {
    kind: 'run',
    fn,
    command,
    args: [...args],
    script: frameScript(script, args, options.env),
    stdin: describeStdin(options.stdin),
    in_lock_session: options.session !== undefined,
  }
}

/** One push, as its plan says (the transport picks the commands that carry it). */
export function pushRoundTrip(plan: PushPlan): RoundTrip {
  return {
    kind: 'push',
    remote_dir: plan.remoteDir,
    method: plan.method,
    send: plan.send.map(showName),
    remove: plan.remove.map((r) => showName(r.path)),
    claims: plan.claimMarker !== null,
    stamp: plan.stamp,
    compress: plan.compress,
    checksum: plan.checksum === true,
    whole_tree: plan.unselected !== null,
  }
}

/** The transport, with every run, push and pull reported to `record` before it goes. */
export function recordingTransport(inner: Transport, record: (trip: RoundTrip) => void): Transport {
  return {
    kind: inner.kind,
    pushesByRsync: inner.pushesByRsync,
    target: inner.target,
    run(script, args = [], options = {}) {
      record(runRoundTrip(script, args, options))
      return inner.run(script, args, options)
    },
    push(plan) {
      record(pushRoundTrip(plan))
      return inner.push(plan)
    },
    pull(remoteDir, localDir) {
      record({ kind: 'pull', remote_dir: remoteDir, local_dir: localDir })
      return inner.pull(remoteDir, localDir)
    },
    close: () => inner.close(),
    noteRemoteTools: inner.noteRemoteTools?.bind(inner),
  }
}
