#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// `make demo`: the tool end to end on this machine, with no network. It starts a throwaway sshd for
// the current user on a free loopback port, pushes this repository to a fresh directory over it with
// scripts/remote_eval/sync_code.ts (as you would to a GPU host), pushes again to show that an
// unchanged tree sends nothing, then stops sshd and removes everything it made.
import { mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { which } from 'zx'
import { spawnProcess } from '../lib/process.ts'
import { SSHD_MISSING, startSshd } from '../test/support/sshd.ts'

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

for (const [tool, hint] of [['ssh', 'sudo apt-get install openssh-client'], ['rsync', 'sudo apt-get install rsync']] as const) {
  if (!(await which(tool, { nothrow: true }))) {
    console.error(`[error] ${tool} is not installed. Install it: \`${hint}\``)
    process.exit(3)
  }
}
if (!(await which('sshd', { nothrow: true })) && !(await which('/usr/sbin/sshd', { nothrow: true }))) {
  console.error(`[error] ${SSHD_MISSING}`)
  process.exit(3)
}

const { info, stop } = await startSshd({ login: 'current' })
const scratch = await mkdtemp('/tmp/gre-demo-')
const remoteDir = path.join(scratch, 'remote', 'guardrails')
try {
  console.error(`[demo] throwaway sshd for ${info.user} on 127.0.0.1:${info.port}; pushing ${repo} to ${remoteDir}`)
  const push = async (label: string) => {
    console.error(`\n[demo] ${label}: scripts/remote_eval/sync_code.ts --host ${info.alias} --remote-dir ${remoteDir}`)
    const result = await spawnProcess(
      path.join(repo, 'scripts/remote_eval/sync_code.ts'),
      ['--host', info.alias, '--ssh-config', info.configFile, '--remote-dir', remoteDir, '--project-dir', repo],
      { cwd: repo, onStderrLine: (line) => console.error(line) },
    )
    process.stdout.write(result.stdout)
    if (result.exitCode !== 0) throw new Error(`sync_code.ts exited with ${result.exitCode}`)
  }
  await push('first push')
  await push('second push, nothing changed')
  console.error('\n[demo] done: the second push sent nothing. Next: the same flags against your GPU host.')
} finally {
  await stop()
  await rm(scratch, { recursive: true, force: true })
}
