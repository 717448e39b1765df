import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { SCHEMA_VERSION, utcNow, writeManifest, type ManifestFile } from '../lib/assets/manifest.ts'
import { modelDirName } from '../lib/assets/registry.ts'
import { LocalTransport } from '../lib/transport/local.ts'

// For `make demo` only: lays out the example's Hub repos (examples/hub-repos) as prepared model and
// dataset directories, the way snapshot_download and the Hub cache hold them, and writes their
// manifests with the tool's own manifest module. No Hub, no network, no Python package needed;
// the real path, `make download-*`, is tested against the Hub double.

async function filesUnder(root: string, rel = ''): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel ? `${rel}/${entry.name}` : entry.name
    if (entry.isDirectory()) found.push(...(await filesUnder(root, child)))
    else found.push(child)
  }
  return found.sort()
}

/** A commit-like id of a repo's content (what the Hub cache keys snapshots by). */
async function repoSha(repo: string): Promise<string> {
  const commit = createHash('sha1')
  for (const rel of await filesUnder(repo)) commit.update(`${rel}:`).update(await readFile(path.join(repo, rel)))
  return commit.digest('hex')
}

const entry = (base: string, file: string, data: Buffer | string): ManifestFile => ({
  path: path.relative(base, file),
  size: Buffer.byteLength(data),
  sha256: createHash('sha256').update(data).digest('hex'),
})

/** Copies a repo's files under dest; returns them as manifest entries (paths relative to base). */
async function copyRepo(repo: string, dest: string, base: string): Promise<ManifestFile[]> {
  const files: ManifestFile[] = []
  for (const rel of await filesUnder(repo)) {
    const data = await readFile(path.join(repo, rel))
    await mkdir(path.dirname(path.join(dest, rel)), { recursive: true })
    await writeFile(path.join(dest, rel), data)
    files.push(entry(base, path.join(dest, rel), data))
  }
  return files
}

/** Prepares modelsDir and datasetsDir for the example's suite, with manifests, from examples/hub-repos. */
export async function layOutExampleAssets(hubRepos: string, modelsDir: string, datasetsDir: string, suite: string, splits: string[]): Promise<void> {
  const transport = new LocalTransport()
  const model = 'org/ru-pii-detector'
  const modelSource = path.join(hubRepos, 'models', model)
  const modelFiles = await copyRepo(modelSource, path.join(modelsDir, modelDirName(model)), modelsDir)
  await writeManifest(transport, modelsDir, {
    schema_version: SCHEMA_VERSION, kind: 'models', generated_at_utc: utcNow(), policy_path: 'examples/guardrails-mini/configs/policy.yaml',
    token_classifier_models: [{ model_name: model, revision: 'main', sha: await repoSha(modelSource), path: modelDirName(model) }],
    checksums: Object.fromEntries(modelFiles.map((f) => [f.path, f.sha256])), files: modelFiles,
  })

  const files: ManifestFile[] = []
  const datasets = []
  for (const hfId of ['org/ru-pii-chat', 'org/ru-pii-forms']) {
    const source = path.join(hubRepos, 'datasets', hfId)
    const sha = await repoSha(source)
    const repoCache = path.join(datasetsDir, 'hf_cache', 'hub', `datasets--${hfId.replace('/', '--')}`)
    files.push(...(await copyRepo(source, path.join(repoCache, 'snapshots', sha), datasetsDir)))
    await mkdir(path.join(repoCache, 'refs'), { recursive: true })
    await writeFile(path.join(repoCache, 'refs', 'main'), sha)
    files.push(entry(datasetsDir, path.join(repoCache, 'refs', 'main'), sha))
    for (const split of splits) {
      const text = await readFile(path.join(source, 'data', `${split}-00000-of-00001.jsonl`), 'utf8')
      datasets.push({ hf_id: hfId, split, sha, rows: text.split('\n').filter(Boolean).length, cache_root: 'hf_cache' })
    }
  }
  await writeManifest(transport, datasetsDir, {
    schema_version: SCHEMA_VERSION, kind: 'datasets', generated_at_utc: utcNow(), registry_path: 'examples/guardrails-mini/configs/eval/suites.yaml',
    suite, splits, datasets, files,
  })
}
