import { constants } from 'node:os'
import { TransportError } from '../core/errors.ts'
import { type InputPart, spawnProcess } from '../core/process.ts'
import { frameScript } from './script.ts'
import type { RunOptions, RunResult } from './types.ts'

/**
 * Starts `command commandArgs` (which ends in `bash -s` on the target) with the framed script, and
 * any data after it, on stdin. Every transport's run goes through here; only the command differs.
 */
export async function runFramed(
  via: { command: string; commandArgs: string[]; target: string },
  call: { script: string; args: readonly string[]; options: RunOptions },
): Promise<RunResult> {
  const { command, commandArgs, target } = via
  const { script, args, options } = call
  if (options.session) return options.session.call(script, args, options)
  const input: InputPart[] = [frameScript(script, args, options.env)]
  if (Array.isArray(options.stdin)) input.push(...(options.stdin as InputPart[]))
  else if (options.stdin !== undefined) input.push(options.stdin as InputPart)
  const result = await spawnProcess(command, commandArgs, {
    input,
    stdout: options.stdoutSink ?? 'collect',
    stdoutEncoding: options.stdoutEncoding,
    onStderrLine: options.onStderrLine,
    timeoutMs: options.timeoutMs,
    signal: options.signal,
  }).catch((error: NodeJS.ErrnoException) => {
    throw new TransportError(`Cannot start ${command} for ${target}: ${error.message}`, { cause: error })
  })
  if (result.timedOut) {
    throw new TransportError(`${target}: no answer within ${Math.round((options.timeoutMs ?? 0) / 1000)} s; gave up.`)
  }
  const signalCode = result.signal ? (constants.signals[result.signal] ?? 0) : 0
  return {
    exitCode: result.exitCode ?? 128 + signalCode,
    stdout: result.stdout,
    stderrTail: result.stderrTail,
    bytesSent: result.bytesIn,
  }
}
