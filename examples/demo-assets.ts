import { createHash } from 'node:crypto'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { datasetsManifest, modelsManifest, writeManifest, type DatasetEntry, type ManifestFile } from '../lib/assets/manifest.ts'
import { modelDirName } from '../lib/assets/registry.ts'
import { LocalTransport } from '../lib/transport/local.ts'

// For `make demo` only: lays out the example's Hub repos (examples/hub-repos) as prepared model and
// dataset directories and writes their manifests with the tool's own manifest module. Models as
// snapshot_download leaves them; each dataset split as the JSONL export the example eval reads
// from the cache root when the `datasets` package is missing (app/eval/data.py), at the place
// where load_dataset(cache_dir=hf_cache) puts its Arrow files. No Hub, no network, no Python
// package needed; the real path, `make download-*` with Hugging Face's clients, is tested against
// the Hub double.

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

/** The example suites' datasets: the suite's id of each, and the Hub repo it comes from. */
export const EXAMPLE_DATASETS: ReadonlyArray<readonly [string, string]> = [
  ['ru_pii_chat', 'org/ru-pii-chat'],
  ['ru_pii_forms', 'org/ru-pii-forms'],
]

/**
 * Prepares modelsDir and datasetsDir for a suite of the example, with manifests, from
 * examples/hub-repos; `datasets`: its datasets, when not the example's own (bench:fanout's suite).
 */
export async function layOutExampleAssets(
  hubRepos: string,
  modelsDir: string,
  datasetsDir: string,
  suite: string,
  splits: string[],
  datasets: ReadonlyArray<readonly [string, string]> = EXAMPLE_DATASETS,
): Promise<void> {
  const transport = new LocalTransport()
  const model = 'org/ru-pii-detector'
  const modelSource = path.join(hubRepos, 'models', model)
  const modelFiles = await copyRepo(modelSource, path.join(modelsDir, modelDirName(model)), modelsDir)
  await writeManifest(
    transport,
    modelsDir,
    modelsManifest({
      dir: modelsDir,
      policyPath: 'examples/guardrails-mini/configs/policy.yaml',
      models: [{ model_name: model, revision: 'main', sha: await repoSha(modelSource), path: modelDirName(model), files: modelFiles }],
    }),
  )

  const files = new Map<string, ManifestFile>()
  const entries: DatasetEntry[] = []
  for (const [datasetId, hfId] of datasets) {
    const source = path.join(hubRepos, 'datasets', hfId)
    const sha = await repoSha(source)
    const [org, name] = hfId.split('/') as [string, string]
    for (const split of splits) {
      const text = await readFile(path.join(source, 'data', `${split}-00000-of-00001.jsonl`), 'utf8')
      const file = path.join(datasetsDir, 'hf_cache', `${org}___${name}`, 'default', 'jsonl', `${name}-${split}.jsonl`)
      await mkdir(path.dirname(file), { recursive: true })
      await writeFile(file, text)
      // Datasets of one Hub repo share its files.
      files.set(file, entry(datasetsDir, file, text))
      entries.push({ dataset_id: datasetId, hf_id: hfId, split, sha, fingerprint: null, rows: text.split('\n').filter(Boolean).length })
    }
  }
  await writeManifest(
    transport,
    datasetsDir,
    datasetsManifest({
      dir: datasetsDir,
      registryPath: 'examples/guardrails-mini/configs/eval/suites.yaml',
      suite,
      splits,
      datasets: entries,
      files: [...files.values()],
    }),
  )
}
