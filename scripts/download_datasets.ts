#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../bin/launch.mjs" "$0" "$@"'
import { DATASETS_FLAGS, DATASETS_USAGE, datasetsCommand } from '../lib/cli/assets.ts'
import { runCli } from '../lib/cli/main.ts'

await runCli({ help: DATASETS_USAGE, flags: DATASETS_FLAGS, run: datasetsCommand })
