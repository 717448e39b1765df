// What bin/build.mjs writes and bin/launch.mjs reads: where a script's bundle lives and whether it
// still matches the sources it was made from. Plain JavaScript: it runs before any TypeScript can.
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'

/**
 * Where the bundles go, from the tool's root. Not dist/: in an eval repo (a Python project) that is
 * where its wheels are built, published and cleaned. .remote-eval/ is this tool's own directory,
 * which a sync never ships (lib/core/layout.ts).
 */
export const BUILD_DIR = '.remote-eval/build'

/**
 * The bundle of a script, by its path under scripts/: all at one depth (scripts/remote_eval/ssh_eval.ts
 * -> remote_eval.ssh_eval.mjs), so one rewrite of lib/'s relative file URLs serves every bundle.
 * @param {string} script
 */
export const bundleName = (script) => `${script.replace(/\.ts$/, '').split('/').join('.')}.mjs`

/**
 * Beside each bundle: the inputs it was made from, as they were when read.
 * @param {string} bundle
 */
export const inputsFileOf = (bundle) => bundle.replace(/\.mjs$/, '.inputs.json')

/**
 * What says a file changed: size, mtime and ctime (which no tool can set back, unlike mtime).
 * @param {import('node:fs').Stats} stats
 */
export const stamp = (stats) => `${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`

/**
 * The bundle of a script if it was built from its inputs as they are now, else null (none built,
 * a failed or interrupted build, a source edited since). A stat per input: a few milliseconds.
 * @param {string} root the tool's root
 * @param {string} script path under scripts/
 * @param {string} [buildDir] absolute; default the root's
 */
export function freshBundle(root, script, buildDir = path.join(root, BUILD_DIR)) {
  const bundle = path.join(buildDir, bundleName(script))
  let inputs
  try {
    inputs = JSON.parse(readFileSync(inputsFileOf(bundle), 'utf8')).inputs
  } catch {
    return null
  }
  for (const [file, was] of Object.entries(inputs)) {
    const stats = statSync(path.resolve(root, file), { throwIfNoEntry: false })
    if (!stats || stamp(stats) !== was) return null
  }
  return bundle
}
