#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../../bin/launch.mjs" "$0" "$@"'
import { runCli } from '../../lib/cli/main.ts'
import { k8sEvalCommand } from '../../lib/cli/eval.ts'
import { K8S_EVAL_FLAGS, K8S_EVAL_USAGE } from '../../lib/eval/options.ts'

await runCli({ help: K8S_EVAL_USAGE, flags: K8S_EVAL_FLAGS, run: k8sEvalCommand })
