import type { FlagValues } from '../core/flags.ts'
import type { Logger } from '../core/log.ts'
import { evalOptionsFrom } from '../eval/options.ts'
import { runRemoteEval } from '../eval/pipeline.ts'
import { kindNamed } from '../transport/kinds.ts'

// The run() of ssh_eval.ts and k8s_eval.ts: every flag checked first, then one pipeline.

export function sshEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, kindNamed('ssh')), context)
}

export function k8sEvalCommand(flags: FlagValues, context: { logger: Logger; signal: AbortSignal }) {
  return runRemoteEval(evalOptionsFrom(flags, kindNamed('kubectl')), context)
}
