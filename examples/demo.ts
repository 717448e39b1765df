#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// `make demo`: the main job end to end on this machine, with no network and no uv. It starts a
// throwaway sshd for the current user on a free loopback port, lays out the example's model and
// dataset directories (with manifests), makes a bare Python venv (the prebuilt-venv mode), and runs
// scripts/remote_eval/ssh_eval.ts air-gapped on examples/guardrails-mini, as you would against a
// GPU host, twice: the second run, on fewer samples, ends with what changed since the first. The
// reports land in examples/guardrails-mini/reports/evaluations/, with the history page of every
// run there (index.html). sshd and the scratch directory are removed after.
import { mkdtemp, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { $, which } from 'zx'
import { spawnProcess } from '../lib/core/process.ts'
import { COLOR_ENV } from '../lib/core/log.ts'
import { SSHD_MISSING, startSshd } from '../test/support/sshd.ts'
import { layOutExampleAssets } from './demo-assets.ts'

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const example = path.join(repo, 'examples', 'guardrails-mini')
const say = (line: string) => console.error(`[demo] ${line}`)

const needs: Array<[string, string]> = [
  ['ssh', 'sudo apt-get install openssh-client'],
  ['rsync', 'sudo apt-get install rsync'],
  ['python3', 'sudo apt-get install python3 python3-venv'],
]
for (const [tool, hint] of needs) {
  if (!(await which(tool, { nothrow: true }))) {
    console.error(`[error] ${tool} is not installed. Install it: \`${hint}\``)
    process.exit(3)
  }
}
if (!(await which('sshd', { nothrow: true })) && !(await which('/usr/sbin/sshd', { nothrow: true }))) {
  console.error(`[error] ${SSHD_MISSING}`)
  process.exit(3)
}

const scratch = await mkdtemp('/tmp/gre-demo-')
const { info, stop } = await startSshd({ login: 'current' })
let code = 1
try {
  const models = path.join(scratch, 'models')
  const datasets = path.join(scratch, 'datasets')
  const venv = path.join(scratch, 'venv')
  say(`throwaway sshd for ${info.user} on 127.0.0.1:${info.port}`)
  await layOutExampleAssets(path.join(repo, 'examples', 'hub-repos'), models, datasets, 'guardrails_ru', ['fast', 'full'])
  say(`prepared ${models} and ${datasets} (manifests written; the host is treated as air-gapped)`)
  const made = await $`python3 -m venv ${venv}`.nothrow().quiet()
  if (made.exitCode !== 0) {
    console.error(`[error] python3 -m venv failed (${made.stderr.trim()}). Install it: \`sudo apt-get install python3-venv\``)
    process.exit(3)
  }
  say(`prebuilt venv ${venv} (standard library only: the example eval needs nothing more)`)
  const args = [
    '--host',
    info.alias,
    '--ssh-config',
    info.configFile,
    '--remote-dir',
    path.join(scratch, 'remote', 'guardrails'),
    '--runtime',
    'cpu',
    '--suite',
    'guardrails_ru',
    '--split',
    'fast',
    '--remote-has-internet',
    'no',
    '--models-dir',
    models,
    '--datasets-dir',
    datasets,
    '--venv',
    venv,
    '--project-dir',
    example,
  ]
  const evalRun = async (extra: string[]) => {
    say(`scripts/remote_eval/ssh_eval.ts ${[...args, ...extra].join(' ')}\n`)
    const result = await spawnProcess(path.join(repo, 'scripts/remote_eval/ssh_eval.ts'), [...args, ...extra], {
      cwd: repo,
      // Its stderr reaches the user's terminal through us: keep its colours there.
      env: { ...process.env, ...(process.stderr.isTTY ? { [COLOR_ENV]: '1' } : {}) },
      onStderrLine: (line) => console.error(line),
    })
    process.stdout.write(result.stdout)
    return result.exitCode ?? 1
  }
  code = await evalRun([])
  if (code === 0) {
    // As after a change to the code: other scores, which the runner compares with the run before.
    say('a second run, on 5 samples per dataset: the runner shows what changed since the first\n')
    // The eval names a report's folder by the second it started and its settings, which
    // --max-samples is not one of (as in the real eval): started within the same second, the second
    // run would write over the first's report. The demo is quick enough for that, so it waits.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50))
    code = await evalRun(['--eval-arg=--max-samples', '--eval-arg=5'])
  }
  if (code === 0)
    say(
      'done: the reports are in the local_run_dir above, every run on the history page named above. Next: the same flags against your GPU host.',
    )
} finally {
  await stop()
  await rm(scratch, { recursive: true, force: true })
}
process.exitCode = code
