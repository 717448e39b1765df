// What the shebang of every script of scripts/ runs: `node bin/launch.mjs SCRIPT ARGS...`. It
// imports the script's bundle (bin/build.mjs) when that was built from the sources as they are now:
// nothing to compile, a start close to plain node's. Otherwise (no bundle, a stale one, a failed
// build), with REMOTE_EVAL_NO_BUNDLE=1, or under coverage (NODE_V8_COVERAGE: c8 must see lib/, not
// a bundle), it runs the TypeScript itself through tsx, as before bundles: a stale bundle never runs.
import { realpathSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { freshBundle } from './bundles.mjs'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
// The script gets the argv node would give it run directly: [node, script as typed, ...args].
process.argv.splice(1, 1)
const script = process.argv[1] ?? ''

/** The script's fresh bundle, or null to run its TypeScript. */
function bundleToRun() {
  if (process.env.REMOTE_EVAL_NO_BUNDLE || process.env.NODE_V8_COVERAGE) return null
  const underScripts = path.relative(path.join(ROOT, 'scripts'), realpathSync(script))
  return underScripts.startsWith('..') ? null : freshBundle(ROOT, underScripts.split(path.sep).join('/'))
}

try {
  const bundle = bundleToRun()
  if (bundle) await import(pathToFileURL(bundle).href)
  else {
    const { register } = await import('tsx/esm/api')
    register()
    await import(pathToFileURL(path.resolve(script)).href)
  }
} catch (error) {
  // Without node_modules nothing of ours has run yet: say what to do rather than print node's stack.
  const missing = /^Cannot find package '([^']+)'/.exec(error instanceof Error ? error.message : '')
  if (!missing) throw error
  process.stderr.write(`[error] ${script} cannot start: the npm package ${missing[1]} is not installed in ${ROOT}.\n`)
  process.stderr.write(`[error] Fix: run npm ci in ${ROOT}\n`)
  process.exitCode = 3 // a local prerequisite is missing (EXIT_CODES of lib/core/errors.ts)
}
