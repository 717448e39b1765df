import type { Readable, Writable } from 'node:stream'
import type { FlagSpec, FlagValues } from '../core/flags.ts'
import type { Logger } from '../core/log.ts'

// The one interface every target implements: run a bash script, push a chosen file tree, pull a
// tree back. Local, SSH and kubectl differ only in how bytes reach the target.

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
  /** Run in this open session (the one holding the target's lock) instead of a session of its own. */
  session?: HeldSession
  /** With a session: free the target's lock as the script starts (the eval's start). */
  releaseLock?: boolean
}

/** An open session that runs further scripts, one at a time (lib/target/lock.ts). */
export interface HeldSession {
  call(script: string, args: readonly string[], options: RunOptions): Promise<RunResult>
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
  /**
   * The new sync state (SYNC_STATE's text), or its change from the state the target holds, as
   * tree_state_from reads it (stateUpdate of lib/sync/state.ts); applied once the files are there.
   */
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
  /** The session holding the target's lock: the push's scripts with known data travel there. */
  session?: HeldSession
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
  /** Which kind of target (the registry's name: ssh, kubectl; local for this machine). */
  readonly kind: string
  /** Whether pushes may go by rsync (else by tar, which any transport carries). */
  readonly pushesByRsync: boolean
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

/** A target as its flags named it: its kind, where the code goes, and the kind's own fields. */
export interface Target {
  kind: string
  remoteDir: string
  /** The flag that named remoteDir, for messages: --remote-dir, --workdir. */
  remoteDirFlag: string
}

/**
 * One kind of target, all the rest of the code knows of it: its flags, how to read them, its name
 * in messages, how to open it, how people copy a directory onto it. Registered in kinds.ts.
 */
export interface TargetKind<T extends Target = Target> {
  kind: T['kind']
  /** For messages: "an SSH host", "a pod". */
  what: string
  /** The flags that name such a target. */
  flags: readonly FlagSpec[]
  /** The name of the flag that says a command line means this kind: host, pod. */
  namedBy: string
  /** The flag of the directory that receives the code there: --remote-dir, --workdir. */
  dirFlag: string
  /**
   * The runners' flags that go with each of several targets named by namedBy (ssh: --remote-dir):
   * repeatable there, given once for all or once per target, in their order.
   */
  perTarget: readonly string[]
  /** The runners' flags that name several targets at once (kubectl: --selector); sync_code.ts takes one target. */
  fleetFlags: readonly FlagSpec[]
  /** A target that stands for others found only when asked (a label selector's pods); absent: each target is itself. */
  expand?(target: T, logger: Logger): Promise<T[]>
  /** The flags a command line needs for it, for messages: "--host HOST --remote-dir DIR". */
  usage: string
  /** Whether pushes may go by rsync there (its transport's pushesByRsync, known before it opens). */
  pushesByRsync: boolean
  /** Reads and checks the flags without connecting (exit 2 on a mistake). */
  fromFlags(flags: FlagValues): T
  /** How messages name it: "ssh gpu-box", "pod ml/eval-0". */
  name(target: T): string
  /** Opens it; the transport is closed on every way out. */
  open(target: T, logger: Logger): Promise<Transport>
  /** A command for people to paste that copies the local directory "$d" into `dir` there. */
  copyCommand(target: T, dir: string): string
}
