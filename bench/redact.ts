#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): the run's redactor (lib/eval/runs.sh run_redact) on an eval output of
// one long line without a newline, against `cat` of the same bytes, in the same run. Goal: linear
// in the output (a 50 MB line once took 153 s); the ratio is what to compare, times are noisy.
//
//   npm run bench:redact [-- --mb 50 --rounds 3 --awk-mb 2]
import { spawnSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import minimist from 'minimist'
import { LAYOUT_VARS } from '../lib/core/layout.ts'
import { RUNS_LIBRARY } from '../lib/eval/runs.ts'
import { callFunction } from '../lib/transport/script.ts'
import { median } from './common.ts'

const argv = minimist(process.argv.slice(2), { default: { mb: 50, rounds: 3, 'awk-mb': 2 } })
const dir = await mkdtemp(path.join(tmpdir(), 'gre-bench-redact-'))
const envFile = path.join(dir, '.env.eval')
await writeFile(envFile, 'HF_TOKEN=hf_bench_token_0123456789\nOTHER_API_KEY=another-secret-value\n')
const script = callFunction(RUNS_LIBRARY, 'run_redact', LAYOUT_VARS)

async function input(mb: number): Promise<string> {
  const file = path.join(dir, `in-${mb}`)
  await writeFile(file, Buffer.alloc(mb * 1024 * 1024, 'a'))
  return file
}

/** Wall seconds of one command with the file on stdin and its output to a file. */
function time(command: string[], file: string, env: NodeJS.ProcessEnv = process.env): number {
  const stdin = openSync(file, 'r')
  const started = performance.now()
  const result = spawnSync(command[0]!, command.slice(1), { stdio: [stdin, 'ignore', 'inherit'], env })
  const seconds = (performance.now() - started) / 1000
  closeSync(stdin)
  if (result.status !== 0) throw new Error(`${command[0]} failed (${result.status})`)
  return seconds
}

const redactor = (out: string) => ['bash', '-c', script, 'run_redact', out, envFile]

async function compare(label: string, mb: number, env: NodeJS.ProcessEnv) {
  const file = await input(mb)
  const ours: number[] = []
  const cat: number[] = []
  for (let round = 0; round < Number(argv.rounds); round++) {
    ours.push(time(redactor(path.join(dir, `out-${round}`)), file, env))
    cat.push(time(['sh', '-c', `cat > ${path.join(dir, `cat-${round}`)}`], file))
  }
  const [a, b] = [median(ours), median(cat)]
  console.log(
    `${label.padEnd(26)} ${String(mb).padStart(4)} MB, one line: redactor ${a.toFixed(3)} s, cat ${b.toFixed(3)} s, difference ${(a - b).toFixed(3)} s, ratio ${(a / b).toFixed(1)}`,
  )
}

try {
  await compare('perl (the default)', Number(argv.mb), process.env)
  await compare('awk (without perl)', Number(argv['awk-mb']), { ...process.env, REMOTE_EVAL_REDACTOR: 'awk' })
} finally {
  await rm(dir, { recursive: true, force: true })
}
