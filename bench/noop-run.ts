// What bench:overhead and bench:latency both time: a no-op eval, air-gapped, on an sshd of the
// current user, run by ssh_eval.ts or the documented bash way (rsync the code, ssh to run, rsync
// the report back, with the bash runner's excludes).
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { $ } from 'zx'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { startSshd, type SshdInfo } from '../test/support/sshd.ts'
import { REPO } from './common.ts'
import { BASH_RUNNER_EXCLUDES } from '../test/support/bash-runner.ts'

const NOOP_EVAL = `import json, os, sys
out = os.path.abspath(os.path.join(sys.argv[sys.argv.index("--output-dir") + 1], "noop-%d" % os.getpid()))
os.makedirs(out)
open(os.path.join(out, "metrics.csv"), "w").write("task,scope,metric_family,precision,recall,f1\\n")
print(json.dumps({"run_dir": out, "report_json": "", "report_md": "", "metrics_csv": os.path.join(out, "metrics.csv")}))
`

export interface NoopRig {
  work: string
  sshd: SshdInfo
  /** The example eval repo with app/eval/noop.py. */
  project: string
  models: string
  datasets: string
  venv: string
  stop(): Promise<void>
}

/** sshd, the example repo with a no-op eval, its prepared model and dataset dirs, a bare venv. */
export async function startNoopRig(name: string): Promise<NoopRig> {
  const work = await mkdtemp(path.join(tmpdir(), `gre-bench-${name}-`))
  const { info: sshd, stop } = await startSshd({ login: 'current' })
  const project = path.join(work, 'project')
  await cp(path.join(REPO, 'examples/guardrails-mini'), project, { recursive: true, filter: (src) => !src.includes('/reports') })
  await writeFile(path.join(project, 'app/eval/noop.py'), NOOP_EVAL)
  const models = path.join(work, 'models')
  const datasets = path.join(work, 'datasets')
  await layOutExampleAssets(path.join(REPO, 'examples/hub-repos'), models, datasets, 'guardrails_ru', ['fast'])
  const venv = path.join(work, 'venv')
  await $`python3 -m venv ${venv}`.quiet()
  return {
    work,
    sshd,
    project,
    models,
    datasets,
    venv,
    stop: async () => {
      await stop()
      await rm(work, { recursive: true, force: true })
    },
  }
}

/** ssh_eval.ts's arguments for the no-op run through `port` (a proxy in front of sshd). */
export function oursArgs(rig: NoopRig, port: number): string[] {
  return [
    ...['--host', rig.sshd.alias, '--ssh-config', rig.sshd.configFile, '--ssh-option', `Port=${port}`],
    ...['--remote-dir', path.join(rig.work, 'ours'), '--runtime', 'cpu', '--remote-has-internet', 'no'],
    ...['--models-dir', rig.models, '--datasets-dir', rig.datasets, '--venv', rig.venv, '--eval-module', 'app.eval.noop'],
    ...['--project-dir', rig.project],
  ]
}

/** The same run the documented bash way, through `port`: rsync, ssh, rsync (three connections). */
export async function bashWay(rig: NoopRig, port: number): Promise<void> {
  const { sshd, work, models, datasets, venv } = rig
  const ssh = `ssh -F ${sshd.configFile} -o Port=${port}`
  const dir = path.join(work, 'bash')
  await $({
    cwd: rig.project,
    quiet: true,
  })`rsync -az ${BASH_RUNNER_EXCLUDES.map((e) => `--exclude=${e}`)} -e ${ssh} ./ ${sshd.alias}:${dir}/`
  const command = `cd ${dir} && GR_MODEL_DIR=${models} HF_HOME=${datasets}/hf_cache ${venv}/bin/python -m app.eval.noop --suite guardrails_ru --split fast --env-file .env.eval --output-dir reports/evaluations`
  const run = await $({ quiet: true })`${ssh.split(' ')} ${sshd.alias} ${command}`
  const runDir = JSON.parse(run.stdout).run_dir as string
  const local = path.join(work, 'bash-reports', path.basename(runDir))
  await mkdir(local, { recursive: true })
  await $({ quiet: true })`rsync -az -e ${ssh} ${sshd.alias}:${runDir}/ ${local}/`
}
