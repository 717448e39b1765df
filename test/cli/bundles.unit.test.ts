import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, launchedScripts, moveFileUrls } from '../../bin/build.mjs'
import { BUILD_DIR, bundleName, freshBundle, inputsFileOf } from '../../bin/bundles.mjs'
import { isExcluded } from '../../lib/core/excludes.ts'

// The scripts' bundles (bin/build.mjs) and what bin/launch.mjs asks of them: built into a temp
// directory, so the checkout's own bundles are left alone.

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const LAUNCHER = '#!/usr/bin/env -S sh -c \'exec node "$(dirname "$(readlink -f "$0")")/../bin/launch.mjs" "$0" "$@"\'\n'

/** Each `new URL("...", import.meta.url)` of a bundle, resolved from where the bundle is. */
const fileUrlsOf = (bundle: string, text: string) =>
  [...text.matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)].map((m) => fileURLToPath(new URL(m[1]!, pathToFileURL(bundle))))

describe("the scripts' bundles", () => {
  let dir: string
  let bundles: string[]
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gre-bundles-'))
    // Packages resolve from the bundles as they do from the checkout's build directory.
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'))
    bundles = await build({ outDir: path.join(dir, 'build') })
  })
  after(() => rm(dir, { recursive: true, force: true }))

  test('every script of scripts/ starts through the launcher and gets a bundle', () => {
    const all = ['', 'remote_eval/'].flatMap((d) =>
      readdirSync(path.join(ROOT, 'scripts', d))
        .filter((f) => f.endsWith('.ts'))
        .map((f) => `${d}${f}`),
    )
    assert.deepEqual(launchedScripts(ROOT), all.sort())
    assert.deepEqual(bundles.map((b) => path.basename(b)).sort(), all.map(bundleName).sort())
  })

  test("every file a bundle reads beside lib/'s modules is found from the bundle", async () => {
    for (const bundle of bundles) {
      const text = await readFile(bundle, 'utf8')
      const files = fileUrlsOf(bundle, text)
      assert.ok(files.length > 0, `${bundle}: no file URL at all (the version is read from package.json)`)
      for (const file of files) assert.ok(existsSync(file), `${path.basename(bundle)} reads ${file}, which is not there`)
      assert.doesNotMatch(text.split('\n')[0]!, /^#!/, 'no shebang: a bundle is only imported')
    }
  })

  test('each bundle runs: --help, and --version read from package.json', () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
    for (const bundle of bundles) {
      const help = spawnSync(process.execPath, [bundle, '--help'], { encoding: 'utf8' })
      assert.equal(help.status, 0, help.stderr)
      assert.match(help.stdout, /^Usage:\s+scripts\//)
    }
    const shown = spawnSync(process.execPath, [bundles.find((b) => b.endsWith('ssh_eval.mjs'))!, '--version'], { encoding: 'utf8' })
    assert.equal(shown.stdout, `guardrails-remote-eval ${version}\n`, shown.stderr)
  })

  test("no bundle holds zx's main entry: its vendored fetch, glob and YAML cost ~0.1 s of every start", async () => {
    for (const bundle of bundles) assert.doesNotMatch(await readFile(bundle, 'utf8'), /zx\/build\/(index|vendor-extra)\.c?js/, bundle)
  })

  test("the bundles live in the tool's own directory, which a sync never ships", () => {
    assert.ok(isExcluded(`${BUILD_DIR}/${bundleName('remote_eval/ssh_eval.ts')}`))
  })
})

describe('a bundle is fresh only while its inputs are as the build read them', () => {
  let root: string
  const script = 'remote_eval/tool.ts'
  const module = () => path.join(root, 'lib/core/thing.ts')
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'gre-bundle-fresh-'))
    await mkdir(path.join(root, 'scripts/remote_eval'), { recursive: true })
    await mkdir(path.join(root, 'lib/core'), { recursive: true })
    await writeFile(path.join(root, 'scripts', script), `${LAUNCHER}import { thing } from '../../lib/core/thing.ts'\nconsole.log(thing)\n`)
    await writeFile(path.join(root, 'scripts/theirs.ts'), 'console.log("the eval repo\'s own script")\n')
    await writeFile(
      module(),
      "import { readFileSync } from 'node:fs'\nexport const thing = readFileSync(new URL('./thing.txt', import.meta.url), 'utf8')\n",
    )
    await writeFile(path.join(root, 'lib/core/thing.txt'), 'read beside the module\n')
  })
  after(() => rm(root, { recursive: true, force: true }))

  const fresh = () => freshBundle(root, script)

  test('only scripts with the launcher shebang are built; a built one runs and is fresh', async () => {
    assert.deepEqual(launchedScripts(root), [script])
    const [bundle] = await build({ root })
    assert.equal(bundle, path.join(root, BUILD_DIR, 'remote_eval.tool.mjs'))
    assert.equal(fresh(), bundle)
    assert.equal(spawnSync(process.execPath, [bundle!], { encoding: 'utf8' }).stdout, 'read beside the module\n\n')
  })

  test('an edited source, an edited bundle or a lost inputs file: stale', async () => {
    const [bundle] = await build({ root })
    await writeFile(module(), `${await readFile(module(), 'utf8')}// edited\n`)
    assert.equal(fresh(), null, 'a source edited after the build')
    await build({ root })
    assert.equal(fresh(), bundle)
    await writeFile(bundle!, `${await readFile(bundle!, 'utf8')}\n`)
    assert.equal(fresh(), null, 'the bundle edited by hand')
    await build({ root })
    await rm(inputsFileOf(bundle!))
    assert.equal(fresh(), null, 'no inputs file: a build that did not finish')
  })

  test('import.meta in a form the build cannot move fails the build', () => {
    const file = path.join(root, 'lib/core/odd.ts')
    assert.throws(
      () => moveFileUrls({ file, text: 'const here = import.meta.dirname\n', outDir: path.join(root, BUILD_DIR) }),
      /import\.meta\.dirname in a form the build cannot move/,
    )
    assert.equal(
      moveFileUrls({ file, text: "new URL('../..', import.meta.url)", outDir: path.join(root, BUILD_DIR) }),
      'new URL("../..", import.meta.url)',
    )
  })
})

test('a script run before npm ci says to run it, not a stack (exit 3)', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'gre-no-modules-'))
  try {
    await mkdir(path.join(root, 'bin'))
    for (const file of ['launch.mjs', 'bundles.mjs'])
      await writeFile(path.join(root, 'bin', file), await readFile(path.join(ROOT, 'bin', file)))
    await mkdir(path.join(root, 'scripts/remote_eval'), { recursive: true })
    const script = path.join(root, 'scripts/remote_eval/ssh_eval.ts')
    await writeFile(script, await readFile(path.join(ROOT, 'scripts/remote_eval/ssh_eval.ts')))
    const started = spawnSync(process.execPath, [path.join(root, 'bin/launch.mjs'), script, '--help'], { encoding: 'utf8' })
    assert.equal(started.status, 3, started.stderr)
    assert.match(started.stderr, /cannot start: the npm package \S+ is not installed in /)
    assert.match(started.stderr, new RegExp(`Fix: run npm ci in ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`))
    assert.doesNotMatch(started.stderr, /ERR_MODULE_NOT_FOUND|\n\s+at /)
  } finally {
    await rm(root, { recursive: true, force: true })
  }
})
