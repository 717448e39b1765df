import { LAYOUT_VARS } from '../core/layout.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import { TransportError } from '../core/errors.ts'
import { formatBytes } from '../core/units.ts'
import { sha256Tree, type Manifest, type ReadManifest } from './manifest.ts'
import type { DatasetNeeds, ModelRef } from './registry.ts'
import { RemoteStatus } from '../core/remote-status.ts'

// Checks a models or datasets directory against its manifest from a live listing gathered over
// any transport: sizes always (find), content only with --verify-checksums (sha256sum on the
// target, in parallel). Then whether the manifest covers what the suite needs.

export interface Listing {
  sizes: Map<string, number>
  hashes: Map<string, string> | null
}

const VERIFY_SH = loadBashLibrary(new URL('./verify.sh', import.meta.url))
const LIST_SCRIPT = callFunction(VERIFY_SH, 'list_prepared_dir', LAYOUT_VARS)
const LIST_MANY_SCRIPT = callFunction(VERIFY_SH, 'list_prepared_dirs', LAYOUT_VARS)
/** `datasets_dir org/name...`: the --fresh-cache reset of those datasets (see verify.sh). */
export const FRESH_DATASETS_SCRIPT = callFunction(VERIFY_SH, 'fresh_datasets_cache', LAYOUT_VARS)

/** The functions of list_prepared_dirs, for a script that lists the prepared directories in a round trip of its own. */
export const PREPARED_DIRS_LIBRARY = VERIFY_SH

/** Each directory's manifest text (null: none) and size listing (null: no such directory), in one round trip. */
export async function listPreparedDirs(
  transport: Transport,
  dirs: readonly string[],
): Promise<Array<{ manifest: string | null; listing: Listing | null }>> {
  const result = await transport.run(LIST_MANY_SCRIPT, [...dirs])
  if (result.exitCode !== 0)
    throw new TransportError(`Cannot list ${dirs.join(', ')} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  return parsePreparedDirs(result.stdout, dirs.length)
}

/** What list_prepared_dirs printed for `count` directories (verify.sh). */
export function parsePreparedDirs(stdout: string, count: number): Array<{ manifest: string | null; listing: Listing | null }> {
  const found = Array.from({ length: count }, () => ({
    manifest: null as string | null,
    listing: { sizes: new Map<string, number>(), hashes: null } as Listing | null,
  }))
  let current: (typeof found)[number] | undefined
  for (const record of stdout.split('\0')) {
    if (record.startsWith('D ')) current = found[Number(record.slice(2))]
    else if (!current) continue
    else if (record === 'X') current.listing = null
    else if (record.startsWith('M ')) current.manifest = record.slice(2)
    else if (record.startsWith('S ')) {
      const space = record.indexOf(' ', 2)
      current.listing?.sizes.set(record.slice(space + 1), Number(record.slice(2, space)))
    }
  }
  return found
}

/** Sizes of every file under dir, and sha256 of `hashPaths` when given; null when dir is missing. */
export async function listPreparedDir(transport: Transport, dir: string, hashPaths: readonly string[] | null): Promise<Listing | null> {
  const result = await transport.run(LIST_SCRIPT, [dir, hashPaths ? '1' : '0'], {
    stdin: hashPaths ? hashPaths.map((p) => `${p}\0`).join('') : undefined,
  })
  if (result.exitCode === RemoteStatus.noDirectory) return null
  if (result.exitCode !== 0) throw new TransportError(`Cannot list ${dir} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  const listing: Listing = { sizes: new Map(), hashes: hashPaths ? new Map() : null }
  for (const record of result.stdout.split('\0')) {
    const hashed = /^([0-9a-f]{64}) [ *](.*)$/s.exec(record)
    if (hashed) {
      listing.hashes?.set(hashed[2]!, hashed[1]!)
    } else if (record.startsWith('S ')) {
      const space = record.indexOf(' ', 2)
      listing.sizes.set(record.slice(space + 1), Number(record.slice(2, space)))
    }
  }
  return listing
}

export interface FileProblems {
  missing: string[]
  truncated: Array<{ path: string; expected: number; actual: number }>
  /** Larger than the manifest says: written to since, or another file under that name. */
  grown: Array<{ path: string; expected: number; actual: number }>
  mismatched: string[]
}

/** The files of a listing under a directory (relative to the listing's root), with their sha256 when hashed. */
const under = (listing: Listing, dir: string) => [...listing.sizes.keys()].filter((p) => p.startsWith(`${dir}/`))

/** An Arrow file of a split in the datasets cache, as load_dataset(cache_dir=hf_cache) leaves it. */
const arrowOf = (listing: Listing, hfId: string, split: string) => {
  const [org, name] = hfId.includes('/') ? hfId.split('/') : ['', hfId]
  const folder = `hf_cache/${org ? `${org}___${name}` : name}`
  const pattern = new RegExp(`-${split.replace(/[.]/g, '\\.')}(-\\d{5}-of-\\d{5})?\\.arrow$`)
  return { folder, found: under(listing, folder).some((p) => pattern.test(p)) }
}

/**
 * Compares a manifest with a listing. Ours: every file at its size (and sha256 when hashed). The
 * Python tools' (no file list): each model's directory is there and not empty (its sha256_tree
 * matches, when hashed); each dataset split has its Arrow file in the cache.
 */
export function checkFiles(manifest: ReadManifest, listing: Listing): FileProblems {
  const problems: FileProblems = { missing: [], truncated: [], grown: [], mismatched: [] }
  if (manifest.files) {
    for (const file of manifest.files) {
      const size = listing.sizes.get(file.path)
      if (size === undefined) problems.missing.push(file.path)
      else if (size !== file.size)
        problems[size < file.size ? 'truncated' : 'grown'].push({ path: file.path, expected: file.size, actual: size })
      else if (listing.hashes && listing.hashes.get(file.path) !== file.sha256) problems.mismatched.push(file.path)
    }
    return problems
  }
  for (const model of manifest.models) {
    const files = under(listing, model.path)
    if (!files.length) problems.missing.push(`${model.path}/ (${model.name}: absent or empty)`)
    else if (listing.hashes && model.tree) {
      const tree = sha256Tree(files.map((p) => ({ path: p.slice(model.path.length + 1), sha256: listing.hashes!.get(p) ?? '' })))
      if (tree !== model.tree.sha256_tree) problems.mismatched.push(`${model.path}/ (${model.name}: sha256_tree differs)`)
    }
  }
  for (const entry of manifest.datasets) {
    const arrow = arrowOf(listing, entry.hf_id, entry.split)
    if (!arrow.found) problems.missing.push(`${arrow.folder}/ (${entry.hf_id} split ${entry.split}: no Arrow file)`)
  }
  return problems
}

/** Models the policy needs that the manifest does not hold (at the revision asked for, where it says). */
export function uncoveredModels(manifest: ReadManifest, needs: readonly ModelRef[]): string[] {
  const holds = (need: ModelRef) =>
    manifest.models.some(
      (m) =>
        m.name === need.repoId && (m.revision === undefined || m.revision === need.revision || Boolean(m.sha?.startsWith(need.revision))),
    )
  return needs.filter((need) => !holds(need)).map((need) => `${need.repoId}@${need.revision}`)
}

/** Dataset splits the suite needs that the manifest does not hold. */
export function uncoveredDatasets(manifest: ReadManifest, needs: DatasetNeeds): string[] {
  const missing: string[] = []
  for (const dataset of needs.datasets) {
    for (const split of needs.splits) {
      if (!manifest.datasets.some((d) => d.hf_id === dataset.hfId && d.split === split)) missing.push(`${dataset.hfId} (split ${split})`)
    }
  }
  return missing
}

export interface VerifyReport {
  dir: string
  kind: Manifest['kind']
  /** Why there is no usable manifest (missing directory, no manifest, invalid one). */
  noManifest?: string
  problems: FileProblems
  uncovered: string[]
  checkedFiles: number
  checkedBytes: number
  checksums: boolean
  /** Who wrote the manifest, and so how deep the check could go. */
  writer?: ReadManifest['writer']
  /** A datasets manifest's splits as it lists them (their rows plan a --shard run). */
  datasets?: ReadManifest['datasets']
}

export const isComplete = (r: VerifyReport) =>
  !r.noManifest && !Object.values(r.problems).some((found) => found.length) && !r.uncovered.length

/** A report for people: what is wrong, file by file (the first few), and what is not covered. */
export function describeReport(report: VerifyReport): string {
  const { problems } = report
  if (report.noManifest) return `${report.kind} in ${report.dir}: ${report.noManifest}`
  if (isComplete(report) && report.writer === 'python-tools') {
    return (
      `${report.kind} in ${report.dir}: complete (a manifest of the eval repo's Python tools, without a file list: ` +
      (report.kind === 'models'
        ? `each model's directory is there and not empty${report.checksums ? ', sha256_tree verified' : ''})`
        : "each split's Arrow file is in the cache)")
    )
  }
  if (isComplete(report)) {
    return (
      `${report.kind} in ${report.dir}: complete (${report.checkedFiles} files, ${formatBytes(report.checkedBytes)}` +
      `${report.checksums ? ', checksums verified' : ', sizes checked'})`
    )
  }
  const lines = [`${report.kind} in ${report.dir} are incomplete:`]
  const some = <T>(items: T[], show: (item: T) => string) =>
    items
      .slice(0, 10)
      .map((i) => `  ${show(i)}`)
      .concat(items.length > 10 ? [`  ... and ${items.length - 10} more`] : [])
  lines.push(...some(problems.missing, (p) => `missing: ${p}`))
  lines.push(...some(problems.truncated, (t) => `truncated: ${t.path} (${t.actual} of ${t.expected} bytes)`))
  lines.push(...some(problems.grown, (t) => `larger than the manifest says: ${t.path} (${t.actual} bytes, not ${t.expected})`))
  lines.push(...some(problems.mismatched, (p) => `checksum mismatch: ${p}`))
  lines.push(...some(report.uncovered, (u) => `not in the manifest: ${u}`))
  return lines.join('\n')
}
