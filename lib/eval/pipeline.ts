import { lstat, readFile } from 'node:fs/promises'
import path from 'node:path'
import { ExitCode, RemoteEvalError } from '../cli/errors.ts'
import { CliResult } from '../cli/main.ts'
import { onCleanup } from '../cli/cleanup.ts'
import { secretValuesFromEnv, type Logger, type Step } from '../log.ts'
import { bothOrFirstError } from '../sync/cli.ts'
import { inspectionFor, prepareSync, pushPrepared } from '../sync/sync.ts'
import { KubectlTransport } from '../transport/kubectl.ts'
import { frameScript } from '../transport/script.ts'
import { SshTransport } from '../transport/ssh.ts'
import type { Transport } from '../transport/types.ts'
import { pythonCommand, type PythonEnv } from '../uv.ts'
import { OUTPUT_DIR, type EvalMode, type EvalOptions } from './options.ts'
import { clearDatasetsCache } from '../assets/prepare.ts'
import { checkRunDir, evalCommand, evalEnvironment, extrasFor, PREFLIGHT_LIBRARY, preflightArgs, prepareAssets, readPreflight, pullRunDir, runArgs, runModule, SCRIPTS, startEval, syncDeps } from './steps.ts'
import { guardRun } from './interrupt.ts'
import { attachHint, listRuns, newRunId, runDirOf, runEndedError, stopRun, followRun, type RunEnd } from './runs.ts'
import { runsTable } from './summary.ts'
import { takeTargetLock } from '../sync/lock.ts'
import { metricsTable } from './summary.ts'
import { syncCommand } from '../uv.ts'

// The run, the same for SSH and kubectl: preflight, sync, deps, assets, run, fetch, summary.

/** Opens the transport for the target (closed on every way out, Ctrl-C included). */
async function openTarget(options: EvalOptions, logger: Logger): Promise<Transport> {
  const target = options.target
  if (target.kind === 'ssh') {
    const transport = await SshTransport.create({ host: target.host, sshOptions: target.sshOptions, configFile: target.configFile, logger })
    onCleanup(() => transport.close())
    await transport.connect()
    return transport
  }
  const transport = await KubectlTransport.open({ context: target.context, namespace: target.namespace, pod: target.pod, container: target.container, logger })
  onCleanup(() => transport.close())
  return transport
}

/** Runs the eval on the target (or detaches, attaches, stops, lists); returns the JSON and exit code. */
export async function runRemoteEval(options: EvalOptions, { logger, signal }: { logger: Logger; signal: AbortSignal }): Promise<CliResult> {
  // --env values named like secrets are hidden here too (on the target, the run's redaction does it).
  logger.addSecrets(secretValuesFromEnv(options.env))
  if (options.dryRun) return dryRun(options, logger)
  if (options.mode.kind === 'attach' || options.mode.kind === 'stop' || options.mode.kind === 'list') return controlRuns(options, options.mode, logger, signal)
  const [transport, prepared] = await bothOrFirstError(
    openTarget(options, logger),
    prepareSync({ projectDir: options.projectDir, remoteDir: options.remoteDir, limits: options.limits, logger }),
  )
  // Preflight, sync, deps and downloads under the target's lock, held until the eval runs.
  const locking = takeTargetLock(transport, {
    remoteDir: options.remoteDir, wait: options.wait, library: PREFLIGHT_LIBRARY, fn: 'eval_preflight_and_inspect',
    args: [...preflightArgs(options), ...inspectionFor(prepared, options.fullSync)], logger, step: 'preflight',
  })
  const runId = newRunId()
  let end: RunEnd | null
  try {
    const preflight = locking.then((lock) => readPreflight(lock, transport, options, logger))
    // The push prepares its local side while the target answers; it sends nothing before that.
    await pushPrepared({ transport, prepared, facts: preflight.then((p) => p.remoteDir), remoteDirFlag: options.remoteDirFlag, adopt: options.adopt, full: options.fullSync, allowSecrets: options.allowSecrets, logger })
    const [{ python, tokenPath }, lock] = await Promise.all([preflight, locking])
    await syncDeps(transport, options, python, logger)
    if (options.mode.kind === 'module') {
      const code = await runModule(transport, options, python, logger, { ...options.mode, tokenPath, signal })
      return new CliResult(undefined, code)
    }
    if (options.freshCache) await clearDatasetsCache({ transport, datasetsDir: options.datasetsDir, needs: options.datasets, logger })
    await prepareAssets(transport, options, python, logger, tokenPath)
    let disarm = () => {}
    const follow = options.mode.kind === 'run'
    end = await startEval(transport, options, python, logger, {
      id: runId,
      follow,
      signal,
      tokenPath,
      onStarted: () => {
        void lock.release()
        if (follow) disarm = guard(transport, options, runId, logger, signal)
      },
    }).finally(() => disarm())
  } finally {
    await (await locking.catch(() => null))?.release()
  }
  if (!end) {
    logger.step('done', `run ${runId} started on ${transport.target}; to follow it and fetch its report, ${attachHint(runId)}`)
    return new CliResult({ remote_run_id: runId, state: 'running', target: transport.target, remote_run_dir: runDirOf(options.remoteDir, runId) }, ExitCode.ok)
  }
  return fetchReport(transport, options, runId, end, logger)
}

/** --attach, --stop and --list: earlier runs on the target; nothing is synced. */
async function controlRuns(options: EvalOptions, mode: Extract<EvalMode, { kind: 'attach' | 'stop' | 'list' }>, logger: Logger, signal: AbortSignal): Promise<CliResult> {
  const transport = await openTarget(options, logger)
  if (mode.kind === 'list') {
    const runs = await listRuns(transport, options.remoteDir)
    logger.step('done', runs.length ? runsTable(runs) : `no runs in ${options.remoteDir} on ${transport.target}`)
    return new CliResult({ target: transport.target, remote_dir: options.remoteDir, runs }, ExitCode.ok)
  }
  const { runId } = mode
  if (mode.kind === 'stop') {
    logger.step('run', `stopping run ${runId} on ${transport.target}: SIGTERM to its process group, SIGKILL after ${options.stopGraceSeconds} s`)
    const stopped = await stopRun(transport, { remoteDir: options.remoteDir, runId, graceSeconds: options.stopGraceSeconds, logger })
    logger.step('done', `run ${runId} is ${stopped.state}${stopped.exitCode === null ? '' : ` (exit ${stopped.exitCode})`}`)
    return new CliResult({ remote_run_id: runId, state: stopped.state, exit_code: stopped.exitCode }, ExitCode.ok)
  }
  logger.step('run', `attached to run ${runId} on ${transport.target}; its last lines, then what it writes`)
  const disarm = guard(transport, options, runId, logger, signal)
  const end = await followRun(transport, { remoteDir: options.remoteDir, runId, fromEnd: true, logger, signal }).finally(disarm)
  return fetchReport(transport, options, runId, end, logger)
}

/** Arms Ctrl-C for a followed run (see interrupt.ts); returns the disarm. */
function guard(transport: Transport, options: EvalOptions, runId: string, logger: Logger, signal: AbortSignal): () => void {
  const stop = (graceSeconds: number) => stopRun(transport, { remoteDir: options.remoteDir, runId, graceSeconds, logger })
  return guardRun({ runId, target: transport.target, signal, logger, graceSeconds: options.stopGraceSeconds, stop })
}

/** After a run: check and fetch its report directory, print the metrics; exit 0, or 1 when it failed. */
async function fetchReport(transport: Transport, options: EvalOptions, runId: string, end: RunEnd, logger: Logger): Promise<CliResult> {
  if (end.meta.stragglers) {
    logger.step('warn', `the eval left ${end.meta.stragglers} process(es) behind; they were stopped ${options.stopGraceSeconds} s after it ended (--stop-grace). Which: ${runDirOf(options.remoteDir, runId)}/stragglers on ${transport.target}`)
  }
  if (!end.json) throw runEndedError(end, runId, transport.target)
  const failed = end.exitCode !== 0
  logger.step('run', failed ? `the eval ${end.state === 'stopped' ? 'was stopped' : 'failed'} (exit ${end.exitCode ?? 'unknown'}); fetching what it reported` : 'the eval finished')
  const json = { ...end.json, remote_run_id: runId }
  let localRunDir: string | null = null
  try {
    const checked = await checkRunDir(transport, options, end.json)
    localRunDir = path.join(options.projectDir, OUTPUT_DIR, checked.runId)
    const files = await pullRunDir(transport, checked, localRunDir, logger)
    logger.step('fetch', `${files} files of ${checked.remote} -> ${localRunDir}`)
  } catch (error) {
    if (!(error instanceof RemoteEvalError) || error.exitCode !== ExitCode.evalFailed) throw error
    logger.step('error', error.message)
    return new CliResult({ ...json, local_run_dir: null }, ExitCode.evalFailed)
  }
  // Read only a regular file (never through a link, though the pull removed those).
  const metricsPath = path.join(localRunDir, 'metrics.csv')
  const metrics = (await lstat(metricsPath).catch(() => null))?.isFile() ? await readFile(metricsPath, 'utf8') : null
  // An attached run's suite and split are the run's, not this command's defaults.
  const { suite = options.suite, split = options.split } = end.meta
  if (metrics !== null) logger.step('done', `metrics (${suite} / ${split}):\n${metricsTable(metrics)}`)
  logger.step(failed ? 'error' : 'done', failed ? `the eval failed; its report is in ${localRunDir}` : `report in ${localRunDir}`)
  return new CliResult({ ...json, local_run_dir: localRunDir }, failed ? ExitCode.evalFailed : ExitCode.ok)
}

const FETCH_PY_NOTE = 'fetch.py (lib/assets/fetch.py) on stdin'

/** --dry-run: each step and the exact remote scripts, as they would be sent; no connection. */
async function dryRun(options: EvalOptions, logger: Logger): Promise<CliResult> {
  const prepared = await prepareSync({ projectDir: options.projectDir, remoteDir: options.remoteDir, limits: options.limits, logger })
  const target = options.target.kind === 'ssh' ? `ssh ${options.target.host}` : `pod ${options.target.namespace}/${options.target.pod}`
  // Which Python is used is only known after the preflight; show uv (or the --venv given).
  const python: PythonEnv = options.venv
    ? { kind: 'venv', python: `${options.venv}/bin/python` }
    : { kind: 'uv', uv: '<uv found by the preflight>', projectDir: options.remoteDir, extras: extrasFor(options) }
  const steps: Array<{ step: Step; does: string; script?: string }> = []
  const add = (step: Step, does: string, script?: string, args: string[] = [], env: Record<string, string> = {}) => {
    steps.push({ step, does, ...(script ? { script: frameScript(script, args, env) } : {}) })
    logger.step(step, `[dry-run] ${does}`)
  }
  add('preflight', `local: ${prepared.selection.files.length} files to sync, suite ${options.suite} split ${options.split} found in the registry`)
  add('preflight', `${target}: bash, ${options.venv ? `the venv ${options.venv}` : 'uv'}, Python, free disk${options.runtime === 'cuda' ? ', nvidia-smi' : ''}${options.online ? ', HF_TOKEN' : ''}; and the inspection of ${options.remoteDir} for the sync`, SCRIPTS.preflight, [...preflightArgs(options), ...inspectionFor(prepared, options.fullSync)])
  add('sync', `send only what the state in ${options.remoteDir} says changed (rsync or one tar stream)`)
  const sync = syncCommand(python)
  if (sync) add('deps', `${sync.join(' ')}, unless pyproject.toml, uv.lock and the extras are unchanged`, SCRIPTS.deps, [options.remoteDir, '<stamp>', '--', ...sync])
  else add('deps', `prebuilt venv: no uv sync`)
  if (options.online) {
    for (const m of options.models) add('models', `fetch ${m.repoId}@${m.revision} into ${options.modelsDir} unless complete; ${FETCH_PY_NOTE}`, 'exec "$@"', [...evalPython(python), '-', 'model', m.repoId, m.revision, `${options.modelsDir}/...`, '<sha>'])
    for (const d of options.datasets.datasets) add('datasets', `prepare ${d.hfId} splits ${options.downloadSplits.join(',')} in ${options.datasetsDir} unless complete; ${FETCH_PY_NOTE}`, 'exec "$@"', [...evalPython(python), '-', 'dataset', d.hfId, d.revision, options.downloadSplits.join(','), `${options.datasetsDir}/hf_cache`, '<sha>'])
  } else {
    add('models', `check ${options.modelsDir} against its manifest; stop with exit 10 if incomplete`)
    add('datasets', `check ${options.datasetsDir} against its manifest; stop with exit 11 if incomplete`)
  }
  add('run', `${evalCommand(options, python).join(' ')}, as a run of its own (setsid) under ${options.remoteDir}/.remote-eval/runs/<id>, followed until it ends`, SCRIPTS.run, runArgs(options, python, { id: '<id>', follow: true }), evalEnvironment(options))
  add('fetch', `check the eval's run_dir lies inside ${options.remoteDir}/${OUTPUT_DIR}, then pull it into ${path.join(options.projectDir, OUTPUT_DIR)}/<run_id>`, SCRIPTS.runDir, [`${options.remoteDir}/${OUTPUT_DIR}`, '<run_dir from the eval>'])
  logger.step('done', `dry run: nothing was touched on ${target}`)
  return new CliResult({ dry_run: true, target, remote_dir: options.remoteDir, steps }, ExitCode.ok)
}

const evalPython = (python: PythonEnv) => pythonCommand(python.kind === 'uv' ? { ...python, extras: ['eval'] } : python, [])