#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): our SSH runner against the documented bash way (rsync the code, ssh to
// run, rsync the report back) on a slow link. A proxy of ours in front of sshd holds every chunk
// the client sends for RTT ms, so both pay the same round-trip time; each run is a whole process
// (Node's start-up included: users pay it), air-gapped, with a no-op eval, once with the tree
// unchanged and once with one file changed. Prints medians, the ratio ours / bash way, and the SSH
// connections and sessions (round trips: each `bash -s` and each rsync is one) per run, counted
// by the proxy and in sshd's log. The same in a pod of the API server double: k8s_eval.ts against
// the bash pod way (tar into kubectl exec, kubectl exec, kubectl cp), each kubectl call made
// slower by a fixed delay; beside the times, kubectl calls and the execs the server served.
//
//   npm run bench:latency [-- --rounds 3 --rtt 0,50,100 --kubectl-delay 0,150 --targets ssh,end,pod]
//   (needs root: it starts sshd and bubblewrap sandboxes)
import { spawn } from 'node:child_process'
import { appendFile, readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { startCountingProxy } from '../test/support/tcp-proxy.ts'
import { median, REPO } from './common.ts'
import { bashPodWay, bashWay, oursArgs, oursPodArgs, startNoopPod, startNoopRig } from './noop-run.ts'

const argv = minimist(process.argv.slice(2), {
  string: ['rtt', 'kubectl-delay', 'targets'],
  default: { rounds: 3, rtt: '0,50,100', 'kubectl-delay': '0,150', targets: 'ssh,end,pod' },
})
const ROUNDS = Number(argv.rounds)
const numbers = (list: string) => list.split(',').map(Number)
const TARGETS = String(argv.targets).split(',')
const rig = await startNoopRig('latency')

/** Sessions sshd has started so far (one per exec channel: a script, an rsync). */
const sessions = async () => ((await readFile(rig.sshd.logFile, 'utf8')).match(/Starting session: /g) ?? []).length
const changeOneFile = () => appendFile(path.join(rig.project, 'app/eval/noop.py'), `# ${Date.now()}\n`)
const CASES = [
  ['unchanged tree', async () => {}],
  ['one file changed', changeOneFile],
] as const

type Way = 'bash' | 'ours'

/**
 * One line per case: both ways `ROUNDS` times, alternating which goes first; medians, the ratio,
 * and what `count` says each way's last run cost (counted around it: [before, after] readings).
 */
async function rows(label: (name: string) => string, run: Record<Way, () => Promise<unknown>>, count: () => Promise<number[]>) {
  // Warm-up: the first push of each.
  await run.bash()
  await run.ours()
  for (const [name, before] of CASES) {
    const ms: Record<Way, number[]> = { bash: [], ours: [] }
    const counts: Record<Way, number[]> = { bash: [], ours: [] }
    for (let round = 0; round < ROUNDS; round++) {
      for (const way of round % 2 ? (['ours', 'bash'] as const) : (['bash', 'ours'] as const)) {
        await before()
        const started = await count()
        const t0 = performance.now()
        await run[way]()
        ms[way].push(performance.now() - t0)
        counts[way] = (await count()).map((n, i) => n - started[i]!)
      }
    }
    const [b, o] = [median(ms.bash), median(ms.ours)]
    const pairs = counts.bash.map((n, i) => `${n}/${counts.ours[i]}`.padStart(12)).join(' ')
    console.log(`${label(name)} ${b.toFixed(0).padStart(11)}  ${o.toFixed(0).padStart(7)}  ${(o / b).toFixed(2).padStart(5)}  ${pairs}`)
  }
}

try {
  if (TARGETS.includes('ssh')) {
    console.log(`SSH: RTT ms  case            bash way ms  ours ms  ratio  connections  sessions    (bash/ours; ${ROUNDS} rounds, medians)`)
    /** Our run as a user starts it: a whole process. */
    const ours = (port: number) => $({ quiet: true })`${path.join(REPO, 'scripts/remote_eval/ssh_eval.ts')} ${oursArgs(rig, port)}`
    for (const rtt of numbers(String(argv.rtt))) {
      const proxy = await startCountingProxy(rig.sshd.port, { delayMs: rtt })
      try {
        await rows(
          (name) => `${String(rtt).padStart(11)}  ${name.padEnd(16)}`,
          { bash: () => bashWay(rig, proxy.port), ours: () => ours(proxy.port) },
          async () => [proxy.connections, await sessions()],
        )
      } finally {
        await proxy.close()
      }
    }
  }
  if (TARGETS.includes('end')) {
    // How long after the eval exits the runner sees the run end: its "exiting at" line against the
    // moment "[run] the eval finished" reaches us (one clock: all on this machine), the log followed
    // as a stream (GNU tail) or polled with back-off (REMOTE_EVAL_FOLLOW=poll, as before).
    console.log(`end of run: follow  ms after the eval exits  (loopback, a quiet 3 s eval; ${ROUNDS} rounds, median, max)`)
    for (const mode of ['stream', 'poll']) {
      const lags: number[] = []
      for (let round = 0; round < ROUNDS; round++) {
        const args = [...oursArgs(rig, rig.sshd.port, 'app.eval.quiet'), '--env', `REMOTE_EVAL_FOLLOW=${mode}`]
        const child = spawn(path.join(REPO, 'scripts/remote_eval/ssh_eval.ts'), args, { stdio: ['ignore', 'ignore', 'pipe'] })
        let exited = 0
        let seen = 0
        for await (const line of createInterface({ input: child.stderr })) {
          const at = /exiting at (\d+)/.exec(line)
          if (at) exited = Number(at[1])
          if (line.includes('[run] the eval finished')) seen = Date.now()
        }
        if (!exited || !seen) throw new Error(`the ${mode} run did not show its end`)
        lags.push(seen - exited)
      }
      console.log(`  ${mode.padEnd(6)}  ${median(lags).toFixed(0).padStart(4)} ms  (max ${Math.max(...lags)} ms)`)
    }
  }
  if (TARGETS.includes('pod')) {
    const pod = await startNoopPod(rig)
    try {
      console.log(
        `pod: ms per kubectl call  case   bash way ms  ours ms  ratio  kubectl calls  execs  (bash/ours; ${ROUNDS} rounds, medians)`,
      )
      for (const delay of numbers(String(argv['kubectl-delay']))) {
        const env = pod.env(delay)
        const ours = () => $({ quiet: true, env })`${path.join(REPO, 'scripts/remote_eval/k8s_eval.ts')} ${oursPodArgs(rig, pod)}`
        await rows(
          (name) => `${String(delay).padStart(24)}  ${name.padEnd(16)}`,
          { bash: () => bashPodWay(rig, pod, env), ours },
          async () => [await pod.calls(), await pod.execs()],
        )
      }
    } finally {
      await pod.stop()
    }
  }
} finally {
  await rig.stop()
}
