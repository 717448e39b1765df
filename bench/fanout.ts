#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): one suite in shards. A suite of 11 datasets whose scoring takes uneven
// times (6, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1 units: 32 in all, and the best 4-shard plan takes 8),
// run by ssh_eval.ts on a host with four GPUs (the nvidia-smi double) over the real sshd: on one
// GPU as today, then with --shard on 2 and 4, and on two hosts of two GPUs each (the second host
// is the same sshd reached from another address, with its own remote directory). Prints each one's
// median wall time, its speedup against one GPU in the same round, and its plan's makespan (in
// units, from the datasets each shard got) against the best possible for those times. Goals:
// speedup >= 3.2 on 4 shards, makespan within 10 % of the optimum.
//
//   npm run bench:fanout [-- --unit 2 --rounds 2]      (needs root: it starts sshd with its test user)
import { spawn } from 'node:child_process'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { HOSTS_DIR, startSshd } from '../test/support/sshd.ts'
import { median, REPO } from './common.ts'

const flags = minimist(process.argv.slice(2), { default: { unit: 2, rounds: 2 } })
const UNIT = Number(flags.unit)
const ROUNDS = Number(flags.rounds)
const UNITS = [6, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1]
const IDS = UNITS.map((_, i) => `d${String(i + 1).padStart(2, '0')}`)
const cost = new Map(IDS.map((id, i) => [id, UNITS[i]!]))
/** What each configuration adds to the common flags (the first host and its remote directory). */
const CONFIGS: ReadonlyArray<{ name: string; shards: number; args: (second: { remoteDir: string }) => string[] }> = [
  { name: '1 GPU', shards: 1, args: () => ['--gpus', '0'] },
  { name: '2 GPUs', shards: 2, args: () => ['--gpus', '0,1', '--shard'] },
  { name: '4 GPUs', shards: 4, args: () => ['--gpus', '0,1,2,3', '--shard'] },
  {
    name: '2 hosts x 2 GPUs',
    shards: 4,
    args: ({ remoteDir }) => ['--host', 'gr-test-b', '--remote-dir', remoteDir, '--gpus', '0,1', '--shard'],
  },
]

/** The least makespan of any split of the units among `count` shards (exhaustive, pruned). */
function optimum(units: readonly number[], count: number): number {
  const sorted = [...units].sort((a, b) => b - a)
  let best = sorted.reduce((a, b) => a + b, 0)
  const loads = new Array<number>(count).fill(0)
  const place = (k: number) => {
    if (k === sorted.length) return void (best = Math.min(best, Math.max(...loads)))
    for (let s = 0; s < count; s++) {
      if (loads[s]! + sorted[k]! >= best || (s > 0 && loads[s] === loads[s - 1])) continue
      loads[s]! += sorted[k]!
      place(k + 1)
      loads[s]! -= sorted[k]!
    }
  }
  place(0)
  return best
}

const { info: sshd, stop } = await startSshd()
const work = path.join(sshd.home, `bench-fanout-${process.pid}`)
try {
  // The hosts' GPUs: the nvidia-smi double on the test user's PATH for logins from 127.0.0.1 (four)
  // and 127.0.0.2 (two), which an ssh config names gr-test and gr-test-b.
  for (const [address, gpus] of [
    ['127.0.0.1', 4],
    ['127.0.0.2', 2],
  ] as const) {
    const hostBin = path.join(sshd.home, HOSTS_DIR, address, 'bin')
    await mkdir(hostBin, { recursive: true })
    await $`install -m 755 ${path.join(REPO, 'test/fixtures/bin/nvidia-smi')} ${path.join(hostBin, 'nvidia-smi')}`.quiet()
    await writeFile(path.join(hostBin, 'nvidia-smi.conf'), `gpus=${gpus}\n`)
  }
  const sshConfig = path.join(sshd.home, `bench-fanout-${process.pid}.ssh_config`)
  const harnessConfig = await readFile(sshd.configFile, 'utf8')
  await writeFile(sshConfig, `${harnessConfig}\n${harnessConfig.replace(/^Host \S+$/m, 'Host gr-test-b\n  BindAddress 127.0.0.2')}`)
  // The example repo with a suite of the 11 datasets (each the chat dataset under its own id).
  const project = path.join(work, 'project')
  await mkdir(work, { recursive: true })
  await $`cp -r ${path.join(REPO, 'examples/guardrails-mini')} ${project}`.quiet()
  await $`rm -rf ${path.join(project, 'reports')}`.quiet()
  const suitesPath = path.join(project, 'configs/eval/suites.yaml')
  const suites = JSON.parse(
    (await readFile(suitesPath, 'utf8'))
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n'),
  )
  suites.suites.fanout = { default_split: 'fast', splits: ['fast'], datasets: IDS }
  for (const id of IDS) suites.datasets[id] = { hf_id: 'org/ru-pii-chat' }
  await writeFile(suitesPath, JSON.stringify(suites, null, 1))
  const models = path.join(work, 'models')
  const datasets = path.join(work, 'datasets')
  await layOutExampleAssets(
    path.join(REPO, 'examples/hub-repos'),
    models,
    datasets,
    'fanout',
    ['fast'],
    IDS.map((id) => [id, 'org/ru-pii-chat'] as const),
  )
  const venv = path.join(work, 'venv')
  // The system Python: a pyenv one under /root is out of the test user's reach.
  await $`/usr/bin/python3 -m venv ${venv}`.quiet()
  await $`chown -R ${sshd.user} ${work} ${path.join(sshd.home, HOSTS_DIR)}`.quiet()
  await chmod(work, 0o755)

  const seconds = IDS.map((id) => `${id}=${cost.get(id)! * UNIT}`).join(',')
  const second = { remoteDir: path.join(work, 'remote-b') }
  const base = [
    ...['--host', sshd.alias, '--ssh-config', sshConfig, '--remote-dir', path.join(work, 'remote')],
    ...['--runtime', 'cuda', '--remote-has-internet', 'no', '--models-dir', models, '--datasets-dir', datasets],
    ...['--venv', venv, '--suite', 'fanout', '--split', 'fast', '--project-dir', project, '--no-baseline'],
    ...['--env', `GR_MINI_DATASET_SECONDS=${seconds}`],
  ]
  const run = (config: (typeof CONFIGS)[number]) =>
    new Promise<{ ms: number; out: { shards?: Array<{ datasets: string[] }> } }>((resolve, reject) => {
      const args = [...base, ...config.args(second)]
      const started = performance.now()
      const child = spawn(path.join(REPO, 'scripts/remote_eval/ssh_eval.ts'), args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (c: Buffer) => (stdout += c))
      child.stderr.on('data', (c: Buffer) => (stderr += c))
      child.on('close', (code) =>
        code === 0
          ? resolve({ ms: performance.now() - started, out: JSON.parse(stdout) })
          : reject(new Error(`${config.name}: exit ${code}\n${stderr}`)),
      )
    })

  // Round 0 syncs the code to both hosts and times each dataset for the plans: not counted.
  await run(CONFIGS[0]!)
  await $`${path.join(REPO, 'scripts/remote_eval/sync_code.ts')} --host gr-test-b --ssh-config ${sshConfig} --remote-dir ${second.remoteDir} --project-dir ${project}`.quiet()
  const times = new Map(CONFIGS.map((c) => [c.name, [] as number[]]))
  const speedups = new Map(CONFIGS.map((c) => [c.name, [] as number[]]))
  const makespans = new Map(CONFIGS.map((c) => [c.name, 0]))
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? CONFIGS : [...CONFIGS].reverse()
    const roundMs = new Map<string, number>()
    for (const config of order) {
      const { ms, out } = await run(config)
      roundMs.set(config.name, ms)
      times.get(config.name)!.push(ms)
      const shards = out.shards?.map((s) => s.datasets) ?? [IDS]
      makespans.set(config.name, Math.max(...shards.map((d) => d.reduce((sum, id) => sum + cost.get(id)!, 0))))
      process.stderr.write(`[bench] round ${round}: ${config.name} ${(ms / 1000).toFixed(1)} s\n`)
    }
    for (const config of CONFIGS) speedups.get(config.name)!.push(roundMs.get(CONFIGS[0]!.name)! / roundMs.get(config.name)!)
  }

  console.log(`bench:fanout: ${UNITS.join(', ')} units of ${UNIT} s (${UNITS.reduce((a, b) => a + b, 0)} in all), ${ROUNDS} round(s)`)
  console.log('where              shards  median wall  speedup vs 1  plan makespan  optimum  plan / optimum')
  for (const config of CONFIGS) {
    const best = optimum(UNITS, config.shards)
    const makespan = makespans.get(config.name)!
    console.log(
      `${config.name.padEnd(17)}  ${String(config.shards).padStart(6)}  ${(median(times.get(config.name)!) / 1000).toFixed(1).padStart(9)} s  ${median(speedups.get(config.name)!).toFixed(2).padStart(12)}  ${String(makespan).padStart(13)}  ${String(best).padStart(7)}  ${(makespan / best).toFixed(2).padStart(14)}`,
    )
  }
  for (const config of CONFIGS.filter((c) => c.shards === 4)) {
    const speedup = median(speedups.get(config.name)!)
    const ratio = makespans.get(config.name)! / optimum(UNITS, 4)
    console.log(`goal (${config.name}): speedup on 4 shards >= 3.2: ${speedup.toFixed(2)} (${speedup >= 3.2 ? 'met' : 'missed'})`)
    console.log(`goal (${config.name}): makespan within 10 % of the optimum: ${ratio.toFixed(2)} (${ratio <= 1.1 ? 'met' : 'missed'})`)
  }
} finally {
  await $`rm -rf ${work} ${path.join(sshd.home, HOSTS_DIR, '127.0.0.1')} ${path.join(sshd.home, HOSTS_DIR, '127.0.0.2')}`.quiet().nothrow()
  await $`rm -f ${path.join(sshd.home, `bench-fanout-${process.pid}.ssh_config`)}`.quiet().nothrow()
  await stop()
}
