import { datasetsManifest, modelsManifest } from '../assets/manifest.ts'
import { modelDirName } from '../assets/registry.ts'
import type { Step } from '../core/log.ts'
import { calledFunction, type RoundTrip } from '../transport/recording.ts'
import type { PushPlan, PushReport, RunOptions, RunResult, TargetKind, Transport } from '../transport/types.ts'
import { OUTPUT_DIR, type EvalOptions } from './options.ts'

// --dry-run: the pipeline of a real run, unchanged, against a target that answers as a fresh one
// would and runs nothing. Every script the pipeline builds is recorded as it would travel, so what
// a dry run prints is what a real run on a fresh target sends (the test compares the two).

/** The run id the simulated eval picks (the real one picks its own). */
export const EVAL_RUN_ID = 'EVAL-RUN-ID'

/** What the simulated target answers, as a dry run tells the user. */
export const DRY_RUN_ASSUMES =
  'a fresh target where each step succeeds: the remote directory does not exist yet, uv (or the --venv) is there, ' +
  'the token is in its environment, the models and datasets directories are empty (online) or complete (air-gapped), ' +
  `and the eval prints run_dir ${OUTPUT_DIR}/${EVAL_RUN_ID}`
/** The commit every simulated Hub repo is at. */
const SHA = '0'.repeat(40)

/** The step a round trip belongs to, for the dry run's lines: from the function it calls, or the directory it works in. */
export function stepOf(trip: RoundTrip, options: EvalOptions): Step {
  if (trip.kind === 'push') return 'sync'
  if (trip.kind === 'pull') return 'fetch'
  const byFunction: Record<string, Step> = {
    lock_hold: 'preflight',
    eval_deps: 'deps',
    eval_run: 'run',
    eval_module: 'run',
    run_report_dir: 'fetch',
  }
  if (trip.fn && byFunction[trip.fn]) return byFunction[trip.fn]!
  if (trip.fn === 'envfile_exec') return fetchArgs(trip.args)[0] === 'model' ? 'models' : 'datasets'
  return trip.args[0] === options.modelsDir ? 'models' : trip.args[0] === options.datasetsDir ? 'datasets' : 'preflight'
}

/** fetch.py's arguments in an envfile_exec call, its mode first: the words after `python -`. */
function fetchArgs(args: readonly string[]): string[] {
  const command = args.slice(args.indexOf('--') + 1)
  return command.slice(command.indexOf('-') + 1)
}

/** The answer of eval_preflight_and_inspect on a fresh target (see remote.sh, remote-dir.sh). */
function preflightAnswer(options: EvalOptions, kind: TargetKind): string {
  const facts = ['bash=5', options.venv ? `venv=${options.venv}/bin/python` : 'uv=uv']
  if (options.runtime === 'cuda') {
    const ids = options.gpus?.split(',').map((id) => String(Number(id))) ?? ['0']
    facts.push(...ids.map((id) => `gpu=${id}`), 'gpus-listed=1')
  }
  if (options.online) facts.push('token=environment')
  facts.push('asset=models missing', 'asset=datasets missing')
  const inspection = [...(kind.pushesByRsync ? ['rsync=1'] : []), 'gzip=1', 'tar=1', 'kind=missing', 'writable=1', 'claimed=1']
  // Air-gapped, the preflight lists the prepared directories too.
  const assets = options.online ? '' : `@@assets\0${completeDirs(options, [options.modelsDir, options.datasetsDir])}`
  return `${facts.map((f) => `${f}\0`).join('')}${assets}@@inspect\0${inspection.map((f) => `${f}\0`).join('')}`
}

/** list_prepared_dirs' answer: each asset directory complete, by a manifest that covers the suite. */
function completeDirs(options: EvalOptions, dirs: readonly string[]): string {
  const models = modelsManifest({
    dir: options.modelsDir,
    policyPath: 'configs/policy.yaml',
    models: options.models.map((m) => ({ model_name: m.repoId, revision: m.revision, sha: SHA, path: modelDirName(m.repoId), files: [] })),
  })
  const needs = options.datasets
  const datasets = datasetsManifest({
    dir: options.datasetsDir,
    registryPath: needs.suitesPath,
    suite: needs.suite,
    splits: options.downloadSplits,
    files: [],
    datasets: needs.datasets.flatMap((d) =>
      options.downloadSplits.map((split) => ({ dataset_id: d.id, hf_id: d.hfId, split, sha: SHA, fingerprint: null, rows: 0 })),
    ),
  })
  return dirs
    .map((dir, i) => {
      const manifest = dir === options.modelsDir ? models : dir === options.datasetsDir ? datasets : null
      return `D ${i}\0${manifest ? `M ${JSON.stringify(manifest)}\0` : ''}`
    })
    .join('')
}

/** What fetch.py prints for a repo it fetched. */
function fetchAnswer(args: readonly string[]): string {
  const [mode, , , splits = ''] = fetchArgs(args)
  if (mode !== 'dataset') return JSON.stringify({ status: 'fetched', sha: SHA, files: [] })
  const names = splits.split(',')
  return JSON.stringify({
    status: 'fetched',
    sha: SHA,
    files: [],
    rows: Object.fromEntries(names.map((s) => [s, 0])),
    fingerprints: Object.fromEntries(names.map((s) => [s, null])),
  })
}

/** The simulated target: a transport that answers each script as a fresh target would, and runs nothing. */
export function simulatedTarget(options: EvalOptions, kind: TargetKind): Transport {
  const answer = (stdout: string, exitCode = 0): RunResult => ({ exitCode, stdout, stderrTail: [], bytesSent: 0 })
  return {
    kind: kind.kind,
    pushesByRsync: kind.pushesByRsync,
    target: kind.name(options.target),
    async run(script: string, args: readonly string[] = [], run: RunOptions = {}): Promise<RunResult> {
      const fn = calledFunction(script)
      if (fn === 'lock_hold' || fn === 'asset_lock_hold') {
        // The lock's session: the function's output (a download lock runs none), its trailer, then held until released.
        if (run.stdin && typeof (run.stdin as NodeJS.ReadableStream).resume === 'function') (run.stdin as NodeJS.ReadableStream).resume()
        run.stdoutSink?.write(`${fn === 'lock_hold' ? preflightAnswer(options, kind) : ''}\0@@locked 0\0`)
        return answer('')
      }
      if (fn === 'envfile_exec') return answer(`${fetchAnswer(args)}\n`)
      if (fn === 'list_prepared_dirs') return answer(completeDirs(options, args))
      if (fn === 'eval_deps') return answer('')
      if (fn === 'eval_run') {
        const [remoteDir, , , id, , follow] = args
        run.onStderrLine?.(`@@started ${id}`)
        if (follow !== '1') return answer('')
        // As run_follow ends (runs.sh): the state, the eval's stdout, the check of its report directory.
        const reportDir = `${remoteDir}/${OUTPUT_DIR}/${EVAL_RUN_ID}`
        const stdout = `${JSON.stringify({ run_dir: reportDir })}\n`
        // The report directory comes along: an empty listing (the archive is never unpacked).
        const check = ['', '@@rundir', reportDir, '0', String(Buffer.byteLength(reportDir)), reportDir].join('\0')
        const text = `@@state finished 0\n@@stdout ${Buffer.byteLength(stdout)}\n${stdout}${check}@@archive\n0\n`
        return answer(Buffer.from(text).toString(run.stdoutEncoding ?? 'utf8'))
      }
      if (fn === 'run_report_dir') return answer(args[1] ?? '')
      return answer('')
    },
    async push(plan: PushPlan): Promise<PushReport> {
      const method = plan.method === 'tar' ? 'tar' : plan.unselected ? 'rsync-tree' : 'rsync-list'
      return { method, filesSent: plan.send.length, filesRemoved: plan.remove.length, filesKept: 0, bytesSent: 0 }
    },
    async pull() {
      return { files: 0, bytes: 0 }
    },
    async close() {},
  }
}
