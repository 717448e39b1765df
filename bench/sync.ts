#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): our push against a plain `rsync -az` with the documented bash runner's
// excludes, on a generated 5,000-file git repo, over the real sshd, in the same run. Bytes are
// counted on the wire by a TCP proxy in front of sshd; each case is timed end to end as a user
// runs it (connect, push, disconnect). Prints medians and ratios (ours / plain rsync). The proxy
// runs in its own process, like a network hop, so it adds the same latency to both tools.
//
//   npm run bench:sync [-- --files 5000 --rounds 5]      (needs root: it starts sshd)
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import minimist from 'minimist'
import { $ } from 'zx'
import { runCleanups } from '../lib/core/cleanup.ts'
import { parseFlags } from '../lib/core/flags.ts'
import { silentLogger } from '../lib/core/log.ts'
import { SYNC_FLAGS_ALL, syncCode } from '../lib/cli/sync.ts'
import { formatBytes } from '../lib/core/units.ts'
import { startSshd } from '../test/support/sshd.ts'
import { startCountingProxyProcess } from '../test/support/tcp-proxy.ts'
import { median } from './common.ts'
import { BASH_RUNNER_EXCLUDES } from '../test/support/bash-runner.ts'

const argv = minimist(process.argv.slice(2), { default: { files: 5000, rounds: 5 } })
const FILES = Number(argv.files)
const ROUNDS = Number(argv.rounds)

/** A code-like tree: FILES files of 0.2-6 KB of Python-looking text in nested packages. */
async function generateTree(root: string): Promise<void> {
  let seed = 42
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(root, 'app', `pkg${i % 50}`, `sub${i % 7}`)
    await mkdir(dir, { recursive: true })
    const lines = Array.from(
      { length: 5 + Math.floor(random() * 150) },
      (_, n) => `    value_${n} = compute(${Math.floor(random() * 1e6)}, "${i}-${n}")`,
    )
    await writeFile(path.join(dir, `module_${i}.py`), `def f${i}():\n${lines.join('\n')}\n`)
  }
  await writeFile(path.join(root, '.env.eval'), 'HF_TOKEN=hf_never_sent\n')
  await $({ cwd: root, quiet: true })`git init -q && git add -A && git -c user.email=b@e -c user.name=b commit -qm tree`
}

const work = await mkdtemp(path.join(tmpdir(), 'gre-bench-'))
const { info: sshd, stop } = await startSshd()
const proxy = await startCountingProxyProcess(sshd.port)
const project = path.join(work, 'project')
await generateTree(project)
// The target writes into tmpfs when there is one: disk latency on these machines swings by 2x from
// one push to the next and would drown what the tools themselves cost.
const remoteRoot = existsSync('/dev/shm') ? `/dev/shm/gre-bench-${process.pid}` : path.join(sshd.home, 'bench')
await $`rm -rf ${remoteRoot} && mkdir -p ${remoteRoot} && chown ${sshd.user}: ${remoteRoot}`.quiet()

type Case = 'first push' | 'nothing changed' | 'one file changed'
const CASES: Case[] = ['first push', 'nothing changed', 'one file changed']
const samples: Record<string, { bytes: number[]; ms: number[] }> = {}
const record = (tool: string, name: Case, bytes: number, ms: number) => {
  const key = `${tool}|${name}`
  samples[key] ??= { bytes: [], ms: [] }
  samples[key].bytes.push(bytes)
  samples[key].ms.push(ms)
}

const plainRsync = async (dir: string) => {
  const excludes = BASH_RUNNER_EXCLUDES.map((e) => `--exclude=${e}`)
  const ssh = `ssh -F ${sshd.configFile} -o Port=${proxy.port}`
  await $({ cwd: project, quiet: true })`rsync -az ${excludes} -e ${ssh} ./ ${sshd.alias}:${dir}/`
}
/** What `sync_code.ts` does, minus Node's start-up: flags in, connect and select at once, push, close. */
const ours = async (dir: string) => {
  const argv = [
    '--host',
    sshd.alias,
    '--ssh-config',
    sshd.configFile,
    '--ssh-option',
    `Port=${proxy.port}`,
    '--remote-dir',
    dir,
    '--project-dir',
    project,
  ]
  try {
    await syncCode(parseFlags(argv, SYNC_FLAGS_ALL), { logger: silentLogger }, argv)
  } finally {
    await runCleanups()
  }
}
const measure = async (tool: string, name: Case, push: () => Promise<void>) => {
  await proxy.reset()
  const started = performance.now()
  await push()
  const elapsed = performance.now() - started
  record(tool, name, (await proxy.counts()).bytesUp, elapsed)
}

const changedFile = path.join(project, 'app/pkg3/sub3/module_3.py')
for (let round = 0; round < ROUNDS; round++) {
  const plainDir = path.join(remoteRoot, `plain-${round}`)
  const oursDir = path.join(remoteRoot, `ours-${round}`)
  // Alternate who goes first, so neither always meets a warmer page cache.
  const order: Array<[string, (d: string) => Promise<void>, string]> =
    round % 2
      ? [
          ['ours', ours, oursDir],
          ['plain rsync', plainRsync, plainDir],
        ]
      : [
          ['plain rsync', plainRsync, plainDir],
          ['ours', ours, oursDir],
        ]
  for (const [tool, push, dir] of order) await measure(tool, 'first push', () => push(dir))
  for (const [tool, push, dir] of order) await measure(tool, 'nothing changed', () => push(dir))
  await appendFile(changedFile, `# round ${round}\n`)
  for (const [tool, push, dir] of order) await measure(tool, 'one file changed', () => push(dir))
  process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`)
}

console.log(`\nsync benchmark: ${FILES} files, ${ROUNDS} rounds, medians; bytes are client->server on the wire; target dir ${remoteRoot}\n`)
console.log(
  [
    'case'.padEnd(18),
    'plain bytes'.padStart(12),
    'ours bytes'.padStart(12),
    'ratio'.padStart(7),
    'plain ms'.padStart(9),
    'ours ms'.padStart(9),
    'ratio'.padStart(7),
  ].join(' '),
)
for (const name of CASES) {
  const plain = samples[`plain rsync|${name}`]!
  const our = samples[`ours|${name}`]!
  const [pb, ob, pm, om] = [median(plain.bytes), median(our.bytes), median(plain.ms), median(our.ms)]
  console.log(
    [
      name.padEnd(18),
      formatBytes(pb).padStart(12),
      formatBytes(ob).padStart(12),
      (ob / pb).toFixed(2).padStart(7),
      pm.toFixed(0).padStart(9),
      om.toFixed(0).padStart(9),
      (om / pm).toFixed(2).padStart(7),
    ].join(' '),
  )
}
console.log('\ngoals: first push bytes ratio ~1.00; nothing changed < 8 KiB; every time ratio <= 1.10')

await proxy.close()
await stop()
await rm(remoteRoot, { recursive: true, force: true })
await rm(work, { recursive: true, force: true })
