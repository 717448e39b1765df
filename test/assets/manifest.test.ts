import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseManifest } from '../../lib/assets/manifest.ts'
import { checkFiles, uncoveredModels } from '../../lib/assets/verify.ts'

const good = {
  schema_version: 1, kind: 'models', generated_at_utc: '2026-11-28T10:00:00Z', policy_path: '/x/configs/policy.yaml',
  token_classifier_models: [{ model_name: 'org/m', revision: 'main', sha: 'a'.repeat(40), path: 'token_classifier/org__m' }],
  checksums: { 'token_classifier/org__m/w.bin': 'b'.repeat(64) },
  files: [{ path: 'token_classifier/org__m/w.bin', size: 10, sha256: 'b'.repeat(64) }],
}

describe('manifests', () => {
  test('a good manifest parses', () => {
    const parsed = parseManifest(JSON.stringify(good), 'models')
    assert.ok(!('invalid' in parsed))
  })

  const broken: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{', /not JSON/],
    ['another schema version', { ...good, schema_version: 2 }, /schema_version 2, expected 1/],
    ['the other kind', { ...good, kind: 'datasets' }, /a datasets manifest, not a models manifest/],
    ['an absolute path', { ...good, files: [{ path: '/etc/passwd', size: 1, sha256: 'x' }] }, /"files" list is missing or malformed/],
    ['a path going up', { ...good, files: [{ path: '../x', size: 1, sha256: 'x' }] }, /malformed/],
    ['no model list', { ...good, token_classifier_models: undefined }, /"token_classifier_models" list is missing/],
  ]
  for (const [name, value, reason] of broken) {
    test(`${name} is not a usable manifest`, () => {
      const parsed = parseManifest(typeof value === 'string' ? value : JSON.stringify(value), 'models')
      assert.ok('invalid' in parsed && reason.test(parsed.invalid), JSON.stringify(parsed))
    })
  }

  test('file checks: missing, truncated, mismatched', () => {
    const manifest = { ...(good as never as Parameters<typeof checkFiles>[0]), files: [
      { path: 'a', size: 1, sha256: 'h1' }, { path: 'b', size: 5, sha256: 'h2' }, { path: 'c', size: 3, sha256: 'h3' }, { path: 'd', size: 2, sha256: 'h4' },
    ] }
    const listing = { sizes: new Map([['b', 2], ['c', 3], ['d', 2]]), hashes: new Map([['c', 'zz'], ['d', 'h4']]) }
    assert.deepEqual(checkFiles(manifest, listing), { missing: ['a'], truncated: [{ path: 'b', expected: 5, actual: 2 }], mismatched: ['c'] })
  })

  test('coverage: a model at a revision the manifest does not hold is reported; its sha prefix counts', () => {
    const manifest = parseManifest(JSON.stringify(good), 'models') as never
    const need = (repoId: string, revision: string) => ({ repoId, revision, source: 'test' })
    assert.deepEqual(uncoveredModels(manifest, [need('org/m', 'main'), need('org/m', 'aaaaaaa'), need('org/m', 'v2'), need('org/x', 'main')]), ['org/m@v2', 'org/x@main'])
  })
})

describe('checking a directory with many files', () => {
  test('every checksum is read back right, however many batches hash in parallel', async () => {
    const { mkdtemp, mkdir, writeFile } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    const path = await import('node:path')
    const { createHash } = await import('node:crypto')
    const { LocalTransport } = await import('../../lib/transport/local.ts')
    const { writeManifest, utcNow } = await import('../../lib/assets/manifest.ts')
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
    await writeManifest(transport, dir, { schema_version: 1, kind: 'models', generated_at_utc: utcNow(), policy_path: 'x', token_classifier_models: [], checksums: {}, files })
    const report = await checkPreparedDir({ transport, dir, kind: 'models', checksums: true, needs: {} })
    assert.deepEqual(report.problems, { missing: [], truncated: [], mismatched: [] })
    assert.equal(report.checkedFiles, 400)
  })
})
