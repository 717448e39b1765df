import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { modelsManifest, parseManifest, sha256Tree, type ReadManifest } from '../../lib/assets/manifest.ts'
import { checkFiles, uncoveredDatasets, uncoveredModels } from '../../lib/assets/verify.ts'

const weights = { path: 'token_classifier/org__m/w.bin', size: 10, sha256: 'b'.repeat(64) }
const good = modelsManifest({
  dir: '/data/models',
  policyPath: '/x/configs/policy.yaml',
  models: [{ model_name: 'org/m', revision: 'main', sha: 'a'.repeat(40), path: 'token_classifier/org__m', files: [weights] }],
})

// As guardrails:app/tools/download_models.py and download_datasets.py of the eval repo write them.
const pythonModels = {
  generated_at_utc: '2026-02-17T10:00:00+00:00',
  policy_path: '/home/u/guardrails/configs/policy.yaml',
  token_classifier_models: { 'org/m': '/home/u/guardrails/.models/token_classifier/org__m' },
  checksums: {
    token_classifier_models: {
      'org/m': {
        path: '/home/u/guardrails/.models/token_classifier/org__m',
        sha256_tree: sha256Tree([{ path: 'w.bin', sha256: 'c'.repeat(64) }]),
        files: 1,
      },
    },
  },
}
const pythonDatasets = {
  generated_at_utc: '2026-02-17T10:00:00+00:00',
  registry_path: '/home/u/guardrails/configs/eval/suites.yaml',
  suite: 'guardrails_ru',
  splits: ['fast', 'full'],
  datasets: [{ dataset_id: 'a', hf_id: 'org/a', split: 'fast', sha: 'f'.repeat(40), fingerprint: 'x', rows: 3 }],
  cache_root: '/home/u/guardrails/.datasets/hf_cache',
  cache_size_bytes: 100,
}

describe('manifests', () => {
  test('ours keeps the Python keys in the Python shapes', () => {
    assert.deepEqual(good.token_classifier_models, { 'org/m': '/data/models/token_classifier/org__m' })
    assert.deepEqual(good.checksums.token_classifier_models['org/m'], {
      path: '/data/models/token_classifier/org__m',
      sha256_tree: sha256Tree([{ path: 'w.bin', sha256: 'b'.repeat(64) }]),
      files: 1,
    })
    const parsed = parseManifest(JSON.stringify(good), 'models') as ReadManifest
    assert.equal(parsed.writer, 'remote-eval')
    assert.deepEqual(
      parsed.models.map((m) => [m.name, m.path, m.revision]),
      [['org/m', 'token_classifier/org__m', 'main']],
    )
  })

  test("sha256_tree is the Python tool's: sha256 of sorted path:sha256 lines joined by newlines", () => {
    const expected = createHash('sha256')
      .update(`a/x:${'1'.repeat(64)}\nb:${'2'.repeat(64)}`)
      .digest('hex')
    assert.equal(
      sha256Tree([
        { path: 'b', sha256: '2'.repeat(64) },
        { path: 'a/x', sha256: '1'.repeat(64) },
      ]),
      expected,
    )
  })

  test("the Python tools' manifests are read, their absolute paths rebased on the manifest's directory", () => {
    const models = parseManifest(JSON.stringify(pythonModels), 'models') as ReadManifest
    assert.equal(models.writer, 'python-tools')
    assert.equal(models.files, null)
    assert.deepEqual(
      models.models.map((m) => m.path),
      ['token_classifier/org__m'],
    )
    const datasets = parseManifest(JSON.stringify(pythonDatasets), 'datasets') as ReadManifest
    assert.deepEqual(datasets.datasets, [{ hf_id: 'org/a', split: 'fast', sha: 'f'.repeat(40), dataset_id: 'a', rows: 3 }])
    const need = {
      suite: 'guardrails_ru',
      splits: ['fast', 'full'],
      suitesPath: 'x',
      datasets: [{ id: 'a', hfId: 'org/a', revision: 'main' }],
    }
    assert.deepEqual(uncoveredDatasets(datasets, need), ['org/a (split full)'])
  })

  test("a Python bundle: a model's directory must hold files, a split its Arrow file; sha256_tree when hashed", () => {
    const models = parseManifest(JSON.stringify(pythonModels), 'models') as ReadManifest
    assert.deepEqual(checkFiles(models, { sizes: new Map(), hashes: null }).missing, ['token_classifier/org__m/ (org/m: absent or empty)'])
    const sizes = new Map([['token_classifier/org__m/w.bin', 10]])
    assert.deepEqual(checkFiles(models, { sizes, hashes: null }), { missing: [], truncated: [], grown: [], mismatched: [] })
    assert.deepEqual(checkFiles(models, { sizes, hashes: new Map([['token_classifier/org__m/w.bin', 'c'.repeat(64)]]) }).mismatched, [])
    assert.deepEqual(checkFiles(models, { sizes, hashes: new Map([['token_classifier/org__m/w.bin', 'd'.repeat(64)]]) }).mismatched, [
      'token_classifier/org__m/ (org/m: sha256_tree differs)',
    ])
    const datasets = parseManifest(JSON.stringify(pythonDatasets), 'datasets') as ReadManifest
    assert.equal(
      checkFiles(datasets, { sizes: new Map([['hf_cache/org___a/default/0.0.0/h/a-full.arrow', 5]]), hashes: null }).missing.length,
      1,
    )
    assert.equal(
      checkFiles(datasets, { sizes: new Map([['hf_cache/org___a/default/0.0.0/h/a-fast.arrow', 5]]), hashes: null }).missing.length,
      0,
    )
  })

  const broken: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{', /not JSON/],
    ['another schema version', { ...good, schema_version: 1 }, /schema_version 1, expected 2/],
    ['the other kind', { ...good, kind: 'datasets' }, /a datasets manifest, not a models manifest/],
    ['an absolute path', { ...good, files: [{ path: '/etc/passwd', size: 1, sha256: 'x' }] }, /"files" list is missing or malformed/],
    ['a path going up', { ...good, files: [{ path: '../x', size: 1, sha256: 'x' }] }, /malformed/],
    ['no model mapping', { ...good, token_classifier_models: undefined }, /"token_classifier_models" \(model name -> path\) is missing/],
    ['a datasets manifest read as models', pythonDatasets, /"token_classifier_models" .* is missing; is this a datasets manifest/],
  ]
  for (const [name, value, reason] of broken) {
    test(`${name} is not a usable manifest`, () => {
      const parsed = parseManifest(typeof value === 'string' ? value : JSON.stringify(value), 'models')
      assert.ok('invalid' in parsed && reason.test(parsed.invalid), JSON.stringify(parsed))
    })
  }

  test('file checks: missing, truncated, grown, mismatched', () => {
    const manifest: ReadManifest = {
      kind: 'models',
      writer: 'remote-eval',
      models: [],
      datasets: [],
      files: [
        { path: 'a', size: 1, sha256: 'h1' },
        { path: 'b', size: 5, sha256: 'h2' },
        { path: 'c', size: 3, sha256: 'h3' },
        { path: 'd', size: 2, sha256: 'h4' },
        { path: 'e', size: 4, sha256: 'h5' },
      ],
    }
    const listing = {
      sizes: new Map([
        ['b', 2],
        ['c', 3],
        ['d', 2],
        ['e', 9],
      ]),
      hashes: new Map([
        ['c', 'zz'],
        ['d', 'h4'],
      ]),
    }
    assert.deepEqual(checkFiles(manifest, listing), {
      missing: ['a'],
      truncated: [{ path: 'b', expected: 5, actual: 2 }],
      grown: [{ path: 'e', expected: 4, actual: 9 }],
      mismatched: ['c'],
    })
  })

  test('coverage: a model at a revision the manifest does not hold is reported; its sha prefix counts', () => {
    const manifest = parseManifest(JSON.stringify(good), 'models') as ReadManifest
    const need = (repoId: string, revision: string) => ({ repoId, revision, source: 'test' })
    assert.deepEqual(
      uncoveredModels(manifest, [need('org/m', 'main'), need('org/m', 'aaaaaaa'), need('org/m', 'v2'), need('org/x', 'main')]),
      ['org/m@v2', 'org/x@main'],
    )
  })
})

describe('checking a directory with many files', () => {
  test('every checksum is read back right, however many batches hash in parallel', async () => {
    const { mkdtemp, mkdir, writeFile } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const path = await import('node:path')
    const { createHash } = await import('node:crypto')
    const { LocalTransport } = await import('../../lib/transport/local.ts')
    const { writeManifest, modelsManifest } = await import('../../lib/assets/manifest.ts')
    const { checkPreparedDir } = await import('../../lib/assets/prepare.ts')
    const dir = await mkdtemp(path.join(tmpdir(), 'gre-many-'))
    const files = []
    for (let i = 0; i < 400; i++) {
      const rel = `token_classifier/org__m/a-rather-long-directory-name-for-output-size/shard with spaces ${i}.bin`
      const data = Buffer.from(`content ${i}`)
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
      await writeFile(path.join(dir, rel), data)
      files.push({ path: rel, size: data.length, sha256: createHash('sha256').update(data).digest('hex') })
    }
    const transport = new LocalTransport()
    await writeManifest(
      transport,
      dir,
      modelsManifest({
        dir,
        policyPath: 'x',
        models: [{ model_name: 'org/m', revision: 'main', sha: 'a'.repeat(40), path: 'token_classifier/org__m', files }],
      }),
    )
    const report = await checkPreparedDir({ transport, dir, kind: 'models', checksums: true, needs: {} })
    assert.deepEqual(report.problems, { missing: [], truncated: [], grown: [], mismatched: [] })
    assert.equal(report.checkedFiles, 400)
  })
})
