import type { FlagValues } from '../core/flags.ts'
import type { Logger } from '../core/log.ts'
import { evalOptionsFrom } from '../eval/options.ts'
import { runRemoteEval } from '../eval/pipeline.ts'

// The run() of ssh_eval.ts and k8s_eval.ts: every flag checked first, then one pipeline.

export function sshEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, 'ssh'), context)
}

export function k8sEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, 'k8s'), context)
}
