// Part of `npm run lint`: every module of lib/ imports only from its own folder or a layer below.
// A new folder of lib/ must be given a layer here; anything outside lib/ (scripts, bench, tests)
// may import any of it. Prints each import that points up or sideways, and exits 1 if there is one.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The layers of lib/, bottom first; folders on one layer may not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ['core'], // exit codes and typed errors, cleanup, logging, processes, flags, small helpers
  ['transport'], // how bytes and scripts reach a target: ssh, kubectl, local; each kind's flags
  ['target'], // what the target offers a run: its Python (uv or a venv), its .env.eval, its locks
  ['sync', 'assets'], // code sync; models and datasets
  ['eval'], // the eval pipeline
  ['cli'], // the scripts' commands: flags in, one call out
]

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LIB = path.join(ROOT, 'lib')
const layerOf = (folder: string) => LAYERS.findIndex((layer) => layer.includes(folder))
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

/** Each import of lib/ that breaks the layering, as "file: import -> target (why)". */
export function layerViolations(lib = LIB): string[] {
  const problems: string[] = []
  for (const entry of readdirSync(lib, { withFileTypes: true })) {
    if (!entry.isDirectory()) {
      if (/\.(ts|sh|py)$/.test(entry.name)) problems.push(`lib/${entry.name}: a module outside every layer; move it into a folder of lib/`)
      continue
    }
    if (layerOf(entry.name) < 0) problems.push(`lib/${entry.name}/: a folder without a layer; give it one in dev/check-layers.ts`)
  }
  for (const file of readdirSync(lib, { recursive: true, encoding: 'utf8' })) {
    if (!file.endsWith('.ts')) continue
    const from = file.split(path.sep)[0]!
    const text = readFileSync(path.join(lib, file), 'utf8')
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? match[2]!
      const target = path.relative(lib, path.resolve(path.dirname(path.join(lib, file)), spec))
      const to = target.split(path.sep)[0]!
      if (target.startsWith('..')) continue
      if (to === from) continue
      const [a, b] = [layerOf(from), layerOf(to)]
      if (b < a) continue
      const why = b === a ? `${from} and ${to} are on one layer` : `${to} is a layer above ${from}`
      problems.push(`lib/${file}: imports lib/${target} (${why})`)
    }
  }
  return problems
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const problems = layerViolations()
  for (const problem of problems) console.error(problem)
  if (problems.length) {
    console.error(
      `${problems.length} import(s) break the layers (${LAYERS.map((l) => l.join('+')).join(' < ')}): move the code down, or pass what it needs in.`,
    )
    process.exitCode = 1
  }
}
