import path from 'node:path'
import { ExitCode, RemoteEvalError, UsageError, exitCodesHelp } from '../core/errors.ts'
import {
  formatFlags,
  listFlag,
  stringFlag,
  wholeNumberFlag,
  type FlagSpec,
  type FlagValues,
  projectDirFrom,
  STANDARD_FLAGS,
} from '../core/flags.ts'
import { pasteWord } from '../core/shell.ts'
import { envFilePairs, parseEnvFile, readEnvFileText } from '../target/envfile.ts'
import type { Logger } from '../core/log.ts'
import { LocalTransport } from '../transport/local.ts'
import { findPythonEnv } from '../target/uv.ts'
import { checkPreparedDir, downloadDatasets, downloadModels, staleDatasets } from '../assets/prepare.ts'
import { DEFAULT_POLICY, DEFAULT_SPLITS, DEFAULT_SUITE, DEFAULT_SUITES, readDatasetNeeds, readModelNeeds } from '../assets/registry.ts'
import { describeReport, isComplete, type VerifyReport } from '../assets/verify.ts'

// scripts/download_models.ts and scripts/download_datasets.ts (and make download-*/check-*):
// prepare a models or datasets directory on this machine, or check one against its manifest.

const COMMON: readonly FlagSpec[] = [
  { name: 'project-dir', kind: 'string', value: 'DIR', description: 'the eval repo (default: the current directory)' },
  {
    name: 'venv',
    kind: 'string',
    value: 'DIR',
    description: 'a prebuilt venv with huggingface_hub and datasets (default: uv run --extra eval)',
  },
  { name: 'jobs', kind: 'string', value: 'N', description: 'repos fetched at once', default: '4' },
  { name: 'check', kind: 'boolean', description: 'only check the directory against its manifest; download nothing' },
  { name: 'verify-checksums', kind: 'boolean', description: "with --check: also compare every file's sha256 (reads all data)" },
  { name: 'no-wait', kind: 'boolean', description: 'fail at once (exit 12) when another runner is downloading into the directory' },
  ...STANDARD_FLAGS,
]

// The eval repo's own download tools (guardrails:app/tools/download_*.py) name some flags otherwise; theirs
// are accepted too, with the same meaning, so that commands written for them keep working.
export const MODELS_FLAGS: readonly FlagSpec[] = [
  {
    name: 'models-dir',
    kind: 'string',
    value: 'DIR',
    description: 'the models directory to prepare or check (required; also --output-dir)',
  },
  { name: 'output-dir', kind: 'string', value: 'DIR', description: "download_models.py's name for --models-dir" },
  {
    name: 'policy',
    kind: 'string',
    value: 'FILE',
    description: `policy file listing the token_classifier recognizers (default: ${DEFAULT_POLICY}; also --policy-path)`,
  },
  { name: 'policy-path', kind: 'string', value: 'FILE', description: "download_models.py's name for --policy" },
  { name: 'model', kind: 'list', value: 'ORG/NAME[@REV]', description: 'another model to fetch (also --extra-token-classifier-model)' },
  { name: 'extra-token-classifier-model', kind: 'list', value: 'ORG/NAME', description: "download_models.py's name for --model" },
  ...COMMON,
]

export const DATASETS_FLAGS: readonly FlagSpec[] = [
  {
    name: 'datasets-dir',
    kind: 'string',
    value: 'DIR',
    description: 'the datasets directory to prepare or check (required; also --output-dir)',
  },
  { name: 'output-dir', kind: 'string', value: 'DIR', description: "download_datasets.py's name for --datasets-dir" },
  { name: 'suite', kind: 'string', value: 'NAME', description: 'eval suite whose datasets to prepare', default: DEFAULT_SUITE },
  { name: 'splits', kind: 'string', value: 'A,B', description: 'splits to prepare', default: DEFAULT_SPLITS.join(',') },
  {
    name: 'suites',
    kind: 'string',
    value: 'FILE',
    description: `suites file mapping suites to datasets (default: ${DEFAULT_SUITES}; also --registry-path)`,
  },
  { name: 'registry-path', kind: 'string', value: 'FILE', description: "download_datasets.py's name for --suites" },
  {
    name: 'hf-token-env',
    kind: 'string',
    value: 'NAME',
    description: 'the environment variable (or .env.eval key) holding the token',
    default: 'HF_TOKEN',
  },
  {
    name: 'fresh-cache',
    kind: 'boolean',
    description:
      "forget the suite's datasets in the directory (their caches, the manifest, the download records) and prepare them again; other files there stay",
  },
  {
    name: 'against-hub',
    kind: 'boolean',
    description: 'with --check, online: also fail (exit 11) when a dataset on the Hub has moved past the commit it was prepared from',
  },
  ...COMMON,
]

/** A flag given under our name or the Python tool's; both at once is a mistake. */
function either(flags: FlagValues, ours: string, theirs: string): string | undefined {
  const [a, b] = [stringFlag(flags, ours), stringFlag(flags, theirs)]
  if (a !== undefined && b !== undefined) throw new UsageError(`--${ours} and --${theirs} mean the same; give one of them.`)
  return a ?? b
}

export const MODELS_USAGE = `Usage: scripts/download_models.ts --models-dir DIR [options]
       make download-models MODELS_DIR=DIR      make check-models MODELS_DIR=DIR

Downloads every token_classifier model of configs/policy.yaml (and each --model) with
huggingface_hub's snapshot_download into DIR/token_classifier/<org>__<name>, pinned to the commit
the revision resolves to, then writes DIR/manifest.json (last, atomically). Models already complete
at that commit are not fetched again; an interrupted run resumes. HF_TOKEN comes from the
environment or from .env.eval; HF_ENDPOINT (a mirror) is honoured. With --check, nothing is
downloaded: the directory is checked against its manifest (exit 10 when incomplete).

Options:
${formatFlags(MODELS_FLAGS)}

${exitCodesHelp(['ok', 'usage', 'localPrereq', 'remotePrereq', 'transport', 'modelsMissing', 'targetBusy', 'interrupted'])}
`

export const DATASETS_USAGE = `Usage: scripts/download_datasets.ts --datasets-dir DIR [options]
       make download-datasets DATASETS_DIR=DIR  make check-datasets DATASETS_DIR=DIR

Prepares every split of the suite's datasets (configs/eval/suites.yaml: suites.<suite>.datasets,
mapped through datasets.<id>.hf_id) with datasets.load_dataset under DIR/hf_cache, so that the eval
loads each split offline by repo id with HF_HOME=DIR/hf_cache, then writes DIR/manifest.json
(last, atomically). With --check, nothing is downloaded: the directory is checked against its
manifest (exit 11 when incomplete).

Options:
${formatFlags(DATASETS_FLAGS)}

${exitCodesHelp(['ok', 'usage', 'localPrereq', 'remotePrereq', 'transport', 'datasetsMissing', 'targetBusy', 'interrupted'])}
`

/**
 * The token (HF_TOKEN, or the variable --hf-token-env names) from the environment, else from the
 * eval repo's .env.eval read as the eval reads it; never from argv. Every value of that file is
 * redacted from the logs from now on.
 */
export function hfTokenFrom(projectDir: string, logger: Logger, name = 'HF_TOKEN'): string | undefined {
  const text = readEnvFileText(path.join(projectDir, '.env.eval'))
  if (text !== null) logger.addSecrets(envFilePairs(text).map(([, value]) => value))
  const token = process.env[name] || (text === null ? undefined : parseEnvFile(text).get(name)) || undefined
  if (token) logger.addSecrets([token])
  return token
}

function requiredDir(flags: FlagValues, name: string): string {
  const value = either(flags, name, 'output-dir')
  if (value === undefined)
    throw new UsageError(`--${name} is required: the directory to prepare or check, e.g. --${name} /data/${name.replace('-dir', '')}.`)
  return path.resolve(value)
}

function jobsFrom(flags: FlagValues): number {
  return wholeNumberFlag(flags, 'jobs', { min: 1, max: 32, unit: 'parallel downloads', example: 4 }) ?? 4
}

/** The command this one was, without its checking flags: it prepares what the check found missing. Pasteable from anywhere. */
function preparingCommand(): string {
  const args = process.argv.slice(2).filter((a) => !/^--(check|verify-checksums|against-hub)$/.test(a))
  return `cd ${pasteWord(process.cwd())} && ${[process.argv[1]!, ...args].map(pasteWord).join(' ')}`
}

/** Prints the check report; throws with the exit code when the directory is not complete. */
function concludeCheck(report: VerifyReport, logger: Logger, fix: string) {
  const step = report.kind === 'models' ? 'models' : 'datasets'
  logger.step(step, describeReport(report))
  const summary = {
    dir: report.dir,
    complete: isComplete(report),
    no_manifest: report.noManifest ?? null,
    checksums: report.checksums,
    missing: report.problems.missing,
    truncated: report.problems.truncated,
    grown: report.problems.grown,
    mismatched: report.problems.mismatched,
    uncovered: report.uncovered,
  }
  if (!isComplete(report)) {
    throw new RemoteEvalError(
      `${report.kind} in ${report.dir} are not complete.`,
      report.kind === 'models' ? ExitCode.modelsMissing : ExitCode.datasetsMissing,
      { hint: fix, output: summary },
    )
  }
  return summary
}

/** The run() of download_models.ts. */
export async function modelsCommand(flags: FlagValues, { logger }: { logger: Logger }) {
  const projectDir = projectDirFrom(flags)
  const modelsDir = requiredDir(flags, 'models-dir')
  const policyPath = path.resolve(projectDir, either(flags, 'policy', 'policy-path') ?? DEFAULT_POLICY)
  const needs = readModelNeeds({
    policyPath,
    extraModels: [...listFlag(flags, 'model'), ...listFlag(flags, 'extra-token-classifier-model')],
  })
  const jobs = jobsFrom(flags)
  const transport = new LocalTransport()
  if (flags.check) {
    const report = await checkPreparedDir({
      transport,
      dir: modelsDir,
      kind: 'models',
      checksums: flags['verify-checksums'] === true,
      needs: { models: needs },
    })
    return concludeCheck(report, logger, preparingCommand())
  }
  if (needs.length === 0)
    logger.step('models', `${policyPath} lists no token_classifier recognizer and no --model was given: nothing to download`)
  const token = hfTokenFrom(projectDir, logger)
  const python = await findPythonEnv(transport, { projectDir, venv: stringFlag(flags, 'venv'), extras: ['eval'] })
  const manifest = await downloadModels({
    transport,
    python,
    modelsDir,
    needs,
    policyPath,
    concurrency: jobs,
    token,
    logger,
    wait: flags['no-wait'] !== true,
  })
  logger.step('done', `models ready in ${modelsDir}`)
  return { models_dir: modelsDir, manifest: path.join(modelsDir, 'manifest.json'), models: manifest.token_classifier_models }
}

/** The run() of download_datasets.ts. */
export async function datasetsCommand(flags: FlagValues, { logger }: { logger: Logger }) {
  const projectDir = projectDirFrom(flags)
  const datasetsDir = requiredDir(flags, 'datasets-dir')
  const suitesPath = path.resolve(projectDir, either(flags, 'suites', 'registry-path') ?? DEFAULT_SUITES)
  const tokenName = stringFlag(flags, 'hf-token-env') ?? 'HF_TOKEN'
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenName))
    throw new UsageError(`--hf-token-env ${JSON.stringify(tokenName)} is not a variable name, e.g. HF_TOKEN.`)
  const splits = (stringFlag(flags, 'splits') ?? DEFAULT_SPLITS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const needs = readDatasetNeeds({ suitesPath, suite: stringFlag(flags, 'suite') ?? DEFAULT_SUITE, splits })
  const jobs = jobsFrom(flags)
  const transport = new LocalTransport()
  if (flags.check && flags['fresh-cache']) throw new UsageError('--check looks and --fresh-cache prepares again: give one of them.')
  if (flags.check) {
    const report = await checkPreparedDir({
      transport,
      dir: datasetsDir,
      kind: 'datasets',
      checksums: flags['verify-checksums'] === true,
      needs: { datasets: needs },
    })
    const summary = concludeCheck(report, logger, preparingCommand())
    if (flags['against-hub'] !== true) return summary
    const token = hfTokenFrom(projectDir, logger, tokenName)
    const python = await findPythonEnv(transport, { projectDir, venv: stringFlag(flags, 'venv'), extras: ['eval'] })
    const stale = await staleDatasets({ transport, python, datasetsDir, needs, token, concurrency: jobs, logger })
    if (stale.length) {
      const lines = stale.map(
        (d) =>
          `  ${d.hf_id}: prepared from ${d.prepared?.slice(0, 12) ?? 'an unrecorded commit'}, the Hub is at ${d.current.slice(0, 12)} now`,
      )
      throw new RemoteEvalError(`datasets in ${datasetsDir} are stale:\n${lines.join('\n')}`, ExitCode.datasetsMissing, {
        hint: `${preparingCommand()} (it prepares again every dataset whose commit changed; a runner online does the same by itself).`,
        output: { ...summary, complete: false, stale },
      })
    }
    logger.step('datasets', `every dataset is at the commit the Hub serves now (${needs.datasets.length} checked)`)
    return { ...summary, stale: [] }
  }
  const token = hfTokenFrom(projectDir, logger, tokenName)
  const python = await findPythonEnv(transport, { projectDir, venv: stringFlag(flags, 'venv'), extras: ['eval'] })
  const wait = flags['no-wait'] !== true
  const fresh = flags['fresh-cache'] === true
  const manifest = await downloadDatasets({ transport, python, datasetsDir, needs, fresh, concurrency: jobs, token, logger, wait })
  logger.step('done', `datasets ready in ${datasetsDir}`)
  return {
    datasets_dir: datasetsDir,
    manifest: path.join(datasetsDir, 'manifest.json'),
    suite: manifest.suite,
    datasets: manifest.datasets,
  }
}
