import { createHash } from 'node:crypto'
import { TransportError } from '../core/errors.ts'
import { lastLine, utcNow } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import { RemoteStatus } from '../core/remote-status.ts'

// The one manifest module: what a models or datasets directory holds, in `manifest.json` at its
// root. Two kinds are read. Ours keeps every key of the eval repo's Python tools
// (guardrails:app/tools/download_*.py) in their shapes, so the repo's own code reads it, and adds
// `schema_version`, `kind`, `revisions` (models) and a per-file list (path, size, sha256) so that
// completeness is checked without reading the data. The Python tools' own manifests (bundles in
// use today) have no per-file list: they are checked by what they name. Paths we write are relative
// to the directory, which is prepared on one machine and mounted at another path elsewhere
// (/mnt/models in a pod); the absolute paths of the Python keys are information, rebased on the
// manifest's own directory when read.

export const MANIFEST_NAME = 'manifest.json'
export const SCHEMA_VERSION = 2

export interface ManifestFile {
  path: string
  size: number
  sha256: string
}

/** checksums.token_classifier_models.<name> as download_models.py writes it. */
export interface TreeChecksum {
  path: string
  /** sha256 of the lines "relative/path:sha256" of every file, sorted by path, joined by newlines. */
  sha256_tree: string
  files: number
}

export interface ModelRevision {
  model_name: string
  /** The revision asked for (branch, tag or sha). */
  revision: string
  /** The commit it resolved to; the files are exactly that commit's. */
  sha: string
  /** Relative to the models dir: token_classifier/<org>__<name>. */
  path: string
}

export interface ModelsManifest {
  schema_version: number
  kind: 'models'
  generated_at_utc: string
  policy_path: string
  /** Model name -> absolute path where it was prepared (the Python tool's shape). */
  token_classifier_models: Record<string, string>
  checksums: { token_classifier_models: Record<string, TreeChecksum> }
  revisions: ModelRevision[]
  files: ManifestFile[]
}

export interface DatasetEntry {
  /** The suite's own id of the dataset. */
  dataset_id: string
  hf_id: string
  split: string
  /** The dataset repo commit the split was prepared from. */
  sha: string
  fingerprint: string | null
  rows: number
}

export interface DatasetsManifest {
  schema_version: number
  kind: 'datasets'
  generated_at_utc: string
  registry_path: string
  suite: string
  splits: string[]
  datasets: DatasetEntry[]
  /** Absolute, where it was prepared (the Python tool's shape); hf_cache of the manifest's directory. */
  cache_root: string
  cache_size_bytes: number
  files: ManifestFile[]
}

export type Manifest = ModelsManifest | DatasetsManifest

/** A manifest as the checks read it, whoever wrote it. */
export interface ReadManifest {
  kind: Manifest['kind']
  /** Who wrote it: this tool, or the eval repo's Python tools (no per-file list). */
  writer: 'remote-eval' | 'python-tools'
  /** Every file with size and sha256 (ours only). */
  files: ManifestFile[] | null
  /** Models: name, directory relative to the manifest's, revision and commit (ours), tree checksum. */
  models: Array<{ name: string; path: string; revision?: string; sha?: string; tree?: TreeChecksum }>
  /** Datasets: each split prepared, the commit it came from, and (where recorded) the suite's id and rows. */
  datasets: Array<{ hf_id: string; split: string; sha: string | null; dataset_id?: string; rows?: number }>
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isRelative = (p: unknown) => typeof p === 'string' && p !== '' && !p.startsWith('/') && !p.split('/').includes('..')
const MODEL_DIR = /^token_classifier\/[^/]+$/

/** A Python tool's absolute model path, rebased on the manifest's directory: token_classifier/<dir name>. */
function rebaseModelPath(name: string, where: unknown): string {
  const base = typeof where === 'string' && where !== '' ? where.replace(/\/+$/, '').split('/').at(-1)! : name.replace('/', '__')
  return `token_classifier/${base}`
}

/** Parses and checks a manifest's text (ours or the Python tools'); a reason when it is not usable. */
export function parseManifest(text: string, kind: Manifest['kind']): ReadManifest | { invalid: string } {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    return { invalid: `not JSON (${(error as Error).message})` }
  }
  if (!isRecord(data)) return { invalid: 'not a JSON object' }
  const ours = data.schema_version !== undefined
  if (ours && data.schema_version !== SCHEMA_VERSION)
    return { invalid: `schema_version ${String(data.schema_version)}, expected ${SCHEMA_VERSION} (rerun the download to rewrite it)` }
  if (ours && data.kind !== kind) return { invalid: `a ${String(data.kind)} manifest, not a ${kind} manifest` }
  if (
    ours &&
    (!Array.isArray(data.files) ||
      !data.files.every((f) => isRecord(f) && isRelative(f.path) && typeof f.size === 'number' && typeof f.sha256 === 'string'))
  ) {
    return { invalid: 'its "files" list is missing or malformed' }
  }
  const read: ReadManifest = {
    kind,
    writer: ours ? 'remote-eval' : 'python-tools',
    files: ours ? (data.files as ManifestFile[]) : null,
    models: [],
    datasets: [],
  }
  if (kind === 'models') {
    const models = data.token_classifier_models
    if (!isRecord(models)) return { invalid: '"token_classifier_models" (model name -> path) is missing; is this a datasets manifest?' }
    const trees = isRecord(data.checksums) && isRecord(data.checksums.token_classifier_models) ? data.checksums.token_classifier_models : {}
    const revisions = ours && Array.isArray(data.revisions) ? (data.revisions as ModelRevision[]) : []
    for (const [name, where] of Object.entries(models)) {
      const revision = revisions.find((r) => r.model_name === name)
      const path = revision && MODEL_DIR.test(revision.path) ? revision.path : rebaseModelPath(name, where)
      const tree =
        isRecord(trees[name]) && typeof trees[name].sha256_tree === 'string' ? (trees[name] as unknown as TreeChecksum) : undefined
      read.models.push({ name, path, revision: revision?.revision, sha: revision?.sha, tree })
    }
  } else {
    if (!Array.isArray(data.datasets)) return { invalid: '"datasets" list is missing; is this a models manifest?' }
    for (const entry of data.datasets) {
      if (isRecord(entry) && typeof entry.hf_id === 'string' && typeof entry.split === 'string') {
        read.datasets.push({
          hf_id: entry.hf_id,
          split: entry.split,
          sha: typeof entry.sha === 'string' ? entry.sha : null,
          ...(typeof entry.dataset_id === 'string' && { dataset_id: entry.dataset_id }),
          ...(typeof entry.rows === 'number' && { rows: entry.rows }),
        })
      }
    }
  }
  return read
}

/** sha256_tree as download_models.py computes it, from (relative path, sha256) pairs. */
export function sha256Tree(files: ReadonlyArray<{ path: string; sha256: string }>): string {
  const lines = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)).map((f) => `${f.path}:${f.sha256}`)
  return createHash('sha256').update(lines.join('\n')).digest('hex')
}

/** Our models manifest for a directory (its absolute path on the target) from each model's files. */
export function modelsManifest(options: {
  dir: string
  policyPath: string
  models: Array<ModelRevision & { files: ManifestFile[] }>
}): ModelsManifest {
  const { dir, models } = options
  const inside = (model: { path: string; files: ManifestFile[] }) =>
    model.files.map((f) => ({ ...f, path: f.path.slice(model.path.length + 1) }))
  return {
    schema_version: SCHEMA_VERSION,
    kind: 'models',
    generated_at_utc: utcNow(),
    policy_path: options.policyPath,
    token_classifier_models: Object.fromEntries(models.map((m) => [m.model_name, `${dir}/${m.path}`])),
    checksums: {
      token_classifier_models: Object.fromEntries(
        models.map((m) => [m.model_name, { path: `${dir}/${m.path}`, sha256_tree: sha256Tree(inside(m)), files: m.files.length }]),
      ),
    },
    revisions: models.map(({ model_name, revision, sha, path }) => ({ model_name, revision, sha, path })),
    files: models.flatMap((m) => m.files),
  }
}

/** Our datasets manifest for a directory (its absolute path on the target); the cache is its hf_cache. */
export function datasetsManifest(options: {
  dir: string
  registryPath: string
  suite: string
  splits: string[]
  datasets: DatasetEntry[]
  files: ManifestFile[]
}): DatasetsManifest {
  return {
    schema_version: SCHEMA_VERSION,
    kind: 'datasets',
    generated_at_utc: utcNow(),
    registry_path: options.registryPath,
    suite: options.suite,
    splits: options.splits,
    datasets: options.datasets,
    cache_root: `${options.dir}/hf_cache`,
    cache_size_bytes: options.files.reduce((sum, f) => sum + f.size, 0),
    files: options.files,
  }
}

/** Reads `manifest.json` of a directory on the target; null when there is none. */
export async function readManifestText(transport: Transport, dir: string): Promise<string | null> {
  const result = await transport.run(`[ -f "$1/manifest.json" ] || exit ${RemoteStatus.absent}; cat -- "$1/manifest.json"`, [dir])
  if (result.exitCode === RemoteStatus.absent) return null
  if (result.exitCode !== 0)
    throw new TransportError(`Cannot read ${dir}/${MANIFEST_NAME} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  return result.stdout
}

/**
 * Writes `manifest.json` atomically: to a temp file in the same directory, then renamed, so a
 * reader sees the old manifest, the new one, or none; never half of one.
 */
export async function writeManifest(transport: Transport, dir: string, manifest: Manifest): Promise<void> {
  const script = 'set -e; tmp="$1/.manifest.json.tmp.$$"; cat > "$tmp"; mv -f -- "$tmp" "$1/manifest.json"'
  const result = await transport.run(script, [dir], { stdin: `${JSON.stringify(manifest, null, 2)}\n` })
  if (result.exitCode !== 0)
    throw new TransportError(`Cannot write ${dir}/${MANIFEST_NAME} on ${transport.target}: ${lastLine(result.stderrTail)}`)
}

/** Removes a manifest (before a download changes the directory it describes). */
export async function removeManifest(transport: Transport, dir: string): Promise<void> {
  await transport.run('rm -f -- "$1/manifest.json"', [dir])
}
