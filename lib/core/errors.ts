// Typed failures: each carries its exit code (the table of docs/REMOTE_EVAL.md, "Exit codes") and
// a message that says what to do. The CLI layer maps them to exit codes; nothing else calls
// process.exit.

export const ExitCode = {
  ok: 0,
  evalFailed: 1,
  usage: 2,
  localPrereq: 3,
  remotePrereq: 4,
  transport: 5,
  modelsMissing: 10,
  datasetsMissing: 11,
  targetBusy: 12,
  interrupted: 130,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** Base class: a failure the user can act on, with its exit code. */
export class RemoteEvalError extends Error {
  readonly exitCode: ExitCodeValue
  constructor(message: string, exitCode: ExitCodeValue, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.exitCode = exitCode
  }
}

/** Bad flags or bad input; raised before anything on the remote is touched. */
export class UsageError extends RemoteEvalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.usage, options)
  }
}

/** A program this machine needs (ssh, rsync, kubectl, tar) is not installed. */
export class LocalPrerequisiteError extends RemoteEvalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.localPrereq, options)
  }
}

/** The target lacks something the run needs (bash, python, uv or a venv, disk). */
export class RemotePrerequisiteError extends RemoteEvalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.remotePrereq, options)
  }
}

/** The connection failed: ssh could not connect, kubectl could not reach the pod, a stream broke. */
export class TransportError extends RemoteEvalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, ExitCode.transport, options)
  }
}

/** The run was interrupted (Ctrl-C, SIGTERM). */
export class InterruptedError extends RemoteEvalError {
  constructor(message = 'Interrupted.', options?: { cause?: unknown }) {
    super(message, ExitCode.interrupted, options)
  }
}

/** The exit code for any thrown value: ours carry one; anything else is a bug, reported as 1. */
export function exitCodeOf(error: unknown): number {
  return error instanceof RemoteEvalError ? error.exitCode : 1
}
