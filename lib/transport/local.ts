import { runFramed } from './run.ts'
import { REMOTE_COMMAND } from './script.ts'
import { tarPull, tarPush } from './tree.ts'
import type { PullReport, PushPlan, PushReport, RunOptions, RunResult, Transport } from './types.ts'

// The target is this machine: bash -s locally. Used by the asset scripts (download into a local
// directory) and as the reference the remote transports must behave like.

export class LocalTransport implements Transport {
  readonly kind = 'local' as const
  readonly pushesByRsync = false
  readonly target = 'this machine'

  /** Runs the script with `bash -s`, framed exactly as for a remote target. */
  async run(script: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
    return runFramed({ command: REMOTE_COMMAND[0], commandArgs: REMOTE_COMMAND.slice(1), target: this.target }, { script, args, options })
  }

  push(plan: PushPlan): Promise<PushReport> {
    return tarPush(this, plan, false)
  }

  pull(remoteDir: string, localDir: string): Promise<PullReport> {
    return tarPull(this, remoteDir, localDir)
  }

  async close(): Promise<void> {}
}
