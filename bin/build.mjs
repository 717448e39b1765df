// npm run build, and npm ci through "prepare": bundles each script of scripts/ with everything it
// imports (lib/ and the npm packages) into one plain ES module, so that a script starts without
// compiling TypeScript or resolving dozens of files. bin/launch.mjs runs a bundle only while every
// input of it is as the build read it.
//
//   node bin/build.mjs [--warn-on-failure]
//
// --warn-on-failure (what "prepare" passes): a failed build prints a warning and exits 0, so npm ci
// still succeeds; the scripts then start through tsx, as they did before bundles.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUILD_DIR, bundleName, inputsFileOf, stamp } from './bundles.mjs'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const LAUNCHED = /^#!.*\/bin\/launch\.mjs/
// Bundled CommonJS packages call require(); an ES module has none of its own.
const REQUIRE = "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);"

/**
 * The scripts that start through the launcher, by path under scripts/. Their shebang says so, not
 * their folder: in an eval repo scripts/ holds the repo's own files too.
 * @param {string} root
 */
export function launchedScripts(root) {
  return ['', 'remote_eval/']
    .flatMap((dir) => readdirSync(path.join(root, 'scripts', dir)).map((file) => `${dir}${file}`))
    .filter((file) => file.endsWith('.ts') && LAUNCHED.test(readFileSync(path.join(root, 'scripts', file), 'utf8')))
    .sort()
}

/**
 * A module of lib/ names a file beside it as `new URL('<name>', import.meta.url)`, but in a bundle
 * import.meta.url is the bundle's: the same file, named from where the bundles are.
 * @param {{ file: string, text: string, outDir: string }} source
 */
export function moveFileUrls({ file, text, outDir }) {
  const moved = text.replace(/new URL\((['"])([^'"]+)\1, import\.meta\.url\)/g, (_, _quote, relative) => {
    const target = path.resolve(path.dirname(file), relative)
    const fromBundle = (path.relative(outDir, target).split(path.sep).join('/') || '.') + (relative.endsWith('/') ? '/' : '')
    return `new URL(${JSON.stringify(fromBundle)}, import.meta.url)`
  })
  // Any other use would quietly point into the build directory. A require made from the bundle's
  // URL still finds the packages: node_modules is above the build directory too.
  const left = moved.replace(/new URL\("[^"]*", import\.meta\.url\)|createRequire\(import\.meta\.url\)/g, '').match(/import\.meta\.\w+/)
  if (left) throw new Error(`${file}: ${left[0]} in a form the build cannot move; write new URL('<relative path>', import.meta.url)`)
  return moved
}

/**
 * Loads our TypeScript, each file stamped before it is read: an edit while the build runs makes the
 * bundle stale, never a stale bundle look fresh.
 * @param {{ root: string, outDir: string, stamps: Map<string, string> }} options
 * @returns {import('esbuild').Plugin}
 */
function readSources({ root, outDir, stamps }) {
  return {
    name: 'read-sources',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, ({ path: file }) => {
        const relative = path.relative(root, file)
        if (relative.startsWith('..') || relative.split(path.sep).includes('node_modules')) return undefined
        stamps.set(file, stamp(statSync(file)))
        const text = readFileSync(file, 'utf8')
        return { contents: relative.startsWith(`lib${path.sep}`) ? moveFileUrls({ file, text, outDir }) : text, loader: 'ts' }
      })
    },
  }
}

/**
 * What shapes a bundle besides its sources: this build, and the sources' tsconfig.json.
 * @param {string} root
 */
const buildInputs = (root) =>
  [fileURLToPath(import.meta.url), fileURLToPath(new URL('bundles.mjs', import.meta.url)), path.join(root, 'tsconfig.json')].filter(
    existsSync,
  )

/**
 * Writes a file whole or not at all: a reader never sees half of it.
 * @param {string} file
 * @param {string} contents
 */
function writeAtomically(file, contents) {
  writeFileSync(`${file}.tmp`, contents)
  renameSync(`${file}.tmp`, file)
}

/**
 * Bundles every launched script into outDir, each with its inputs file beside it.
 * @param {{ root?: string, outDir?: string }} [options]
 * @returns {Promise<string[]>} the bundles written
 */
export async function build({ root = ROOT, outDir = path.join(root, BUILD_DIR) } = {}) {
  const esbuild = await import('esbuild')
  const stamps = new Map()
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(launchedScripts(root).map((s) => [bundleName(s).replace(/\.mjs$/, ''), path.join(root, 'scripts', s)])),
    outdir: outDir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    banner: { js: REQUIRE },
    metafile: true,
    write: false,
    logLevel: 'silent',
    plugins: [readSources({ root, outDir, stamps })],
  })
  mkdirSync(outDir, { recursive: true })
  const written = []
  for (const output of result.outputFiles) {
    const inputsFile = inputsFileOf(output.path)
    // The old inputs go first: until the new ones are written the bundle counts as stale.
    rmSync(inputsFile, { force: true })
    // The script's shebang starts the launcher; a bundle is only ever imported.
    writeAtomically(output.path, output.text.replace(/^#!.*\n/, ''))
    const sources = Object.keys(result.metafile.outputs[path.relative(root, output.path)]?.inputs ?? {})
    const files = [...sources.map((f) => path.resolve(root, f)), output.path, ...buildInputs(root)]
    const inputs = Object.fromEntries(files.map((f) => [path.relative(root, f), stamps.get(f) ?? stamp(statSync(f))]))
    writeAtomically(inputsFile, `${JSON.stringify({ inputs }, null, 1)}\n`)
    written.push(output.path)
  }
  return written
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const written = await build()
    console.error(`built ${written.length} bundles in ${BUILD_DIR}/`)
  } catch (error) {
    const lenient = process.argv.includes('--warn-on-failure')
    console.error(`${lenient ? 'warning: ' : ''}the scripts' bundles were not built: ${error instanceof Error ? error.message : error}`)
    if (lenient) console.error('warning: until a build succeeds the scripts start through tsx (slower). Fix the cause, then npm run build.')
    process.exitCode = lenient ? 0 : 1
  }
}
