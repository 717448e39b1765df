import type { Readable, Writable } from 'node:stream'

// The one interface every target implements: run a bash script, push a chosen file tree, pull a
// tree back. Local, SSH and kubectl differ only in how bytes reach the target.

export type TransportKind = 'local' | 'ssh' | 'kubectl'

export interface RunOptions {
  /** Data sent on stdin after the script; the script reads it (e.g. with `tar -x -f -`). */
  stdin?: Readable | Buffer | string | ReadonlyArray<Readable | Buffer | string>
  /** When given, the script's stdout is piped here instead of being returned. */
  stdoutSink?: Writable
  /** 'latin1' when stdout carries file names (byte strings, see lib/core/filenames.ts). */
  stdoutEncoding?: 'utf8' | 'latin1'
  /** Called once per line the script writes to stderr, as it arrives. */
  onStderrLine?: (line: string) => void
  /** Exported for the script (travels on stdin, never in argv). */
  env?: Record<string, string>
  /** Gives up (and reports a transport error) after this many milliseconds. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface RunResult {
  exitCode: number
  /** The script's stdout ('' when a stdoutSink was given). */
  stdout: string
  /** The last lines of its stderr. */
  stderrTail: string[]
  /** Bytes written to the transport's stdin (script + data). */
  bytesSent: number
}

/** What a push must do; decided locally by lib/sync from the selection and the remote's state. */
export interface PushPlan {
  /** Local directory the paths are relative to. */
  localRoot: string
  /** Absolute directory on the target. */
  remoteDir: string
  /** Relative paths to send (new or changed). */
  send: string[]
  /** Relative paths to delete on the target (pushed before, gone locally now), with their state lines. */
  remove: ReadonlyArray<{ path: string; stateLine: string }>
  /** Marker content to write when this push makes the directory ours; null when it is already. */
  claimMarker: string | null
  /** The new sync state (SYNC_STATE's text), written on the target once the files are there. */
  state: string
  /** Fingerprint of the local selection, written last as `.remote-eval/sync-stamp`. */
  stamp: string
  /**
   * How files travel: 'tar', one round trip on any transport; or 'rsync' (SSH targets with rsync
   * only), deltas and fastest for many files. Local and kubectl transports always use tar.
   */
  method: 'tar' | 'rsync'
  /** The target has gzip: compress what we send. */
  compress: boolean
  /**
   * rsync only, when most of the selection is to be sent: the paths under localRoot that exist but
   * are not selected (directories end in /), so rsync may walk the whole tree, skipping these,
   * instead of reading a list of every file. null: send exactly `send`.
   */
  unselected: string[] | null
  /** rsync only: compare every file's content (--checksum), not size and time (--full-sync). */
  checksum?: boolean
}

export interface PushReport {
  /** tar: one round trip; rsync-list: rsync given the changed files; rsync-tree: rsync over the whole tree. */
  method: 'tar' | 'rsync-list' | 'rsync-tree'
  filesSent: number
  filesRemoved: number
  /**
   * Files to delete that the target could not (rm failed there): they stay in the state, the push
   * leaves no stamp, and the next push tries again. keptReason: the target's message.
   */
  filesKept: number
  keptReason?: string
  /** Bytes this side wrote towards the target for the push (scripts, file data, protocol). */
  bytesSent: number
}

export interface PullReport {
  files: number
  bytes: number
}

export interface Transport {
  readonly kind: TransportKind
  /** Human name of the target for messages: "ssh gpu-box", "pod ml/eval-0". */
  readonly target: string
  /** Runs `script` with `args` as `bash -s` on the target. */
  run(script: string, args?: readonly string[], options?: RunOptions): Promise<RunResult>
  push(plan: PushPlan): Promise<PushReport>
  /** Copies remoteDir's contents into localDir (created if needed). */
  pull(remoteDir: string, localDir: string): Promise<PullReport>
  /** Releases connections and temp files; safe to call twice. */
  close(): Promise<void>
  /** What an inspection learnt of the target's tools (spares the transport a probe of its own). */
  noteRemoteTools?(tools: { rsync: boolean }): void
}
