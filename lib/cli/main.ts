import { createLogger, redactStrings, type Logger } from '../core/log.ts'
import { interruptOutcome, runCleanups, runUrgentCleanups } from '../core/cleanup.ts'
import { EXIT_CODES, ExitCode, RemoteEvalError, exitCodeOf } from '../core/errors.ts'
import { UsageWithHelpError, parseFlags, type FlagSpec, type FlagValues } from '../core/flags.ts'
import { CliResult } from '../core/result.ts'
import { toolVersion } from '../core/version.ts'

// The whole life of a script: read flags, print help, call one run(), print its JSON on stdout,
// map errors to exit codes, clean up on every way out (Ctrl-C included).

export interface CliSpec {
  /** Full --help text (usage line, description, options, exit codes). */
  help: string
  flags: readonly FlagSpec[]
  run: (flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) => Promise<unknown>
}

/** Runs a script's CLI; sets process.exitCode, never calls process.exit on the normal path. */
export async function runCli(spec: CliSpec, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const logger = createLogger()
  const abort = new AbortController()
  let interrupted = 0
  let printed = false
  const print = (output: unknown) => {
    if (printed || output === undefined) return
    printed = true
    process.stdout.write(`${JSON.stringify(redactStrings(output, logger.redact), null, 2)}\n`)
  }
  // After the cleanups: how a cleanup settled the interruption (a detach: exit 0), else exit 130.
  const interruptedEnd = (): number => {
    const outcome = interruptOutcome()
    if (outcome) print(outcome.output)
    return outcome?.exitCode ?? ExitCode.interrupted
  }
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted++
    if (interrupted > 1) {
      void runUrgentCleanups().finally(() => process.exit(ExitCode.interrupted))
      return
    }
    // On a terminal, Ctrl-C first asks what to do with a followed run: not an error yet.
    const asks = signal === 'SIGINT' && process.stdin.isTTY && process.stderr.isTTY
    logger.step(
      asks ? 'warn' : 'error',
      `${signal === 'SIGINT' ? 'Interrupted (Ctrl-C)' : `Got ${signal}`}: cleaning up; press Ctrl-C again to quit at once.`,
    )
    abort.abort(signal)
    void runCleanups().finally(() => process.exit(interruptedEnd()))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  try {
    // -h, as the bash runners took it, is --help.
    const flags = parseFlags(
      argv.map((arg) => (arg === '-h' ? '--help' : arg)),
      spec.flags,
    )
    if (flags.help) {
      process.stdout.write(spec.help.endsWith('\n') ? spec.help : `${spec.help}\n`)
      return
    }
    if (flags.version) {
      process.stdout.write(`${toolVersion()}\n`)
      return
    }
    const result = await spec.run(flags, { logger, signal: abort.signal })
    print(result instanceof CliResult ? result.output : result)
    if (result instanceof CliResult) process.exitCode = result.exitCode
  } catch (error) {
    if (abort.signal.aborted) {
      await runCleanups()
      if (interruptOutcome()) return void (process.exitCode = interruptedEnd())
    }
    reportError(logger, error, spec.help)
    process.exitCode = exitCodeOf(error)
    // Scripts and CI read stdout: a failure is JSON there too.
    const found = error instanceof RemoteEvalError ? error.output : undefined
    print({ ...found, error: errorJson(error) })
  } finally {
    await runCleanups()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('SIGHUP', onSignal)
  }
}

/** A failure as the stdout JSON carries it: what happened, what fixes it, the exit code and its meaning. */
export function errorJson(error: unknown): { message: string; hint: string | null; exit_code: number; meaning: string } {
  const code = exitCodeOf(error)
  const meaning = Object.values(EXIT_CODES).find(([value]) => value === code)?.[1] ?? ''
  if (error instanceof RemoteEvalError) return { message: error.message, hint: error.hint ?? null, exit_code: code, meaning }
  const message = `Unexpected failure (a bug in ${toolVersion()}): ${error instanceof Error ? error.message : String(error)}`
  return { message, hint: null, exit_code: code, meaning }
}

function reportError(logger: Logger, error: unknown, help: string): void {
  if (error instanceof RemoteEvalError) {
    logger.step('error', error.message)
    if (error.hint) logger.step('error', `Fix: ${error.hint}`)
    if (error instanceof UsageWithHelpError)
      process.stderr.write(`\n${help.split('\nOptions:')[0]!.trim()}\nRun with --help for all options.\n`)
    return
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error)
  logger.step('error', `Unexpected failure (a bug in ${toolVersion()}; please report it with this output):\n${detail}`)
}
