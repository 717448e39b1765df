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
import { appendFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { startCountingProxy } from '../test/support/tcp-proxy.ts'
import { median, REPO } from './common.ts'
import { bashWay, oursArgs, startNoopRig } from './noop-run.ts'

const argv = minimist(process.argv.slice(2), { string: ['rtt'], default: { rounds: 3, rtt: '0,50,100' } })
const ROUNDS = Number(argv.rounds)
const RTTS = String(argv.rtt).split(',').map(Number)
const rig = await startNoopRig('latency')

/** Sessions sshd has started so far (one per exec channel: a script, an rsync). */
const sessions = async () => ((await readFile(rig.sshd.logFile, 'utf8')).match(/Starting session: /g) ?? []).length
/** Our run as a user starts it: a whole process. */
const ours = (port: number) => $({ quiet: true })`${path.join(REPO, 'scripts/remote_eval/ssh_eval.ts')} ${oursArgs(rig, port)}`
const changeOneFile = () => appendFile(path.join(rig.project, 'app/eval/noop.py'), `# ${Date.now()}\n`)

try {
  console.log(
    `RTT ms  case            bash way ms  ours ms  ratio  connections (bash/ours)  sessions (bash/ours)   ${ROUNDS} rounds, medians`,
  )
  for (const rtt of RTTS) {
    const proxy = await startCountingProxy(rig.sshd.port, { delayMs: rtt })
    try {
      // Warm-up: the first push of each.
      await bashWay(rig, proxy.port)
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
            await (name === 'ours' ? ours(proxy.port) : bashWay(rig, proxy.port))
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
  await rig.stop()
}
