#!/usr/bin/env -S sh -c 'exec node "$(dirname "$(readlink -f "$0")")/../../bin/launch.mjs" "$0" "$@"'
import { runCli } from '../../lib/cli/main.ts'
import { SYNC_USAGE, SYNC_FLAGS_ALL, syncCode } from '../../lib/cli/sync.ts'

await runCli({ help: SYNC_USAGE, flags: SYNC_FLAGS_ALL, run: syncCode })
