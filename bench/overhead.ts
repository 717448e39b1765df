#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): the overhead of a run. With a no-op eval on loopback, our SSH runner
// (preflight, sync, deps, asset check, run, run_dir check, fetch: one connection) against the same
// three steps done the documented bash way (rsync the code, ssh to run, rsync the report back:
// three connections), in the same run. Connections are counted by a TCP proxy process in front of
// sshd. Times are medians of repeated runs with the code unchanged (the common iteration), taken in
// process for ours, so Node's start-up (reported apart) is not counted against either.
//
//   npm run bench:overhead [-- --rounds 7]      (needs root: it starts sshd)
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import minimist from 'minimist'
import { $ } from 'zx'
import { runCleanups } from '../lib/core/cleanup.ts'
import { parseFlags } from '../lib/core/flags.ts'
import { sshEvalCommand } from '../lib/cli/eval.ts'
import { SSH_EVAL_FLAGS } from '../lib/eval/options.ts'
import { silentLogger } from '../lib/core/log.ts'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { startSshd } from '../test/support/sshd.ts'
import { startCountingProxyProcess } from '../test/support/tcp-proxy.ts'

const ROUNDS = Number(minimist(process.argv.slice(2), { default: { rounds: 7 } }).rounds)
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const BASH_EXCLUDES = [
  '.git/',
  '.env*',
  '.venv/',
  '.eval_cache/',
  '.models/',
  '.datasets/',
  'reports/',
  'baselines/',
  '__pycache__/',
  '.pytest_cache/',
]
const NOOP_EVAL = `import json, os, sys
out = os.path.abspath(os.path.join(sys.argv[sys.argv.index("--output-dir") + 1], "noop-%d" % os.getpid()))
os.makedirs(out)
open(os.path.join(out, "metrics.csv"), "w").write("task,scope,metric_family,precision,recall,f1\\n")
print(json.dumps({"run_dir": out, "report_json": "", "report_md": "", "metrics_csv": os.path.join(out, "metrics.csv")}))
`

const work = await mkdtemp(path.join(tmpdir(), 'gre-bench-overhead-'))
const { info: sshd, stop } = await startSshd({ login: 'current' })
const proxy = await startCountingProxyProcess(sshd.port)
const project = path.join(work, 'project')
await cp(path.join(repo, 'examples/guardrails-mini'), project, { recursive: true, filter: (src) => !src.includes('/reports') })
await writeFile(path.join(project, 'app/eval/noop.py'), NOOP_EVAL)
const models = path.join(work, 'models')
const datasets = path.join(work, 'datasets')
await layOutExampleAssets(path.join(repo, 'examples/hub-repos'), models, datasets, 'guardrails_ru', ['fast'])
const venv = path.join(work, 'venv')
await $`python3 -m venv ${venv}`.quiet()
const ssh = `ssh -F ${sshd.configFile} -o Port=${proxy.port}`

const ours = async () => {
  const argv = [
    '--host',
    sshd.alias,
    '--ssh-config',
    sshd.configFile,
    '--ssh-option',
    `Port=${proxy.port}`,
    '--remote-dir',
    path.join(work, 'ours'),
    '--runtime',
    'cpu',
    '--remote-has-internet',
    'no',
    '--models-dir',
    models,
    '--datasets-dir',
    datasets,
    '--venv',
    venv,
    '--eval-module',
    'app.eval.noop',
    '--project-dir',
    project,
  ]
  try {
    await sshEvalCommand(parseFlags(argv, SSH_EVAL_FLAGS), { logger: silentLogger, signal: new AbortController().signal })
  } finally {
    await runCleanups()
  }
}

const bashWay = async () => {
  const dir = path.join(work, 'bash')
  await $({ cwd: project, quiet: true })`rsync -az ${BASH_EXCLUDES.map((e) => `--exclude=${e}`)} -e ${ssh} ./ ${sshd.alias}:${dir}/`
  const command = `cd ${dir} && GR_MODEL_DIR=${models} HF_HOME=${datasets}/hf_cache ${venv}/bin/python -m app.eval.noop --suite guardrails_ru --split fast --env-file .env.eval --output-dir reports/evaluations`
  const run = await $({ quiet: true })`${ssh.split(' ')} ${sshd.alias} ${command}`
  const runDir = JSON.parse(run.stdout).run_dir as string
  const local = path.join(work, 'bash-reports', path.basename(runDir))
  await $({ quiet: true })`mkdir -p ${local} && rsync -az -e ${ssh} ${sshd.alias}:${runDir}/ ${local}/`
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const samples = { ours: [] as number[], bash: [] as number[], oursConnections: 0, bashConnections: 0 }
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, fn] of (round % 2
    ? [
        ['ours', ours],
        ['bash', bashWay],
      ]
    : [
        ['bash', bashWay],
        ['ours', ours],
      ]) as Array<['ours' | 'bash', () => Promise<void>]>) {
    await proxy.reset()
    const started = performance.now()
    await fn()
    const ms = performance.now() - started
    if (round > 0) samples[name].push(ms) // round 0 is the first push of each: warm-up
    samples[`${name}Connections`] = (await proxy.counts()).connections
  }
}
const startup = await (async () => {
  const started = performance.now()
  await $({ quiet: true })`${path.join(repo, 'scripts/remote_eval/ssh_eval.ts')} --help`
  return performance.now() - started
})()

console.log(`\noverhead benchmark: no-op eval over loopback sshd, ${ROUNDS} rounds, medians, code unchanged between runs\n`)
console.log(`bash way (rsync, ssh, rsync):   ${median(samples.bash).toFixed(0).padStart(5)} ms   ${samples.bashConnections} connections`)
console.log(`ssh_eval.ts (whole pipeline):   ${median(samples.ours).toFixed(0).padStart(5)} ms   ${samples.oursConnections} connection`)
console.log(
  `ratio ours / bash way:          ${(median(samples.ours) / median(samples.bash)).toFixed(2)}   (goal: at most 1.00, with one connection instead of three)`,
)
console.log(`(Node + tsx start-up of the script, not counted above: ${startup.toFixed(0)} ms)`)
await proxy.close()
await stop()
await rm(work, { recursive: true, force: true })
