#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): our SSH runner against the documented bash way (rsync the code, ssh to
// run, rsync the report back) on a slow link. A proxy of ours in front of sshd holds every chunk
// the client sends for RTT ms, so both pay the same round-trip time; each run is a whole process
// (Node's start-up included: users pay it), air-gapped, with a no-op eval, once with the tree
// unchanged and once with one file changed. Prints medians, the ratio ours / bash way, and the SSH
// connections and sessions (round trips: each `bash -s` and each rsync is one) per run, counted
// by the proxy and in sshd's log.
//
//   npm run bench:latency [-- --rounds 3 --rtt 0,50,100]      (needs root: it starts sshd)
import { appendFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import minimist from 'minimist'
import { $ } from 'zx'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { startSshd } from '../test/support/sshd.ts'
import { startCountingProxy } from '../test/support/tcp-proxy.ts'

const argv = minimist(process.argv.slice(2), { string: ['rtt'], default: { rounds: 3, rtt: '0,50,100' } })
const ROUNDS = Number(argv.rounds)
const RTTS = String(argv.rtt).split(',').map(Number)
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
/** The bash runner's excludes, as its rsync line has them. */
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

const work = await mkdtemp(path.join(tmpdir(), 'gre-bench-latency-'))
const { info: sshd, stop } = await startSshd({ login: 'current' })
const project = path.join(work, 'project')
await cp(path.join(repo, 'examples/guardrails-mini'), project, { recursive: true, filter: (src) => !src.includes('/reports') })
await writeFile(path.join(project, 'app/eval/noop.py'), NOOP_EVAL)
const models = path.join(work, 'models')
const datasets = path.join(work, 'datasets')
await layOutExampleAssets(path.join(repo, 'examples/hub-repos'), models, datasets, 'guardrails_ru', ['fast'])
const venv = path.join(work, 'venv')
await $`python3 -m venv ${venv}`.quiet()

/** Sessions sshd has started so far (one per exec channel: a script, an rsync). */
const sessions = async () => ((await readFile(sshd.logFile, 'utf8')).match(/Starting session: /g) ?? []).length

const ours = (port: number) =>
  $({ quiet: true })`${path.join(repo, 'scripts/remote_eval/ssh_eval.ts')} ${[
    ...['--host', sshd.alias, '--ssh-config', sshd.configFile, '--ssh-option', `Port=${port}`],
    ...['--remote-dir', path.join(work, 'ours'), '--runtime', 'cpu', '--remote-has-internet', 'no'],
    ...['--models-dir', models, '--datasets-dir', datasets, '--venv', venv, '--eval-module', 'app.eval.noop', '--project-dir', project],
  ]}`

async function bashWay(port: number) {
  const ssh = `ssh -F ${sshd.configFile} -o Port=${port}`
  const dir = path.join(work, 'bash')
  await $({ cwd: project, quiet: true })`rsync -az ${BASH_EXCLUDES.map((e) => `--exclude=${e}`)} -e ${ssh} ./ ${sshd.alias}:${dir}/`
  const command = `cd ${dir} && GR_MODEL_DIR=${models} HF_HOME=${datasets}/hf_cache ${venv}/bin/python -m app.eval.noop --suite guardrails_ru --split fast --env-file .env.eval --output-dir reports/evaluations`
  const run = await $({ quiet: true })`${ssh.split(' ')} ${sshd.alias} ${command}`
  const runDir = JSON.parse(run.stdout).run_dir as string
  const local = path.join(work, 'bash-reports', path.basename(runDir))
  await mkdir(local, { recursive: true })
  await $({ quiet: true })`rsync -az -e ${ssh} ${sshd.alias}:${runDir}/ ${local}/`
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const changeOneFile = () => appendFile(path.join(project, 'app/eval/noop.py'), `# ${Date.now()}\n`)

try {
  console.log(
    `RTT ms  case            bash way ms  ours ms  ratio  connections (bash/ours)  sessions (bash/ours)   ${ROUNDS} rounds, medians`,
  )
  for (const rtt of RTTS) {
    const proxy = await startCountingProxy(sshd.port, { delayMs: rtt })
    try {
      // Warm-up: the first push of each.
      await bashWay(proxy.port)
      await ours(proxy.port)
      for (const [label, before] of [
        ['unchanged tree', async () => {}],
        ['one file changed', changeOneFile],
      ] as const) {
        const ms = { bash: [] as number[], ours: [] as number[] }
        const counts = { bash: [0, 0], ours: [0, 0] }
        for (let round = 0; round < ROUNDS; round++) {
          for (const name of round % 2 ? (['ours', 'bash'] as const) : (['bash', 'ours'] as const)) {
            await before()
            proxy.reset()
            const started = await sessions()
            const t0 = performance.now()
            await (name === 'ours' ? ours(proxy.port) : bashWay(proxy.port))
            ms[name].push(performance.now() - t0)
            counts[name] = [proxy.connections, (await sessions()) - started]
          }
        }
        const [b, o] = [median(ms.bash), median(ms.ours)]
        console.log(
          `${String(rtt).padStart(6)}  ${label.padEnd(16)} ${b.toFixed(0).padStart(11)}  ${o.toFixed(0).padStart(7)}  ${(o / b).toFixed(2).padStart(5)}  ` +
            `${`${counts.bash[0]}/${counts.ours[0]}`.padStart(23)}  ${`${counts.bash[1]}/${counts.ours[1]}`.padStart(20)}`,
        )
      }
    } finally {
      await proxy.close()
    }
  }
} finally {
  await stop()
  await rm(work, { recursive: true, force: true })
}
