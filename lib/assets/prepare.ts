import { ExitCode, RemoteEvalError, TransportError } from '../core/errors.ts'
import { silentLogger, type Logger } from '../core/log.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import type { PythonEnv } from '../target/uv.ts'
import { takeTargetLock } from '../target/lock.ts'
import {
  fetchAll,
  hubEnv,
  badAssetDir,
  readRecords,
  recordKey,
  summaryTable,
  writeRecord,
  type FetchJob,
  type FetchOutcome,
  type FetchResult,
} from './fetch.ts'
import {
  MANIFEST_NAME,
  datasetsManifest,
  modelsManifest,
  parseManifest,
  readManifestText,
  removeManifest,
  writeManifest,
  type DatasetsManifest,
  type Manifest,
  type ManifestFile,
  type ModelsManifest,
} from './manifest.ts'
import { modelDirName, type DatasetNeeds, type DatasetRef, type ModelRef } from './registry.ts'
import {
  FRESH_DATASETS_SCRIPT,
  checkFiles,
  describeReport,
  isComplete,
  listPreparedDir,
  listPreparedDirs,
  parsePreparedDirs,
  uncoveredDatasets,
  uncoveredModels,
  type Listing,
  type VerifyReport,
} from './verify.ts'

// The asset engine: download what a suite needs into a models or datasets directory over any
// transport, then write its manifest last; or check a directory against its manifest. The same
// code serves the make targets (local transport) and the runners (SSH, kubectl).

/** Where the datasets cache lives inside a datasets dir, and the variables that point at it. */
export const DATASETS_CACHE = 'hf_cache'

export function datasetsCacheEnv(datasetsDir: string): Record<string, string> {
  const home = `${datasetsDir}/${DATASETS_CACHE}`
  return { HF_HOME: home, HUGGINGFACE_HUB_CACHE: `${home}/hub`, HF_DATASETS_CACHE: `${home}/datasets` }
}

interface ModelRecord {
  model_name: string
  revision: string
  sha: string
  path: string
  files: ManifestFile[]
}

interface DatasetRecord {
  hf_id: string
  revision: string
  sha: string
  rows: Record<string, number>
  fingerprints?: Record<string, string | null>
  files: ManifestFile[]
}

interface Common {
  transport: Transport
  python: PythonEnv
  /** Repos fetched at once. */
  concurrency?: number
  token?: string
  /** More environment for fetch.py on the target (HF_TOKEN_PATH: a token stored by `hf auth login`). */
  extraEnv?: Record<string, string>
  /** The target's .env.eval: HF_TOKEN is read from it when the target's environment has none. */
  envFile?: string
  logger?: Logger
  /** false (--no-wait): fail at once when another runner is downloading into the directory. */
  wait?: boolean
}

/**
 * Runs `work` holding the directory's download lock on the target, so runners downloading into one
 * directory (from this host, or from any host or pod that mounts it) take turns: the next one
 * finds the repos the first fetched recorded, and fetches nothing again.
 */
async function underDownloadLock<T>(
  options: Common & { dir: string; step: 'models' | 'datasets'; flag: string },
  work: () => Promise<T>,
): Promise<T> {
  // The directory is made and checked in the same round trip, before the lock that lives in it.
  const { transport, dir, flag } = options
  const lock = await takeTargetLock(transport, {
    remoteDir: dir,
    downloads: { badDirectory: (why) => badAssetDir({ flag, dir, target: transport.target }, why) },
    wait: options.wait ?? true,
    library: '',
    fn: 'true',
    args: [],
    logger: options.logger ?? silentLogger,
    step: options.step,
  })
  try {
    return await work()
  } finally {
    await lock.release()
  }
}

/** A record counts only when every file it lists is there at its size. */
const intact = (files: readonly ManifestFile[], listing: Listing | null) =>
  listing !== null && files.every((f) => listing.sizes.get(f.path) === f.size)

/**
 * The table of what happened (one line instead when every repo was in place); the first failure
 * decides the exit. Returns whether nothing had to be fetched.
 */
function finish(
  outcomes: FetchOutcome[],
  bytesOf: (o: FetchOutcome) => number,
  { logger, step }: { logger: Logger; step: 'models' | 'datasets' },
): boolean {
  if (outcomes.every((o) => o.result?.status === 'skipped')) return true
  logger.step(
    step,
    summaryTable(
      outcomes.map((o) => ({
        label: o.job.label,
        status: o.error ? 'failed' : o.result!.status,
        bytes: o.error ? 0 : bytesOf(o),
        seconds: o.seconds,
      })),
    ),
  )
  const failed = outcomes.find((o) => o.error)
  if (failed) throw failed.error as RemoteEvalError
  return false
}

/** What differs between preparing models and datasets; the steps around it are the same. */
interface FetchKind<Need, R extends { files: ManifestFile[] }> {
  kind: Manifest['kind']
  mode: 'model' | 'dataset'
  needs: readonly Need[]
  /** The repo and revision of a need. */
  repo: (need: Need) => { repoId: string; revision: string }
  /** fetch.py's arguments for a need; `known` is its record when still intact on the target. */
  args: (need: Need, known: R | undefined) => string[]
  /** The record of a fresh fetch (`before`: the record it replaces, if any). */
  record: (need: Need, result: FetchResult, before: R | undefined) => R
  env: Record<string, string>
}

/**
 * Fetches what the directory lacks: reads the completion records, skips repos still intact, drops
 * the manifest (the directory may change now), fetches the rest, records each as it finishes.
 * Returns one record per need, in order, and the repos' labels when all were in place already;
 * throws after the summary table when any fetch failed.
 */
async function fetchMissing<Need, R extends { files: ManifestFile[] }>(
  options: Common & { dir: string },
  spec: FetchKind<Need, R>,
): Promise<{ entries: R[]; inPlace: string[] | null }> {
  const { transport, dir } = options
  const logger = options.logger ?? silentLogger
  const records = (await readRecords(transport, dir, spec.kind)) as Map<string, R>
  const listing = await listPreparedDir(transport, dir, null)
  const jobs: FetchJob[] = spec.needs.map((need) => {
    const { repoId, revision } = spec.repo(need)
    const key = recordKey(repoId, revision)
    const record = records.get(key)
    return {
      key,
      label: `${repoId}@${revision}`,
      repoId,
      args: spec.args(need, record && intact(record.files, listing) ? record : undefined),
    }
  })
  await removeManifest(transport, dir)
  const outcomes = await fetchAll({
    ...options,
    mode: spec.mode,
    jobs,
    logger,
    step: spec.kind,
    concurrency: options.concurrency ?? 4,
    env: () => hubEnv({ ...spec.env, ...options.extraEnv }, options.token),
  })
  for (const { job, result } of outcomes) {
    if (result?.status !== 'fetched') continue
    const record = spec.record(spec.needs[jobs.indexOf(job)]!, result, records.get(job.key))
    records.set(job.key, record)
    await writeRecord(transport, { dir, kind: spec.kind, key: job.key }, record)
  }
  const inPlace = finish(outcomes, (o) => (records.get(o.job.key)?.files ?? []).reduce((sum, f) => sum + f.size, 0), {
    logger,
    step: spec.kind,
  })
  return { entries: jobs.map((job) => records.get(job.key)!), inPlace: inPlace ? jobs.map((job) => job.label) : null }
}

/** Writes the manifest (last, atomically), then reads the directory back against it. */
async function writeAndVerify(
  options: Common & { dir: string },
  manifest: Manifest,
  { counts, needs, inPlace }: { counts: string; needs: CheckRequest['needs']; inPlace: string[] | null },
): Promise<void> {
  const logger = options.logger ?? silentLogger
  await writeManifest(options.transport, options.dir, manifest)
  const report = await checkPreparedDir({ transport: options.transport, dir: options.dir, kind: manifest.kind, needs, checksums: false })
  // Everything was in place: one line says so (the manifest written again is the same).
  if (inPlace && isComplete(report)) {
    logger.step(manifest.kind, `all in place, nothing fetched: ${inPlace.join(', ')} at their recorded commits; ${describeReport(report)}`)
    return
  }
  logger.step(manifest.kind, `wrote ${options.dir}/${MANIFEST_NAME} (${counts})`)
  logger.step(manifest.kind, `verified: ${describeReport(report)}`)
  if (!isComplete(report)) {
    throw new RemoteEvalError(describeReport(report), manifest.kind === 'models' ? ExitCode.modelsMissing : ExitCode.datasetsMissing)
  }
}

/** Downloads the models the policy needs into modelsDir/token_classifier/<org>__<name>, then its manifest. */
export async function downloadModels(
  options: Common & { modelsDir: string; needs: ModelRef[]; policyPath: string },
): Promise<ModelsManifest> {
  return underDownloadLock({ ...options, dir: options.modelsDir, step: 'models', flag: '--models-dir' }, () => fetchModels(options))
}

async function fetchModels(options: Common & { modelsDir: string; needs: ModelRef[]; policyPath: string }): Promise<ModelsManifest> {
  const dir = options.modelsDir
  const { entries, inPlace } = await fetchMissing<ModelRef, ModelRecord>(
    { ...options, dir },
    {
      kind: 'models',
      mode: 'model',
      needs: options.needs,
      env: { HF_HOME: `${dir}/.cache/huggingface` },
      repo: (need) => need,
      args: (need, known) => [need.repoId, need.revision, `${dir}/${modelDirName(need.repoId)}`, known?.sha ?? ''],
      record: (need, result) => {
        const path = modelDirName(need.repoId)
        return {
          model_name: need.repoId,
          revision: need.revision,
          sha: result.sha,
          path,
          files: (result.files ?? []).map((f) => ({ ...f, path: `${path}/${f.path}` })),
        }
      },
    },
  )
  const manifest = modelsManifest({ dir, policyPath: options.policyPath, models: entries })
  const files = manifest.files
  await writeAndVerify({ ...options, dir }, manifest, {
    counts: `${entries.length} models, ${files.length} files`,
    needs: { models: options.needs },
    inPlace,
  })
  return manifest
}

/**
 * Prepares every split of the suite's datasets under datasetsDir/hf_cache, then its manifest;
 * with fresh (--fresh-cache), after forgetting what was prepared of them.
 */
export async function downloadDatasets(
  options: Common & { datasetsDir: string; needs: DatasetNeeds; fresh?: boolean },
): Promise<DatasetsManifest> {
  return underDownloadLock({ ...options, dir: options.datasetsDir, step: 'datasets', flag: '--datasets-dir' }, async () => {
    if (options.fresh) await clearDatasetsCache(options)
    return fetchDatasets(options)
  })
}

async function fetchDatasets(options: Common & { datasetsDir: string; needs: DatasetNeeds }): Promise<DatasetsManifest> {
  const { datasetsDir: dir, needs } = options
  const { entries, inPlace } = await fetchMissing<DatasetRef, DatasetRecord>(
    { ...options, dir },
    {
      kind: 'datasets',
      mode: 'dataset',
      needs: needs.datasets,
      env: datasetsCacheEnv(dir),
      // A record vouches for its repo only if it has every split asked for.
      repo: (dataset) => ({ repoId: dataset.hfId, revision: dataset.revision }),
      args: (dataset, known) => [
        dataset.hfId,
        dataset.revision,
        needs.splits.join(','),
        `${dir}/${DATASETS_CACHE}`,
        known && needs.splits.every((split) => known.rows[split] !== undefined) ? known.sha : '',
      ],
      record: (dataset, result, before) => ({
        hf_id: dataset.hfId,
        revision: dataset.revision,
        sha: result.sha,
        rows: { ...(before?.sha === result.sha ? before.rows : {}), ...result.rows },
        fingerprints: { ...(before?.sha === result.sha ? before.fingerprints : {}), ...result.fingerprints },
        files: (result.files ?? []).map((f) => ({ ...f, path: `${DATASETS_CACHE}/${f.path}` })),
      }),
    },
  )
  const seen = new Set<string>()
  const manifest = datasetsManifest({
    dir,
    registryPath: needs.suitesPath,
    suite: needs.suite,
    splits: needs.splits,
    datasets: entries.flatMap((r, i) =>
      needs.splits.map((split) => ({
        dataset_id: needs.datasets[i]!.id,
        hf_id: r.hf_id,
        split,
        sha: r.sha,
        fingerprint: r.fingerprints?.[split] ?? null,
        rows: r.rows[split] ?? 0,
      })),
    ),
    files: entries.flatMap((r) => r.files).filter((f) => !seen.has(f.path) && seen.add(f.path)),
  })
  await writeAndVerify({ ...options, dir }, manifest, {
    counts: `${manifest.datasets.length} splits, ${manifest.files.length} files`,
    needs: { datasets: needs },
    inPlace,
  })
  return manifest
}

interface CheckRequest {
  dir: string
  kind: Manifest['kind']
  needs: { models?: ModelRef[]; datasets?: DatasetNeeds }
}

/** The report for one directory from its manifest text and listing (the reading is done elsewhere). */
function reportFor(request: CheckRequest, read: { text: string | null; listing: Listing | null }, checksums: boolean): VerifyReport {
  const { text, listing } = read
  const { dir, kind, needs } = request
  const report: VerifyReport = {
    dir,
    kind,
    problems: { missing: [], truncated: [], grown: [], mismatched: [] },
    uncovered: [],
    checkedFiles: 0,
    checkedBytes: 0,
    checksums,
  }
  if (!listing) return { ...report, noManifest: 'the directory does not exist' }
  if (text === null)
    return { ...report, noManifest: `no ${MANIFEST_NAME} (the directory was never prepared, or a download did not finish)` }
  const manifest = parseManifest(text, kind)
  if ('invalid' in manifest) return { ...report, noManifest: `${MANIFEST_NAME} is not usable: ${manifest.invalid}` }
  report.writer = manifest.writer
  if (kind === 'datasets') report.datasets = manifest.datasets
  report.problems = checkFiles(manifest, listing)
  report.checkedFiles = manifest.files?.length ?? 0
  report.checkedBytes = (manifest.files ?? []).reduce((sum, f) => sum + f.size, 0)
  if (kind === 'models' && needs.models) report.uncovered = uncoveredModels(manifest, needs.models)
  if (kind === 'datasets' && needs.datasets) report.uncovered = uncoveredDatasets(manifest, needs.datasets)
  return report
}

/** Checks a prepared directory against its manifest (sizes; content too with checksums) and coverage. */
export async function checkPreparedDir(options: CheckRequest & { transport: Transport; checksums: boolean }): Promise<VerifyReport> {
  const { transport, dir, checksums } = options
  if (!checksums) return (await checkPreparedDirs(transport, [options]))[0]!
  const text = await readManifestText(transport, dir)
  const manifest = text === null ? null : parseManifest(text, options.kind)
  let hashPaths: string[] = []
  if (manifest && !('invalid' in manifest)) {
    // Ours: the files it lists. The Python tools': every file under each model's directory (its sha256_tree).
    const sizes = manifest.files ? null : await listPreparedDir(transport, dir, null)
    hashPaths =
      manifest.files?.map((f) => f.path) ??
      [...(sizes?.sizes.keys() ?? [])].filter((p) => manifest.models.some((m) => p.startsWith(`${m.path}/`)))
  }
  return reportFor(options, { text, listing: await listPreparedDir(transport, dir, hashPaths) }, true)
}

/**
 * Checks several directories by size, in one round trip; none when `listed` is what
 * list_prepared_dirs already printed for them (the eval's preflight lists them).
 */
export async function checkPreparedDirs(transport: Transport, requests: readonly CheckRequest[], listed?: string): Promise<VerifyReport[]> {
  const dirs = requests.map((r) => r.dir)
  const read = listed === undefined ? await listPreparedDirs(transport, dirs) : parsePreparedDirs(listed, dirs.length)
  return requests.map((request, i) => reportFor(request, { text: read[i]!.manifest, listing: read[i]!.listing }, false))
}

export interface StaleDataset {
  hf_id: string
  /** The commit the manifest says it was prepared from (null: the manifest does not say). */
  prepared: string | null
  current: string
}

/**
 * Online: which datasets of a prepared directory the Hub has moved past (a rebalanced fast split,
 * a fixed card): their cache holds another commit than the revision is at now.
 */
export async function staleDatasets(options: Common & { datasetsDir: string; needs: DatasetNeeds }): Promise<StaleDataset[]> {
  const text = await readManifestText(options.transport, options.datasetsDir)
  const manifest = text === null ? null : parseManifest(text, 'datasets')
  if (!manifest || 'invalid' in manifest) return []
  const jobs = options.needs.datasets.map((d) => ({
    key: recordKey(d.hfId, d.revision),
    label: `${d.hfId}@${d.revision}`,
    repoId: d.hfId,
    args: ['dataset', d.hfId, d.revision],
  }))
  const outcomes = await fetchAll({
    ...options,
    mode: 'head',
    jobs,
    logger: options.logger ?? silentLogger,
    step: 'datasets',
    concurrency: options.concurrency ?? 4,
    env: () => hubEnv({ ...options.extraEnv }, options.token),
  })
  const failed = outcomes.find((o) => o.error)
  if (failed) throw failed.error as RemoteEvalError
  return outcomes.flatMap(({ job, result }) => {
    const prepared = manifest.datasets.find((d) => d.hf_id === job.repoId)?.sha ?? null
    return prepared === result!.sha ? [] : [{ hf_id: job.repoId, prepared, current: result!.sha }]
  })
}

/** --fresh-cache: forgets the datasets' caches, the manifest and the download records in datasetsDir (nothing else there). */
async function clearDatasetsCache(options: {
  transport: Transport
  datasetsDir: string
  needs: DatasetNeeds
  logger?: Logger
}): Promise<void> {
  const { transport, datasetsDir } = options
  const result = await transport.run(FRESH_DATASETS_SCRIPT, [datasetsDir, ...options.needs.datasets.map((d) => d.hfId)])
  if (result.exitCode !== 0)
    throw new TransportError(`Could not clear ${datasetsDir}/${DATASETS_CACHE} on ${transport.target}: ${lastLine(result.stderrTail)}`)
  ;(options.logger ?? silentLogger).step(
    'datasets',
    `--fresh-cache: removed the suite's datasets from ${datasetsDir}/${DATASETS_CACHE} (nothing else there), the manifest and the download records; they are prepared again`,
  )
}
