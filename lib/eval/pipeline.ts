import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { ExitCode, RemoteEvalError } from '../cli/errors.ts'
import { CliResult } from '../cli/main.ts'
import { onCleanup } from '../cli/cleanup.ts'
import type { Logger, Step } from '../log.ts'
import { bothOrFirstError } from '../sync/cli.ts'
import { inspectionFor, prepareSync, pushPrepared } from '../sync/sync.ts'
import { KubectlTransport } from '../transport/kubectl.ts'
import { frameScript } from '../transport/script.ts'
import { SshTransport } from '../transport/ssh.ts'
import type { Transport } from '../transport/types.ts'
import { pythonCommand, type PythonEnv } from '../uv.ts'
import { OUTPUT_DIR, type EvalOptions } from './options.ts'
import { checkRunDir, evalCommand, evalEnvironment, extrasFor, preflightArgs, prepareAssets, remotePreflight, runArgs, runEval, SCRIPTS, syncDeps } from './steps.ts'
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

/** Runs the eval on the target; returns the eval's JSON with local_run_dir, and the exit code. */
export async function runRemoteEval(options: EvalOptions, { logger, signal }: { logger: Logger; signal?: AbortSignal }): Promise<CliResult> {
  if (options.dryRun) return dryRun(options, logger)
  const [transport, prepared] = await bothOrFirstError(
    openTarget(options, logger),
    prepareSync({ projectDir: options.projectDir, remoteDir: options.remoteDir, limits: options.limits, logger }),
  )
  const { python, remoteDir } = await remotePreflight(transport, options, logger, inspectionFor(prepared, options.fullSync))
  await pushPrepared({ transport, prepared, facts: remoteDir, remoteDirFlag: options.remoteDirFlag, adopt: options.adopt, full: options.fullSync, logger })
  await syncDeps(transport, options, python, logger)
  await prepareAssets(transport, options, python, logger)
  const outcome = await runEval(transport, options, python, logger, signal)

  if (!outcome.json) {
    throw new RemoteEvalError(`The eval exited with ${outcome.exitCode} and printed no JSON on stdout, so there is no report to fetch. See the [run] lines above.`, ExitCode.evalFailed)
  }
  const failed = outcome.exitCode !== 0
  logger.step('run', failed ? `the eval failed (exit ${outcome.exitCode}); fetching what it reported` : 'the eval finished')
  let localRunDir: string | null = null
  try {
    const { remote, runId } = await checkRunDir(transport, options, outcome.json)
    localRunDir = path.join(options.projectDir, OUTPUT_DIR, runId)
    const pulled = await transport.pull(remote, localRunDir)
    logger.step('fetch', `${pulled.files} files of ${remote} -> ${localRunDir}`)
  } catch (error) {
    if (!(error instanceof RemoteEvalError) || error.exitCode !== ExitCode.evalFailed) throw error
    logger.step('error', error.message)
    return new CliResult({ ...outcome.json, local_run_dir: null }, ExitCode.evalFailed)
  }
  const metrics = await readFile(path.join(localRunDir, 'metrics.csv'), 'utf8').catch(() => null)
  if (metrics !== null) logger.step('done', `metrics (${options.suite} / ${options.split}):\n${metricsTable(metrics)}`)
  logger.step(failed ? 'error' : 'done', failed ? `the eval failed; its report is in ${localRunDir}` : `report in ${localRunDir}`)
  return new CliResult({ ...outcome.json, local_run_dir: localRunDir }, failed ? ExitCode.evalFailed : ExitCode.ok)
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
    for (const d of options.datasets.datasets) add('datasets', `prepare ${d.hfId} split ${options.split} in ${options.datasetsDir} unless complete; ${FETCH_PY_NOTE}`, 'exec "$@"', [...evalPython(python), '-', 'dataset', d.hfId, d.revision, options.split, `${options.datasetsDir}/hf_cache`, '<sha>'])
  } else {
    add('models', `check ${options.modelsDir} against its manifest; stop with exit 10 if incomplete`)
    add('datasets', `check ${options.datasetsDir} against its manifest; stop with exit 11 if incomplete`)
  }
  add('run', evalCommand(options, python).join(' '), SCRIPTS.run, runArgs(options, python), evalEnvironment(options))
  add('fetch', `check the eval's run_dir lies inside ${options.remoteDir}/${OUTPUT_DIR}, then pull it into ${path.join(options.projectDir, OUTPUT_DIR)}/<run_id>`, SCRIPTS.runDir, [`${options.remoteDir}/${OUTPUT_DIR}`, '<run_dir from the eval>'])
  logger.step('done', `dry run: nothing was touched on ${target}`)
  return new CliResult({ dry_run: true, target, remote_dir: options.remoteDir, steps }, ExitCode.ok)
}

const evalPython = (python: PythonEnv) => pythonCommand(python.kind === 'uv' ? { ...python, extras: ['eval'] } : python, [])