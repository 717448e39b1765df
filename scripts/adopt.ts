#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../bin/launch.mjs" "$0" "$@"'
import { ADOPT_FLAGS, ADOPT_USAGE, adopt } from '../lib/cli/adopt.ts'
import { runCli } from '../lib/cli/main.ts'

await runCli({ help: ADOPT_USAGE, flags: ADOPT_FLAGS, run: adopt })
