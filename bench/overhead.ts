#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): the overhead of a run. With a no-op eval on loopback, our SSH runner
// (preflight, sync, deps, asset check, run, run_dir check, fetch: one connection) against the same
// three steps done the documented bash way (rsync the code, ssh to run, rsync the report back:
// three connections), in the same run. Connections are counted by a TCP proxy process in front of
// sshd. Times are medians of repeated runs with the code unchanged (the common iteration), taken in
// process for ours, so Node's start-up (reported apart) is not counted against either.
//
//   npm run bench:overhead [-- --rounds 7]      (needs root: it starts sshd)
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { runCleanups } from '../lib/core/cleanup.ts'
import { parseFlags } from '../lib/core/flags.ts'
import { sshEvalCommand } from '../lib/cli/eval.ts'
import { SSH_EVAL_FLAGS } from '../lib/eval/options.ts'
import { silentLogger } from '../lib/core/log.ts'
import { startCountingProxyProcess } from '../test/support/tcp-proxy.ts'
import { median, REPO } from './common.ts'
import { bashWay, oursArgs, startNoopRig } from './noop-run.ts'

const ROUNDS = Number(minimist(process.argv.slice(2), { default: { rounds: 7 } }).rounds)
const rig = await startNoopRig('overhead')
const proxy = await startCountingProxyProcess(rig.sshd.port)

const ours = async () => {
  try {
    await sshEvalCommand(parseFlags(oursArgs(rig, proxy.port), SSH_EVAL_FLAGS), {
      logger: silentLogger,
      signal: new AbortController().signal,
    })
  } finally {
    await runCleanups()
  }
}
const samples = { ours: [] as number[], bash: [] as number[], oursConnections: 0, bashConnections: 0 }
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, fn] of (round % 2
    ? [
        ['ours', ours],
        ['bash', () => bashWay(rig, proxy.port)],
      ]
    : [
        ['bash', () => bashWay(rig, proxy.port)],
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
  await $({ quiet: true })`${path.join(REPO, 'scripts/remote_eval/ssh_eval.ts')} --help`
  return performance.now() - started
})()

console.log(`\noverhead benchmark: no-op eval over loopback sshd, ${ROUNDS} rounds, medians, code unchanged between runs\n`)
console.log(`bash way (rsync, ssh, rsync):   ${median(samples.bash).toFixed(0).padStart(5)} ms   ${samples.bashConnections} connections`)
console.log(`ssh_eval.ts (whole pipeline):   ${median(samples.ours).toFixed(0).padStart(5)} ms   ${samples.oursConnections} connection`)
console.log(
  `ratio ours / bash way:          ${(median(samples.ours) / median(samples.bash)).toFixed(2)}   (goal: at most 1.00, with one connection instead of three)`,
)
console.log(`(start-up of the script, ssh_eval.ts --help, not counted above: ${startup.toFixed(0)} ms)`)
await proxy.close()
await rig.stop()
