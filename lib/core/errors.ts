// Typed failures: each carries its exit code (the table of docs/REMOTE_EVAL.md, "Exit codes") and
// a message that says what to do. The CLI layer maps them to exit codes; nothing else calls
// process.exit.

/** Every exit code of the scripts and what it means: ExitCode and each script's --help come from here. */
export const EXIT_CODES = {
  ok: [0, 'done; results (if any) are on this machine'],
  evalFailed: [1, 'the eval itself failed (its results are still fetched when it printed a run_dir)'],
  usage: [2, 'bad usage or bad input; nothing was touched on the remote'],
  localPrereq: [3, 'a local prerequisite is missing (ssh, rsync, kubectl, GNU tar, git)'],
  remotePrereq: [4, 'a remote prerequisite is missing (bash, tar or rsync, python, uv or venv, disk space, nvidia-smi)'],
  transport: [5, 'the connection or transport failed'],
  modelsMissing: [10, 'models missing or incomplete (on an air-gapped remote: nothing is downloaded there)'],
  datasetsMissing: [11, 'datasets missing or incomplete (on an air-gapped remote: nothing is downloaded there)'],
  targetBusy: [12, "another runner holds the target's lock (or an asset directory's download lock) and --no-wait was given"],
  interrupted: [130, 'interrupted (Ctrl-C, SIGTERM)'],
} as const satisfies Record<string, readonly [number, string]>

export type ExitCodeName = keyof typeof EXIT_CODES

export const ExitCode = Object.fromEntries(Object.entries(EXIT_CODES).map(([name, [code]]) => [name, code])) as {
  readonly [K in ExitCodeName]: (typeof EXIT_CODES)[K][0]
}

/** The "Exit codes:" section of a script's --help: the codes that script can return, in order. */
export function exitCodesHelp(names: readonly ExitCodeName[]): string {
  const rows = names.map((name) => EXIT_CODES[name]).sort((a, b) => a[0] - b[0])
  return ['Exit codes:', ...rows.map(([code, meaning]) => `  ${String(code).padEnd(5)}${meaning}`)].join('\n')
}

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export interface ErrorOptions {
  cause?: unknown
  /** What fixes it (a command, a flag), printed apart from the message as "Fix: ..."; never glued onto it. */
  hint?: string
  /** What the command found before it failed, printed in its stdout JSON beside `error`. */
  output?: Record<string, unknown>
}

/** Base class: a failure the user can act on, with its exit code and, when there is one, its fix. */
export class RemoteEvalError extends Error {
  readonly exitCode: ExitCodeValue
  readonly hint?: string
  readonly output?: Record<string, unknown>
  constructor(message: string, exitCode: ExitCodeValue, options?: ErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.exitCode = exitCode
    if (options?.hint !== undefined) this.hint = options.hint
    if (options?.output !== undefined) this.output = options.output
  }
}

/** Bad flags or bad input; raised before anything on the remote is touched. */
export class UsageError extends RemoteEvalError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.usage, options)
  }
}

/** A program this machine needs (ssh, rsync, kubectl, tar) is not installed. */
export class LocalPrerequisiteError extends RemoteEvalError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.localPrereq, options)
  }
}

/** The target lacks something the run needs (bash, python, uv or a venv, disk). */
export class RemotePrerequisiteError extends RemoteEvalError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.remotePrereq, options)
  }
}

/** The connection failed: ssh could not connect, kubectl could not reach the pod, a stream broke. */
export class TransportError extends RemoteEvalError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.transport, options)
  }
}

/** The run was interrupted (Ctrl-C, SIGTERM). */
export class InterruptedError extends RemoteEvalError {
  constructor(message = 'Interrupted.', options?: ErrorOptions) {
    super(message, ExitCode.interrupted, options)
  }
}

/** The exit code for any thrown value: ours carry one; anything else is a bug, reported as 1. */
export function exitCodeOf(error: unknown): number {
  return error instanceof RemoteEvalError ? error.exitCode : 1
}
