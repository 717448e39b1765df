#!/usr/bin/env -S node --import tsx
import { runCli } from '../../lib/cli/main.ts'
import { SYNC_USAGE, SYNC_FLAGS_ALL, syncCode } from '../../lib/sync/cli.ts'

await runCli({ help: SYNC_USAGE, flags: SYNC_FLAGS_ALL, run: syncCode })
