#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../bin/launch.mjs" "$0" "$@"'
import { MODELS_FLAGS, MODELS_USAGE, modelsCommand } from '../lib/cli/assets.ts'
import { runCli } from '../lib/cli/main.ts'

await runCli({ help: MODELS_USAGE, flags: MODELS_FLAGS, run: modelsCommand })
