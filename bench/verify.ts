#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): checking a 1,000-file models directory against its manifest, by size and
// by sha256 (--verify-checksums), against plain `sha256sum` over the same files, in the same run.
// Goals: the size check under 1 s; the sha256 check at least 90% of sha256sum's throughput.
//
//   npm run bench:verify [-- --files 1000 --rounds 5]
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { modelsManifest, writeManifest, type ModelsManifest } from '../lib/assets/manifest.ts'
import { checkPreparedDir } from '../lib/assets/prepare.ts'
import { isComplete } from '../lib/assets/verify.ts'
import { LocalTransport } from '../lib/transport/local.ts'
import { formatBytes } from '../lib/core/units.ts'
import { median } from './common.ts'

const argv = minimist(process.argv.slice(2), { default: { files: 1000, rounds: 5 } })
const FILES = Number(argv.files)
const ROUNDS = Number(argv.rounds)

// tmpfs when there is one: the page cache is then the same for both tools, and disk noise is out.
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
const dir = await mkdtemp(path.join(base, 'gre-bench-verify-'))
const transport = new LocalTransport()

let seed = 7
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
const files: ModelsManifest['files'] = []
for (let i = 0; i < FILES; i++) {
  const rel = `token_classifier/org__m${i % 10}/shard_${i}.bin`
  await mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
  const size = 16 * 1024 + Math.floor(random() * 496 * 1024)
  const data = Buffer.alloc(size)
  for (let at = 0; at < size; at += 4) data.writeUInt32LE((random() * 2 ** 32) >>> 0, Math.min(at, size - 4))
  await writeFile(path.join(dir, rel), data)
  files.push({ path: rel, size, sha256: '' })
}
const hashed = await $({ cwd: dir, quiet: true })`sha256sum ${files.map((f) => f.path)}`
const sums = new Map(
  hashed.stdout
    .trim()
    .split('\n')
    .map((line) => [line.slice(66), line.slice(0, 64)]),
)
for (const f of files) f.sha256 = sums.get(f.path)!
const totalBytes = files.reduce((sum, f) => sum + f.size, 0)
await writeManifest(
  transport,
  dir,
  modelsManifest({
    dir,
    policyPath: 'bench',
    models: [{ model_name: 'bench/m', revision: 'main', sha: '0'.repeat(40), path: 'token_classifier/bench__m', files }],
  }),
)

const time = async (fn: () => Promise<unknown>) => {
  const started = performance.now()
  await fn()
  return performance.now() - started
}
const sizeMs: number[] = []
const oursMs: number[] = []
const plainMs: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  sizeMs.push(
    await time(async () => {
      const report = await checkPreparedDir({ transport, dir, kind: 'models', checksums: false, needs: {} })
      if (!isComplete(report)) throw new Error('size check failed')
    }),
  )
  const ours = () =>
    time(async () => {
      const report = await checkPreparedDir({ transport, dir, kind: 'models', checksums: true, needs: {} })
      if (!isComplete(report)) throw new Error('checksum check failed')
    })
  const plain = () => time(() => $({ cwd: dir, quiet: true, input: hashed.stdout })`sha256sum --quiet --check`)
  // Alternate the order so neither always runs second.
  if (round % 2) {
    oursMs.push(await ours())
    plainMs.push(await plain())
  } else {
    plainMs.push(await plain())
    oursMs.push(await ours())
  }
}

const throughput = (ms: number) => totalBytes / (ms / 1000)
console.log(`\nverify benchmark: ${FILES} files, ${formatBytes(totalBytes)} in ${dir}, ${ROUNDS} rounds, medians\n`)
console.log(`size check (manifest vs find listing):     ${median(sizeMs).toFixed(0)} ms   (goal: under 1000 ms)`)
console.log(`sha256 check (--verify-checksums):         ${median(oursMs).toFixed(0)} ms   ${formatBytes(throughput(median(oursMs)))}/s`)
console.log(`plain sha256sum --check, same files:       ${median(plainMs).toFixed(0)} ms   ${formatBytes(throughput(median(plainMs)))}/s`)
console.log(`throughput ratio ours / sha256sum:         ${(median(plainMs) / median(oursMs)).toFixed(2)}   (goal: at least 0.90)`)
await rm(dir, { recursive: true, force: true })
