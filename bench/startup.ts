#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): how long a script takes to start, as a whole process, against `node -e 0`
// in the same run: `--help` of ssh_eval.ts, sync_code.ts and download_models.ts from their bundles
// (bin/launch.mjs, built first) and through tsx (REMOTE_EVAL_NO_BUNDLE=1, as before bundles).
// Rounds take the commands in a rotating order so that a drift of the machine's speed spreads over
// all of them. Goal: a bundled --help within 2.5 times `node -e 0`.
//
//   npm run bench:startup [-- --rounds 20]
import { spawnSync } from 'node:child_process'
import path from 'node:path'
import minimist from 'minimist'
import { build } from '../bin/build.mjs'
import { freshBundle } from '../bin/bundles.mjs'
import { median, REPO } from './common.ts'

const ROUNDS = Number(minimist(process.argv.slice(2), { default: { rounds: 20 } }).rounds)
const SCRIPTS = ['remote_eval/ssh_eval.ts', 'remote_eval/sync_code.ts', 'download_models.ts']
const GOAL = 2.5

await build()
const stale = SCRIPTS.filter((script) => !freshBundle(REPO, script))
if (stale.length) throw new Error(`no fresh bundle for ${stale.join(', ')} right after the build`)

// Either would send every script through tsx (bin/launch.mjs).
const env = { ...process.env }
delete env.NODE_V8_COVERAGE
delete env.REMOTE_EVAL_NO_BUNDLE
interface Case {
  name: string
  command: string[]
  env: NodeJS.ProcessEnv
}
const cases: Case[] = [
  { name: 'node -e 0', command: [process.execPath, '-e', '0'], env },
  ...SCRIPTS.flatMap((script) => [
    { name: `${script} bundled`, command: [path.join(REPO, 'scripts', script), '--help'], env },
    { name: `${script} tsx`, command: [path.join(REPO, 'scripts', script), '--help'], env: { ...env, REMOTE_EVAL_NO_BUNDLE: '1' } },
  ]),
]

/** Wall milliseconds of one whole process, from spawn to exit. */
function time({ name, command, env }: Case): number {
  const started = performance.now()
  const result = spawnSync(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env, cwd: REPO })
  const ms = performance.now() - started
  if (result.status !== 0) throw new Error(`${name} failed (${result.status}): ${result.stderr}`)
  return ms
}

const samples = new Map(cases.map((c) => [c.name, [] as number[]]))
for (let round = 0; round <= ROUNDS; round++) {
  for (let i = 0; i < cases.length; i++) {
    const c = cases[(i + round) % cases.length]!
    const ms = time(c)
    if (round > 0) samples.get(c.name)!.push(ms) // round 0 warms the disk cache and tsx's cache
  }
}

const ms = (name: string) => median(samples.get(name)!)
const base = ms('node -e 0')
const cell = (name: string) => `${ms(name).toFixed(0).padStart(5)} ms ${(ms(name) / base).toFixed(2).padStart(5)}`
console.log(`\nstart-up benchmark: --help as whole processes, ${ROUNDS} rounds, medians; ratio against node -e 0\n`)
console.log(`${'script'.padEnd(28)}${'bundled'.padStart(16)}${'tsx'.padStart(16)}`)
console.log(`${'node -e 0'.padEnd(28)}${`${base.toFixed(0).padStart(5)} ms  1.00`.padStart(16)}`)
for (const script of SCRIPTS)
  console.log(`${script.padEnd(28)}${cell(`${script} bundled`).padStart(16)}${cell(`${script} tsx`).padStart(16)}`)
const worst = Math.max(...SCRIPTS.map((s) => ms(`${s} bundled`) / base))
console.log(`\nslowest bundled start: ${worst.toFixed(2)} times node -e 0 (goal: at most ${GOAL})`)
