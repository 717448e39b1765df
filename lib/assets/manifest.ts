import { TransportError } from '../cli/errors.ts'
import { lastLine } from '../transport/tree.ts'
import type { Transport } from '../transport/types.ts'

// The one manifest module: what a models or datasets directory holds, in `manifest.json` at its
// root. It keeps the keys the repo's Python tools wrote and adds `schema_version` and a per-file
// list (path, size, sha256) so completeness is checked without reading the data. Paths are
// relative to the directory, which is prepared on one machine and mounted at another path
// elsewhere (/mnt/models in a pod); absolute paths appear only as information.

export const MANIFEST_NAME = 'manifest.json'
export const SCHEMA_VERSION = 1

export interface ManifestFile {
  path: string
  size: number
  sha256: string
}

export interface ModelEntry {
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
  /** Information only: where the policy was read. */
  policy_path: string
  token_classifier_models: ModelEntry[]
  /** Relative path -> sha256, as the Python tools wrote it. */
  checksums: Record<string, string>
  files: ManifestFile[]
}

export interface DatasetEntry {
  hf_id: string
  split: string
  /** The dataset repo commit the split was prepared from. */
  sha: string
  rows: number
  /** Relative to the datasets dir: the cache HF_HOME points at (hf_cache). */
  cache_root: string
}

export interface DatasetsManifest {
  schema_version: number
  kind: 'datasets'
  generated_at_utc: string
  /** Information only: where the suites file was read. */
  registry_path: string
  suite: string
  splits: string[]
  datasets: DatasetEntry[]
  files: ManifestFile[]
}

export type Manifest = ModelsManifest | DatasetsManifest

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isRelative = (p: unknown) => typeof p === 'string' && p !== '' && !p.startsWith('/') && !p.split('/').includes('..')

/** Parses and checks a manifest's text; returns a reason instead when it is not a usable one. */
export function parseManifest<K extends Manifest['kind']>(text: string, kind: K): Extract<Manifest, { kind: K }> | { invalid: string } {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (error) {
    return { invalid: `not JSON (${(error as Error).message})` }
  }
  if (!isRecord(data)) return { invalid: 'not a JSON object' }
  if (data.schema_version !== SCHEMA_VERSION) return { invalid: `schema_version ${String(data.schema_version)}, expected ${SCHEMA_VERSION} (rerun the download to rewrite it)` }
  if (data.kind !== kind) return { invalid: `a ${String(data.kind)} manifest, not a ${kind} manifest` }
  if (!Array.isArray(data.files) || !data.files.every((f) => isRecord(f) && isRelative(f.path) && typeof f.size === 'number' && typeof f.sha256 === 'string')) {
    return { invalid: 'its "files" list is missing or malformed' }
  }
  const list = kind === 'models' ? data.token_classifier_models : data.datasets
  if (!Array.isArray(list)) return { invalid: `its "${kind === 'models' ? 'token_classifier_models' : 'datasets'}" list is missing` }
  return data as unknown as Extract<Manifest, { kind: K }>
}

/** Reads `manifest.json` of a directory on the target; null when there is none. */
export async function readManifestText(transport: Transport, dir: string): Promise<string | null> {
  const result = await transport.run('[ -f "$1/manifest.json" ] || exit 3; cat -- "$1/manifest.json"', [dir])
  if (result.exitCode === 3) return null
  if (result.exitCode !== 0) throw new TransportError(`Cannot read ${dir}/${MANIFEST_NAME} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  return result.stdout
}

/**
 * Writes `manifest.json` atomically: to a temp file in the same directory, then renamed, so a
 * reader sees the old manifest, the new one, or none; never half of one.
 */
export async function writeManifest(transport: Transport, dir: string, manifest: Manifest): Promise<void> {
  const script = 'set -e; tmp="$1/.manifest.json.tmp.$$"; cat > "$tmp"; mv -f -- "$tmp" "$1/manifest.json"'
  const result = await transport.run(script, [dir], { stdin: `${JSON.stringify(manifest, null, 2)}\n` })
  if (result.exitCode !== 0) throw new TransportError(`Cannot write ${dir}/${MANIFEST_NAME} on ${transport.target}: ${lastLine(result.stderrTail)}`)
}

/** Removes a manifest (before a download changes the directory it describes). */
export async function removeManifest(transport: Transport, dir: string): Promise<void> {
  await transport.run('rm -f -- "$1/manifest.json"', [dir])
}

/** The UTC timestamp format of the Python tools: 2026-11-28T10:16:32Z. */
export function utcNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z')
}
