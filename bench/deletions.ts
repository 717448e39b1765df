#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// Benchmark (not a test): the push's deletions (lib/transport/tree.sh tree_begin, the list on
// stdin as a push sends it) of FILES files in FILES/1000 directories, against `find -delete` of the
// same tree (files, then the emptied directories), in the same run. With --before FILE, another
// version of tree.sh is timed too, e.g. the one before deletions went in one rm:
//
//   git show 86877cf:lib/transport/tree.sh > /tmp/tree-before.sh
//   npm run bench:deletions [-- --files 100000 --rounds 3 --before /tmp/tree-before.sh]
import { spawnSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import minimist from 'minimist'
import { LAYOUT_VARS } from '../lib/core/layout.ts'
import { BEGIN_SCRIPT } from '../lib/transport/tree.ts'
import { callFunction, loadBashLibrary } from '../lib/transport/script.ts'
import { median } from './common.ts'

const argv = minimist(process.argv.slice(2), { string: ['before'], default: { files: 100_000, rounds: 3 } })
const FILES = Number(argv.files)
const DIRS = Math.max(1, Math.ceil(FILES / 1000))
const work = await mkdtemp(path.join(tmpdir(), 'gre-bench-deletions-'))
const tree = path.join(work, 'tree')
const list = path.join(work, 'removals')

/** Makes the tree (touch with brace expansion: fast) and the removal list a push would send. */
async function makeTree(): Promise<number> {
  const perDir = Math.ceil(FILES / DIRS)
  const made = spawnSync('bash', [
    '-c',
    `mkdir -p "$1/.remote-eval" && cd "$1" && for d in $(seq 0 $(($2 - 1))); do mkdir -p "pkg_$d/sub" && touch "pkg_$d/sub/module_"{0..$(($3 - 1))}.py; done`,
    '-',
    tree,
    String(DIRS),
    String(perDir),
  ])
  if (made.status !== 0) throw new Error(`making the tree failed: ${made.stderr}`)
  const entries: string[] = []
  for (let d = 0; d < DIRS; d++)
    for (let i = 0; i < perDir; i++) entries.push(`pkg_${d}/sub/module_${i}.py\0pkg_${d}/sub/module_${i}.py 5 1700000000 sha\0`)
  const bytes = Buffer.from(entries.join(''))
  await writeFile(list, bytes)
  return bytes.length
}

/** Wall seconds of one command, the removal list on stdin. */
function time(command: string[]): number {
  const stdin = openSync(list, 'r')
  const started = performance.now()
  const result = spawnSync(command[0]!, command.slice(1), { stdio: [stdin, 'ignore', 'inherit'] })
  const seconds = (performance.now() - started) / 1000
  closeSync(stdin)
  if (result.status !== 0) throw new Error(`${command[0]} failed (${result.status})`)
  return seconds
}

const treeBegin = (script: string, bytes: number) => ['bash', '-c', script, 'tree_begin', tree, '', String(bytes)]
const findDelete = [
  'sh',
  '-c',
  'find "$1" -mindepth 1 -type f -not -path "*/.remote-eval/*" -delete && find "$1" -mindepth 1 -type d -empty -not -name .remote-eval -delete',
  '-',
  tree,
]

const cases: Array<[string, (bytes: number) => string[]]> = [
  ['tree_begin (this checkout)', (bytes) => treeBegin(BEGIN_SCRIPT, bytes)],
  ['find -delete (baseline)', () => findDelete],
]
if (argv.before) {
  const before = callFunction(loadBashLibrary(pathToFileURL(path.resolve(argv.before))), 'tree_begin', LAYOUT_VARS)
  cases.push(['tree_begin (--before)', (bytes) => treeBegin(before, bytes)])
}

try {
  const seconds = new Map<string, number[]>(cases.map(([name]) => [name, []]))
  for (let round = 0; round < Number(argv.rounds); round++) {
    for (const [name, command] of cases) {
      const bytes = await makeTree()
      seconds.get(name)!.push(time(command(bytes)))
    }
  }
  const baseline = median(seconds.get('find -delete (baseline)')!)
  console.log(`${FILES} files in ${DIRS} directories, ${argv.rounds} rounds, medians:`)
  for (const [name, values] of seconds)
    console.log(`  ${name.padEnd(28)} ${median(values).toFixed(2)} s, ratio ${(median(values) / baseline).toFixed(1)}`)
} finally {
  await rm(work, { recursive: true, force: true })
}
