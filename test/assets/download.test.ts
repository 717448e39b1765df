import assert from 'node:assert/strict'
import { appendFile, cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { datasetsCacheEnv } from '../../lib/assets/prepare.ts'
import { startProcess } from '../../lib/core/process.ts'
import { DATASETS, GATED_MODEL_REPO, MODEL_REPO, SECOND_MODEL_REPO, WEIGHTS_BYTES } from '../support/hub-fixtures.ts'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { SCRIPTS, harness, makeEvalProject, runMake, runScript, startOnPty, startScript, lastLines } from '../support/harness.ts'

// make download-models / download-datasets / check-* against the Hub double, with Hugging Face's
// real Python clients, then the prepared directories used offline by a separate Python process.

const TOKEN = 'hf_test_token_4f2a9c'
const DATASET_IDS = Object.keys(DATASETS)

/**
 * Opens the models as the eval repo does (GR_MODEL_DIR/token_classifier/<org>__<name>, for each name
 * of the manifest's token_classifier_models) and loads every split as its eval CLI does, offline:
 * load_dataset(hf_id, split=..., cache_dir=$HF_HOME).
 */
const OFFLINE_USE = String.raw`
import json, os, sys, datasets
datasets.disable_progress_bars()
models_dir = os.environ["GR_MODEL_DIR"]
manifest = json.load(open(os.path.join(models_dir, "manifest.json")))
out = {"models": {}, "rows": {}}
for name in manifest["token_classifier_models"]:
    folder = os.path.join(models_dir, "token_classifier", name.replace("/", "__"))
    config = json.load(open(os.path.join(folder, "config.json")))
    out["models"][name] = {"labels": len(config["id2label"]), "weights": os.path.getsize(os.path.join(folder, "model.safetensors"))}
for hf_id in sys.argv[1:]:
    for split in ("fast", "full"):
        out["rows"][hf_id + ":" + split] = datasets.load_dataset(hf_id, split=split, cache_dir=os.environ["HF_HOME"]).num_rows
print(json.dumps(out))
`

async function useOffline(modelsDir: string, datasetsDir: string) {
  const env = {
    ...process.env,
    ...datasetsCacheEnv(datasetsDir),
    GR_MODEL_DIR: modelsDir,
    HF_HUB_OFFLINE: '1',
    HF_DATASETS_OFFLINE: '1',
    HF_ENDPOINT: 'http://127.0.0.1:9',
    HF_UPDATE_DOWNLOAD_COUNTS: '0',
  }
  const out = await $({ env, quiet: true, cwd: tmpdir() })`${harness().venv}/bin/python -c ${OFFLINE_USE} ${DATASET_IDS}`
  return JSON.parse(out.stdout.trim().split('\n').at(-1)!) as {
    models: Record<string, { labels: number; weights: number }>
    rows: Record<string, number>
  }
}

/** make turns any failure into its own exit 2 and names the recipe's code ("Error 10"). */
function assertMakeFailed(result: { code: number | null; stderr: string }, scriptCode: number) {
  assert.equal(result.code, 2, result.stderr)
  assert.match(result.stderr, new RegExp(`\\] Error ${scriptCode}$`, 'm'))
}

const expectedRows = Object.fromEntries(
  Object.entries(DATASETS).flatMap(([id, splits]) => Object.entries(splits).map(([split, rows]) => [`${id}:${split}`, rows])),
)

describe('model and dataset directories', () => {
  let hub: HubServer
  let project: string
  let scratch: string
  let env: NodeJS.ProcessEnv
  const dirs = () => ({ MODELS_DIR: path.join(scratch, 'models'), DATASETS_DIR: path.join(scratch, 'datasets'), PROJECT_DIR: project })

  before(async () => {
    hub = await startHub({
      root: harness().hubRepos,
      tokens: [TOKEN],
      access: { [GATED_MODEL_REPO]: { gated: 'manual', allowed: [TOKEN] } },
    })
    project = await makeEvalProject()
    scratch = await mkdtemp(path.join(tmpdir(), 'gre-assets-'))
    // uv is found on PATH: the uv double, on the prebuilt test venv.
    env = {
      ...process.env,
      HF_ENDPOINT: hub.endpoint,
      PATH: `${harness().fixturesBin}:${process.env.PATH}`,
      UV_DOUBLE_VENV: harness().venv,
      UV_DOUBLE_LOG: path.join(scratch, 'uv.log'),
    }
  })
  after(() => hub.stop())

  test('make download-models and download-datasets prepare directories that load offline', async () => {
    const models = await runMake('download-models', { MODELS_DIR: dirs().MODELS_DIR, PROJECT_DIR: project }, env)
    assert.equal(models.code, 0, models.stderr)
    assert.match(models.stderr, /org\/tiny-ner@main\s+fetched\s+3\.0 MiB/)
    assert.match(models.stderr, /\[models\] verified: models in .* complete \(5 files, 3\.0 MiB, sizes checked\)/)
    const datasets = await runMake('download-datasets', { DATASETS_DIR: dirs().DATASETS_DIR, PROJECT_DIR: project }, env)
    assert.equal(datasets.code, 0, datasets.stderr)
    assert.match(await readFile(path.join(scratch, 'uv.log'), 'utf8'), /^run \S+ python$/m, 'went through uv run')

    const used = await useOffline(dirs().MODELS_DIR, dirs().DATASETS_DIR)
    assert.deepEqual(used.models, { [MODEL_REPO]: { labels: 5, weights: WEIGHTS_BYTES } })
    assert.deepEqual(used.rows, expectedRows)

    // The Python tools' keys in their shapes, and ours beside them.
    const manifest = JSON.parse(await readFile(path.join(dirs().MODELS_DIR, 'manifest.json'), 'utf8'))
    assert.equal(manifest.schema_version, 2)
    for (const key of ['generated_at_utc', 'policy_path', 'token_classifier_models', 'checksums', 'revisions', 'files'])
      assert.ok(key in manifest, key)
    const modelDir = path.join(dirs().MODELS_DIR, 'token_classifier', MODEL_REPO.replace('/', '__'))
    assert.deepEqual(manifest.token_classifier_models, { [MODEL_REPO]: modelDir })
    assert.equal(manifest.checksums.token_classifier_models[MODEL_REPO].path, modelDir)
    assert.match(manifest.checksums.token_classifier_models[MODEL_REPO].sha256_tree, /^[0-9a-f]{64}$/)
    assert.match(manifest.revisions[0].sha, /^[0-9a-f]{40}$/)
    assert.ok(
      manifest.files.every((f: { path: string }) => !f.path.startsWith('/')),
      'paths are relative',
    )
    const dsManifest = JSON.parse(await readFile(path.join(dirs().DATASETS_DIR, 'manifest.json'), 'utf8'))
    for (const key of ['generated_at_utc', 'registry_path', 'suite', 'splits', 'datasets', 'cache_root', 'cache_size_bytes', 'files'])
      assert.ok(key in dsManifest, key)
    assert.equal(dsManifest.cache_root, path.join(dirs().DATASETS_DIR, 'hf_cache'))
    assert.deepEqual(
      dsManifest.datasets.map((d: { dataset_id: string; hf_id: string; split: string; rows: number }) => [
        d.dataset_id,
        `${d.hf_id}:${d.split}`,
        d.rows,
      ]),
      Object.entries(expectedRows).map(([k, rows]) => [k.startsWith('org/pii-ru-a') ? 'pii_a' : 'pii_b', k, rows]),
    )
    // The Arrow cache is where the eval's load_dataset(cache_dir=$HF_HOME) reads it, and listed.
    assert.ok(
      dsManifest.files.some((f: { path: string }) => /^hf_cache\/org___pii-ru-a\/default\/.*-fast\.arrow$/.test(f.path)),
      'Arrow files at <root>/<org>___<name>/',
    )
    assert.ok(
      !dsManifest.files.some((f: { path: string }) => f.path.startsWith('hf_cache/datasets/')),
      'nothing prepared under HF_DATASETS_CACHE as well',
    )
  })

  test('running both again downloads no file and says everything was skipped', async () => {
    const before = hub.fileDownloads().length
    const models = await runMake('download-models', { MODELS_DIR: dirs().MODELS_DIR, PROJECT_DIR: project }, env)
    const datasets = await runMake('download-datasets', { DATASETS_DIR: dirs().DATASETS_DIR, PROJECT_DIR: project }, env)
    assert.equal(models.code, 0, models.stderr)
    assert.equal(datasets.code, 0, datasets.stderr)
    assert.equal(hub.fileDownloads().length, before, 'no file was requested from the Hub')
    // Everything in place: one line each, no table of skips ("checking" only for a check that takes
    // over 1.5 s, which loading the datasets library may).
    assert.match(
      models.stderr,
      /^\[models\] all in place, nothing fetched: org\/tiny-ner@main at their recorded commits; models in .*: complete/m,
    )
    assert.match(
      datasets.stderr,
      /^\[datasets\] all in place, nothing fetched: org\/\S+@main, org\/\S+@main at their recorded commits; datasets in .*: complete/m,
    )
    for (const { stderr } of [models, datasets]) assert.doesNotMatch(stderr, /skipped \(already complete\)|^\[\w+\] repo\s+status/m)
  })

  test('another runner downloading into the directory: --no-wait gives up (exit 12); else it waits, then finds it all in place', async () => {
    // The other runner is flock(1) on the directory's download lock, as a runner on any host that
    // mounts the directory would hold it.
    const lockFile = path.join(dirs().MODELS_DIR, '.remote-eval/download.lock')
    await writeFile(lockFile, 'a runner on gpu-box-2 (pid 4242) since 2026-12-04T00:00:00Z\n')
    // It holds the lock until its stdin ends (-o: the command itself does not inherit the lock).
    const holder = spawn('flock', ['-o', lockFile, '-c', 'echo held; read -r _'], { stdio: ['pipe', 'pipe', 'inherit'] })
    const held = new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()))
    const ended = new Promise((resolve) => holder.on('close', resolve))
    const args = ['--models-dir', dirs().MODELS_DIR, '--project-dir', project]
    try {
      await held
      const before = hub.requests.length
      const refused = await runScript('download_models.ts', [...args, '--no-wait'], env)
      assert.equal(refused.code, 12, refused.stderr)
      assert.match(refused.stderr, /is busy: a runner on gpu-box-2 \(pid 4242\) since \S+ is downloading into it \(--no-wait\)\./)
      assert.equal(hub.requests.length, before, 'it asked the Hub nothing')
      const waiting = await startScript('download_models.ts', args, env)
      await waiting.waitFor(
        /^\[models\] waiting for the lock on \S+ \(this machine\): a runner on gpu-box-2 .* is downloading into it; pass --no-wait/,
      )
      holder.stdin.end()
      const result = await waiting.result
      assert.equal(result.code, 0, result.stderr)
      assert.match(result.stderr, /^\[models\] all in place, nothing fetched/m)
    } finally {
      holder.kill('SIGKILL')
      await ended
    }
  })

  test('a download lock behind a symlink is refused (exit 4, naming it), and nothing is asked of the Hub', async () => {
    const scratchDir = await mkdtemp(path.join(tmpdir(), 'gre-lock-link-'))
    const modelsDir = path.join(scratchDir, 'models')
    await mkdir(path.join(scratchDir, 'elsewhere'), { recursive: true })
    await mkdir(modelsDir)
    await symlink(path.join(scratchDir, 'elsewhere'), path.join(modelsDir, '.remote-eval'))
    const before = hub.requests.length
    const result = await runScript('download_models.ts', ['--models-dir', modelsDir, '--project-dir', project], env)
    assert.equal(result.code, 4, result.stderr)
    assert.match(result.stderr, /\.remote-eval is a symlink, which this tool does not follow: remove it/)
    assert.equal(hub.requests.length, before)
    assert.deepEqual(await readdir(path.join(scratchDir, 'elsewhere')), [], 'nothing written through the link')
  })

  test('on a terminal, a download shows one line that updates: bytes, of how many, rate and time left', async () => {
    // A slow link (3 MiB at 1 MiB/s), so the line updates a few times.
    const slow = await startHub({ root: harness().hubRepos, tokens: [TOKEN], bytesPerSecond: 1024 * 1024 })
    try {
      const modelsDir = path.join(scratch, 'models-on-a-terminal')
      // A terminal 200 columns wide (a pty under script(1) has none set), so the line is not cut.
      const script = path.join(SCRIPTS, 'download_models.ts')
      const argv = ['sh', '-c', 'stty cols 200 && exec "$0" "$@"', script, '--models-dir', modelsDir, '--project-dir', project]
      const onPty = await startOnPty(argv, {
        ...env,
        HF_ENDPOINT: slow.endpoint,
        NO_COLOR: '1',
      })
      const { code, output } = await onPty.result
      assert.equal(code, 0, lastLines(output))
      // (huggingface_hub writes a file in 10 MB pieces: here the bytes grow once the weights are whole.)
      assert.match(
        output,
        /\[models\] org\/tiny-ner@main: [\d.]+ [KM]?i?B of 3\.0 MiB \(\d+ %\) at [\d.]+ [KM]?i?B\/s, about [\dhmins ]+ left\r?\n/,
      )
      // Rewritten in place: the line is taken away (cursor up, clear) before the next is drawn.
      assert.ok(output.includes('\x1b[1A\x1b[J'), JSON.stringify(output))
      assert.match(output, /^\[models\] org\/tiny-ner@main\s+fetched\s+3\.0 MiB/m)
    } finally {
      await slow.stop()
    }
  })

  test('copied to another path, both directories check and load there', async () => {
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'gre-mounted-'))
    const moved = { MODELS_DIR: path.join(elsewhere, 'mnt-models'), DATASETS_DIR: path.join(elsewhere, 'mnt-datasets') }
    await cp(dirs().MODELS_DIR, moved.MODELS_DIR, { recursive: true, verbatimSymlinks: true })
    await cp(dirs().DATASETS_DIR, moved.DATASETS_DIR, { recursive: true, verbatimSymlinks: true })
    // The originals are out of the way while the copies are used: nothing may still point at them.
    const away = `${scratch}-away`
    await rename(scratch, away)
    try {
      for (const target of ['check-models', 'check-datasets']) {
        const checked = await runMake(target, { ...moved, PROJECT_DIR: project, CHECKSUMS: '1' }, env)
        assert.equal(checked.code, 0, checked.stderr)
        assert.match(checked.stderr, /complete \(\d+ files, .*checksums verified\)/)
      }
      const used = await useOffline(moved.MODELS_DIR, moved.DATASETS_DIR)
      assert.deepEqual(used.rows, expectedRows)
    } finally {
      await rename(away, scratch)
    }
  })

  test('a dataset cache that no longer loads (a truncated Arrow file) is prepared again by the same command', async () => {
    const broken = path.join(await mkdtemp(path.join(tmpdir(), 'gre-arrow-')), 'datasets')
    await cp(dirs().DATASETS_DIR, broken, { recursive: true, verbatimSymlinks: true })
    const arrows = (await readdir(path.join(broken, 'hf_cache/org___pii-ru-a'), { recursive: true })).filter((f) =>
      f.endsWith('-fast.arrow'),
    )
    assert.equal(arrows.length, 1)
    const arrow = path.join(broken, 'hf_cache/org___pii-ru-a', arrows[0]!)
    await truncate(arrow, Math.floor((await readFile(arrow)).length / 2))
    const args = ['--datasets-dir', broken, '--project-dir', project]
    const repaired = await runScript('download_datasets.ts', args, env)
    assert.equal(repaired.code, 0, repaired.stderr)
    assert.match(repaired.stderr, /org\/pii-ru-a@main: its cache did not load \(\w+: .*\); removed it and preparing it again from scratch/)
    assert.doesNotMatch(repaired.stderr, /org\/pii-ru-b@main: its cache did not load/, 'the other dataset is left alone')
    const checked = await runScript('download_datasets.ts', ['--check', ...args], env)
    assert.equal(checked.code, 0, checked.stderr)
    assert.deepEqual((await useOffline(dirs().MODELS_DIR, broken)).rows, expectedRows)
  })

  test("download_datasets.ts --fresh-cache prepares the suite's datasets again and leaves other files there", async () => {
    const shared = path.join(await mkdtemp(path.join(tmpdir(), 'gre-fresh-')), 'datasets')
    await cp(dirs().DATASETS_DIR, shared, { recursive: true, verbatimSymlinks: true })
    await mkdir(path.join(shared, 'hf_cache/other-project'), { recursive: true })
    await writeFile(path.join(shared, 'hf_cache/other-project/data.bin'), 'theirs\n')
    const before = hub.fileDownloads().length
    const fresh = await runScript('download_datasets.ts', ['--datasets-dir', shared, '--project-dir', project, '--fresh-cache'], env)
    assert.equal(fresh.code, 0, fresh.stderr)
    assert.match(fresh.stderr, /--fresh-cache: removed the suite's datasets from .*hf_cache \(nothing else there\)/)
    assert.match(fresh.stderr, /2 fetched, 0 skipped/)
    assert.ok(hub.fileDownloads().length > before, 'the datasets were downloaded again')
    assert.equal(await readFile(path.join(shared, 'hf_cache/other-project/data.bin'), 'utf8'), 'theirs\n')
    const both = await runScript(
      'download_datasets.ts',
      ['--datasets-dir', shared, '--project-dir', project, '--fresh-cache', '--check'],
      env,
    )
    assert.equal(both.code, 2, both.stderr)
  })

  test('a missing, truncated or grown file fails the check and is named; checksums catch a same-size change', async () => {
    const copy = path.join(await mkdtemp(path.join(tmpdir(), 'gre-broken-')), 'models')
    await cp(dirs().MODELS_DIR, copy, { recursive: true })
    const weights = path.join(copy, 'token_classifier/org__tiny-ner/model.safetensors')
    const config = path.join(copy, 'token_classifier/org__tiny-ner/config.json')

    await truncate(weights, 1000)
    let checked = await runMake('check-models', { MODELS_DIR: copy, PROJECT_DIR: project }, env)
    assertMakeFailed(checked, 10)
    assert.match(checked.stderr, /truncated: token_classifier\/org__tiny-ner\/model\.safetensors \(1000 of 3145728 bytes\)/)

    // A file that grew is not called truncated.
    const configSize = (await stat(config)).size
    await appendFile(config, ' ')
    checked = await runMake('check-models', { MODELS_DIR: copy, PROJECT_DIR: project }, env)
    assertMakeFailed(checked, 10)
    assert.match(
      checked.stderr,
      new RegExp(
        `larger than the manifest says: token_classifier/org__tiny-ner/config\\.json \\(${configSize + 1} bytes, not ${configSize}\\)`,
      ),
    )
    assert.doesNotMatch(checked.stderr, /truncated: .*config\.json/)

    await rm(config)
    checked = await runMake('check-models', { MODELS_DIR: copy, PROJECT_DIR: project }, env)
    assert.match(checked.stderr, /missing: token_classifier\/org__tiny-ner\/config\.json/)
    // The fix is the same command without --check, pasteable from anywhere; it repairs the copy.
    const fix = /Fix: (cd \S+ && \S+\/scripts\/download_models\.ts --models-dir \S+ .*)$/m.exec(checked.stderr)?.[1]
    assert.ok(fix && !fix.includes('--check'), checked.stderr)
    const pasted = await $({ cwd: tmpdir(), env, nothrow: true, quiet: true })`bash -c ${fix}`
    assert.equal(pasted.exitCode, 0, pasted.stderr)
    assert.equal((await runMake('check-models', { MODELS_DIR: copy, PROJECT_DIR: project, CHECKSUMS: '1' }, env)).code, 0)

    const copy2 = path.join(path.dirname(copy), 'models2')
    await cp(dirs().MODELS_DIR, copy2, { recursive: true })
    const target = path.join(copy2, 'token_classifier/org__tiny-ner/vocab.txt')
    const original = await readFile(target)
    await writeFile(target, Buffer.from(original.map((b) => (b === 0x0a ? b : b ^ 1))))
    const sizesOnly = await runMake('check-models', { MODELS_DIR: copy2, PROJECT_DIR: project }, env)
    assert.equal(sizesOnly.code, 0, 'sizes alone cannot see it')
    const hashed = await runMake('check-models', { MODELS_DIR: copy2, PROJECT_DIR: project, CHECKSUMS: '1' }, env)
    assertMakeFailed(hashed, 10)
    assert.match(hashed.stderr, /checksum mismatch: token_classifier\/org__tiny-ner\/vocab\.txt/)

    const dsCopy = path.join(path.dirname(copy), 'datasets')
    await cp(dirs().DATASETS_DIR, dsCopy, { recursive: true, verbatimSymlinks: true })
    const cacheRoot = path.join(dsCopy, 'hf_cache/org___pii-ru-b/default/0.0.0')
    const [shaDir] = await readdir(cacheRoot)
    await rm(path.join(cacheRoot, shaDir!, 'pii-ru-b-full.arrow'))
    const dsChecked = await runMake('check-datasets', { DATASETS_DIR: dsCopy, PROJECT_DIR: project }, env)
    assertMakeFailed(dsChecked, 11)
    assert.match(dsChecked.stderr, /missing: hf_cache\/org___pii-ru-b\/default\/0\.0\.0\/[0-9a-f]{40}\/pii-ru-b-full\.arrow/)
  })

  test('a suite split that the manifest lacks is reported as not covered', async () => {
    const other = await makeEvalProject({ datasets: { pii_a: 'org/pii-ru-a', pii_c: 'org/pii-ru-c' } })
    const checked = await runScript('download_datasets.ts', ['--check', '--datasets-dir', dirs().DATASETS_DIR, '--project-dir', other], env)
    assert.equal(checked.code, 11, 'the script itself exits with the contract code')
    assert.match(checked.stderr, /not in the manifest: org\/pii-ru-c \(split fast\)/)
  })

  test('a gated repo without a token fails naming HF_TOKEN and .env.eval; the token travels only in the Authorization header', async () => {
    const gated = await makeEvalProject({ models: [GATED_MODEL_REPO] })
    const modelsDir = path.join(scratch, 'gated-models')
    const noToken = { ...env, HF_TOKEN: '' }
    const refused = await runScript(
      'download_models.ts',
      ['--models-dir', modelsDir, '--project-dir', gated, '--venv', harness().venv],
      noToken,
    )
    assert.equal(refused.code, 10, refused.stderr)
    assert.match(
      refused.stderr,
      /org\/gated-ner needs a Hugging Face token .*Set HF_TOKEN in the environment or put HF_TOKEN=hf_\.\.\. in \.env\.eval/,
    )

    // Now the token is in .env.eval only; watch every process's argv while the download runs.
    await writeFile(path.join(gated, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    const seenArgv = new Set<string>()
    const runner = startProcess(
      path.join(SCRIPTS, 'download_models.ts'),
      ['--models-dir', modelsDir, '--project-dir', gated, '--venv', harness().venv],
      {
        cwd: path.dirname(SCRIPTS),
        env: noToken,
      },
    )
    let running = true
    const watcher = (async () => {
      while (running) {
        for (const pid of await readdir('/proc').catch(() => [])) {
          if (/^\d+$/.test(pid)) seenArgv.add(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
        }
        await new Promise((r) => setTimeout(r, 25))
      }
    })()
    const result = await runner.result
    running = false
    await watcher
    assert.equal(result.exitCode, 0, result.stderrTail.join('\n'))
    assert.ok(
      [...seenArgv].some((argv) => argv.includes('python')),
      'the watcher saw the Python process',
    )
    assert.ok(![...seenArgv].some((argv) => argv.includes(TOKEN)), 'no process had the token in its argv')
    assert.ok(!result.stdout.includes(TOKEN) && !result.stderrTail.join('\n').includes(TOKEN), 'no log shows the token')
    const authorized = hub.requests.filter((r) => r.repo === GATED_MODEL_REPO && r.authorization === `Bearer ${TOKEN}`)
    assert.ok(authorized.length > 0, 'the token reached the Hub in the Authorization header')
    assert.ok(!hub.requests.some((r) => r.path.includes(TOKEN)), 'never in a URL')
    assert.ok(!hub.requests.some((r) => r.host === '127.0.0.2' && r.authorization), 'never sent to the file host')
  })

  test('bad input ends with exit code 2 and says what to fix', async () => {
    const broken = await makeEvalProject()
    await writeFile(path.join(broken, 'configs/eval/suites.yaml'), 'suites:\n  guardrails_ru: [unclosed\n')
    const cases: Array<[string, string[], RegExp]> = [
      [
        'unknown suite',
        ['download_datasets.ts', '--datasets-dir', path.join(scratch, 'd'), '--project-dir', project, '--suite', 'nope'],
        /Suite "nope" is not in .*suites\.yaml\. Known suites: guardrails_ru/,
      ],
      [
        'unknown split',
        ['download_datasets.ts', '--datasets-dir', path.join(scratch, 'd'), '--project-dir', project, '--splits', 'fast,huge'],
        /Split\(s\) huge not declared for suite guardrails_ru/,
      ],
      [
        'missing policy file',
        ['download_models.ts', '--models-dir', path.join(scratch, 'm'), '--project-dir', scratch],
        /The policy file not found: .*configs\/policy\.yaml\. Run from the eval repo, pass --project-dir, or point --policy/,
      ],
      [
        'malformed YAML',
        ['download_datasets.ts', '--datasets-dir', path.join(scratch, 'd'), '--project-dir', broken],
        /suites\.yaml is not valid YAML: .*Fix the file/,
      ],
      [
        'unwritable directory',
        ['download_models.ts', '--models-dir', '/proc/gre-models', '--project-dir', project, '--venv', harness().venv],
        /--models-dir \/proc\/gre-models cannot be created .* Choose a directory you can write/,
      ],
      [
        'bad --model',
        ['download_models.ts', '--models-dir', path.join(scratch, 'm'), '--project-dir', project, '--model', 'a/b/c'],
        /--model "a\/b\/c" is not a model repo id/,
      ],
      ['no --models-dir', ['download_models.ts', '--project-dir', project], /--models-dir is required/],
    ]
    for (const [name, [script, ...args], message] of cases) {
      const result = await runScript(script!, args, env)
      assert.equal(result.code, 2, `${name}: ${result.stderr}`)
      assert.match(result.stderr, message, name)
    }
  })
})

describe('a download cut off by a dying server', () => {
  let hub: HubServer
  let dieOnSecond = true
  before(async () => {
    hub = await startHub({
      root: harness().hubRepos,
      // Dies when the second model's weights are requested, after the first model completed.
      dieWhen: (method, p) =>
        dieOnSecond && method === 'HEAD' && p.includes(`/${SECOND_MODEL_REPO}/resolve/`) && p.endsWith('model.safetensors'),
    })
  })
  after(() => hub.stop())

  test('leaves no manifest, and a rerun does not fetch the repos that had finished', async () => {
    const project = await makeEvalProject({ models: [MODEL_REPO, SECOND_MODEL_REPO] })
    const modelsDir = path.join(await mkdtemp(path.join(tmpdir(), 'gre-cut-')), 'models')
    const args = ['--models-dir', modelsDir, '--project-dir', project, '--venv', harness().venv, '--jobs', '1']
    const env = { ...process.env, HF_ENDPOINT: hub.endpoint }
    const cut = await runScript('download_models.ts', args, env)
    assert.notEqual(cut.code, 0, 'the cut-off run fails')
    assert.match(cut.stderr, /org\/tiny-ner@main\s+fetched/)
    assert.match(cut.stderr, /org\/tiny-ner-2@main\s+failed/)
    await assert.rejects(readFile(path.join(modelsDir, 'manifest.json')), 'no manifest is left behind')

    dieOnSecond = false
    await hub.start()
    const firstBefore = hub.fileDownloads(MODEL_REPO).length
    const rerun = await runScript('download_models.ts', args, env)
    assert.equal(rerun.code, 0, rerun.stderr)
    assert.match(rerun.stderr, /org\/tiny-ner@main\s+skipped/)
    assert.match(rerun.stderr, /org\/tiny-ner-2@main\s+fetched/)
    assert.equal(hub.fileDownloads(MODEL_REPO).length, firstBefore, 'the finished repo was not fetched again')
    const manifest = JSON.parse(await readFile(path.join(modelsDir, 'manifest.json'), 'utf8'))
    assert.deepEqual(Object.keys(manifest.token_classifier_models), [MODEL_REPO, SECOND_MODEL_REPO])
  })
})
