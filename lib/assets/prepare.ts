import { ExitCode, RemoteEvalError } from '../cli/errors.ts'
import { silentLogger, type Logger } from '../log.ts'
import type { Transport } from '../transport/types.ts'
import type { PythonEnv } from '../uv.ts'
import { fetchAll, hubEnv, prepareAssetDir, readRecords, recordKey, summaryTable, writeRecord, type FetchJob, type FetchOutcome } from './fetch.ts'
import {
  MANIFEST_NAME, SCHEMA_VERSION, parseManifest, readManifestText, removeManifest, utcNow, writeManifest,
  type DatasetsManifest, type Manifest, type ManifestFile, type ModelsManifest,
} from './manifest.ts'
import { modelDirName, type DatasetNeeds, type ModelRef } from './registry.ts'
import { checkFiles, describeReport, isComplete, listPreparedDir, listPreparedDirs, uncoveredDatasets, uncoveredModels, type Listing, type VerifyReport } from './verify.ts'

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
  files: ManifestFile[]
}

interface Common {
  transport: Transport
  python: PythonEnv
  /** Repos fetched at once. */
  concurrency?: number
  token?: string
  /** More environment for fetch.py on the target (GR_ENV_FILE: where a remote .env.eval is). */
  extraEnv?: Record<string, string>
  logger?: Logger
}

/** A record counts only when every file it lists is there at its size. */
const intact = (files: readonly ManifestFile[], listing: Listing | null) => listing !== null && files.every((f) => listing.sizes.get(f.path) === f.size)

/** What to tell when some repos failed: the table is printed; the first failure decides the exit. */
function finish(outcomes: FetchOutcome[], bytesOf: (o: FetchOutcome) => number, logger: Logger, step: 'models' | 'datasets') {
  logger.step(step, summaryTable(outcomes.map((o) => ({
    label: o.job.label,
    status: o.error ? 'failed' : o.result!.status,
    bytes: o.error ? 0 : bytesOf(o),
    seconds: o.seconds,
  }))))
  const failed = outcomes.find((o) => o.error)
  if (failed) throw failed.error as RemoteEvalError
}

/** Downloads the models the policy needs into modelsDir/token_classifier/<org>__<name>, then its manifest. */
export async function downloadModels(options: Common & { modelsDir: string; needs: ModelRef[]; policyPath: string }): Promise<ModelsManifest> {
  const { transport, modelsDir: dir } = options
  const logger = options.logger ?? silentLogger
  await prepareAssetDir(transport, dir, '--models-dir')
  const records = (await readRecords(transport, dir, 'models')) as Map<string, ModelRecord>
  const listing = await listPreparedDir(transport, dir, null)
  const jobs: FetchJob[] = options.needs.map((need) => {
    const key = recordKey(need.repoId, need.revision)
    const record = records.get(key)
    const knownSha = record && intact(record.files, listing) ? record.sha : ''
    return { key, label: `${need.repoId}@${need.revision}`, repoId: need.repoId, args: [need.repoId, need.revision, `${dir}/${modelDirName(need.repoId)}`, knownSha] }
  })
  // From here on the directory may change: a manifest must not vouch for it until the end.
  await removeManifest(transport, dir)
  const outcomes = await fetchAll({
    ...options, mode: 'model', jobs, logger, step: 'models', concurrency: options.concurrency ?? 4,
    env: () => hubEnv({ HF_HOME: `${dir}/.cache/huggingface`, ...options.extraEnv }, options.token),
  })
  for (const { job, result } of outcomes) {
    if (result?.status !== 'fetched') continue
    const need = options.needs[jobs.indexOf(job)]!
    const path = modelDirName(need.repoId)
    const record: ModelRecord = { model_name: need.repoId, revision: need.revision, sha: result.sha, path, files: (result.files ?? []).map((f) => ({ ...f, path: `${path}/${f.path}` })) }
    records.set(job.key, record)
    await writeRecord(transport, dir, 'models', job.key, record)
  }
  finish(outcomes, (o) => (records.get(o.job.key)?.files ?? []).reduce((sum, f) => sum + f.size, 0), logger, 'models')

  const entries = jobs.map((job) => records.get(job.key)!)
  const files = entries.flatMap((r) => r.files)
  const manifest: ModelsManifest = {
    schema_version: SCHEMA_VERSION,
    kind: 'models',
    generated_at_utc: utcNow(),
    policy_path: options.policyPath,
    token_classifier_models: entries.map(({ model_name, revision, sha, path }) => ({ model_name, revision, sha, path })),
    checksums: Object.fromEntries(files.map((f) => [f.path, f.sha256])),
    files,
  }
  await writeManifest(transport, dir, manifest)
  logger.step('models', `wrote ${dir}/${MANIFEST_NAME} (${entries.length} models, ${files.length} files)`)
  await verifyWritten({ transport, dir, kind: 'models', needs: { models: options.needs } }, logger)
  return manifest
}

/** Prepares every split of the suite's datasets under datasetsDir/hf_cache, then its manifest. */
export async function downloadDatasets(options: Common & { datasetsDir: string; needs: DatasetNeeds }): Promise<DatasetsManifest> {
  const { transport, datasetsDir: dir, needs } = options
  const logger = options.logger ?? silentLogger
  await prepareAssetDir(transport, dir, '--datasets-dir')
  const records = (await readRecords(transport, dir, 'datasets')) as Map<string, DatasetRecord>
  const listing = await listPreparedDir(transport, dir, null)
  const jobs: FetchJob[] = needs.datasets.map((dataset) => {
    const key = recordKey(dataset.hfId, dataset.revision)
    const record = records.get(key)
    const hasSplits = record && needs.splits.every((split) => record.rows[split] !== undefined)
    const knownSha = record && hasSplits && intact(record.files, listing) ? record.sha : ''
    const args = [dataset.hfId, dataset.revision, needs.splits.join(','), `${dir}/${DATASETS_CACHE}`, knownSha]
    return { key, label: `${dataset.hfId}@${dataset.revision}`, repoId: dataset.hfId, args }
  })
  await removeManifest(transport, dir)
  const outcomes = await fetchAll({
    ...options, mode: 'dataset', jobs, logger, step: 'datasets', concurrency: options.concurrency ?? 4,
    env: () => hubEnv({ ...datasetsCacheEnv(dir), ...options.extraEnv }, options.token),
  })
  for (const { job, result } of outcomes) {
    if (result?.status !== 'fetched') continue
    const dataset = needs.datasets[jobs.indexOf(job)]!
    const before = records.get(job.key)
    const record: DatasetRecord = {
      hf_id: dataset.hfId, revision: dataset.revision, sha: result.sha,
      rows: { ...(before?.sha === result.sha ? before.rows : {}), ...result.rows },
      files: (result.files ?? []).map((f) => ({ ...f, path: `${DATASETS_CACHE}/${f.path}` })),
    }
    records.set(job.key, record)
    await writeRecord(transport, dir, 'datasets', job.key, record)
  }
  finish(outcomes, (o) => (records.get(o.job.key)?.files ?? []).reduce((sum, f) => sum + f.size, 0), logger, 'datasets')

  const entries = jobs.map((job) => records.get(job.key)!)
  const seen = new Set<string>()
  const manifest: DatasetsManifest = {
    schema_version: SCHEMA_VERSION,
    kind: 'datasets',
    generated_at_utc: utcNow(),
    registry_path: needs.suitesPath,
    suite: needs.suite,
    splits: needs.splits,
    datasets: entries.flatMap((r) => needs.splits.map((split) => ({ hf_id: r.hf_id, split, sha: r.sha, rows: r.rows[split] ?? 0, cache_root: DATASETS_CACHE }))),
    files: entries.flatMap((r) => r.files).filter((f) => !seen.has(f.path) && seen.add(f.path)),
  }
  await writeManifest(transport, dir, manifest)
  logger.step('datasets', `wrote ${dir}/${MANIFEST_NAME} (${manifest.datasets.length} splits, ${manifest.files.length} files)`)
  await verifyWritten({ transport, dir, kind: 'datasets', needs: { datasets: needs } }, logger)
  return manifest
}

/** After a download: the directory, read back, matches the manifest just written (sizes and coverage). */
async function verifyWritten(options: Omit<Parameters<typeof checkPreparedDir>[0], 'checksums'>, logger: Logger) {
  const report = await checkPreparedDir({ ...options, checksums: false })
  logger.step(options.kind, `verified: ${describeReport(report)}`)
  if (!isComplete(report)) {
    throw new RemoteEvalError(describeReport(report), options.kind === 'models' ? ExitCode.modelsMissing : ExitCode.datasetsMissing)
  }
}

interface CheckRequest {
  dir: string
  kind: Manifest['kind']
  needs: { models?: ModelRef[]; datasets?: DatasetNeeds }
}

/** The report for one directory from its manifest text and listing (the reading is done elsewhere). */
function reportFor(request: CheckRequest, text: string | null, listing: Listing | null, checksums: boolean): VerifyReport {
  const { dir, kind, needs } = request
  const report: VerifyReport = { dir, kind, problems: { missing: [], truncated: [], mismatched: [] }, uncovered: [], checkedFiles: 0, checkedBytes: 0, checksums }
  if (!listing) return { ...report, noManifest: 'the directory does not exist' }
  if (text === null) return { ...report, noManifest: `no ${MANIFEST_NAME} (the directory was never prepared, or a download did not finish)` }
  const manifest = parseManifest(text, kind)
  if ('invalid' in manifest) return { ...report, noManifest: `${MANIFEST_NAME} is not usable: ${manifest.invalid}` }
  report.problems = checkFiles(manifest, listing)
  report.checkedFiles = manifest.files.length
  report.checkedBytes = manifest.files.reduce((sum, f) => sum + f.size, 0)
  if (manifest.kind === 'models' && needs.models) report.uncovered = uncoveredModels(manifest, needs.models)
  if (manifest.kind === 'datasets' && needs.datasets) report.uncovered = uncoveredDatasets(manifest, needs.datasets)
  return report
}

/** Checks a prepared directory against its manifest (sizes; content too with checksums) and coverage. */
export async function checkPreparedDir(options: CheckRequest & { transport: Transport; checksums: boolean }): Promise<VerifyReport> {
  const { transport, dir, checksums } = options
  if (!checksums) return (await checkPreparedDirs(transport, [options]))[0]!
  const text = await readManifestText(transport, dir)
  const manifest = text === null ? null : parseManifest(text, options.kind)
  const hashPaths = manifest && !('invalid' in manifest) ? manifest.files.map((f) => f.path) : []
  return reportFor(options, text, await listPreparedDir(transport, dir, hashPaths), true)
}

/** Checks several directories by size, in one round trip. */
export async function checkPreparedDirs(transport: Transport, requests: readonly CheckRequest[]): Promise<VerifyReport[]> {
  const read = await listPreparedDirs(transport, requests.map((r) => r.dir))
  return requests.map((request, i) => reportFor(request, read[i]!.manifest, read[i]!.listing, false))
}
