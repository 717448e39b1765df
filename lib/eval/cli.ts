import type { FlagValues } from '../cli/flags.ts'
import type { Logger } from '../log.ts'
import { evalOptionsFrom } from './options.ts'
import { runRemoteEval } from './pipeline.ts'

// The run() of ssh_eval.ts and k8s_eval.ts: every flag checked first, then one pipeline.

export function sshEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, 'ssh'), context)
}

export function k8sEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, 'k8s'), context)
}
