#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../../bin/launch.mjs" "$0" "$@"'
import { runCli } from '../../lib/cli/main.ts'
import { sshEvalCommand } from '../../lib/cli/eval.ts'
import { SSH_EVAL_FLAGS, SSH_EVAL_USAGE } from '../../lib/eval/options.ts'

await runCli({ help: SSH_EVAL_USAGE, flags: SSH_EVAL_FLAGS, run: sshEvalCommand })
