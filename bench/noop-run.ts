// What bench:overhead and bench:latency both time: a no-op eval, air-gapped, on an sshd of the
// current user (or in a pod of the API server double), run by ssh_eval.ts (k8s_eval.ts) or the
// documented bash way (rsync the code, ssh to run, rsync the report back, with the bash runner's
// excludes; for a pod: tar into kubectl exec, kubectl exec, kubectl cp).
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { $ } from 'zx'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { startSshd, type SshdInfo } from '../test/support/sshd.ts'
import { REPO } from './common.ts'
import { BASH_RUNNER_EXCLUDES } from '../test/support/bash-runner.ts'
import { NOOP_EVAL } from '../test/support/noop-eval.ts'
import { startKubeApiServer, writeKubeconfig } from '../test/support/kube-apiserver.ts'
import { shellQuote } from '../lib/core/shell.ts'

/** The no-op eval after 3 quiet seconds; its last stderr line says when (ms since the epoch) it exits. */
const QUIET_EVAL = `import time, sys
time.sleep(3)
${NOOP_EVAL}sys.stderr.write("exiting at %d\\n" % int(time.time() * 1000))
`

export interface NoopRig {
  work: string
  sshd: SshdInfo
  /** The example eval repo with app/eval/noop.py and app/eval/quiet.py (QUIET_EVAL). */
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
  await writeFile(path.join(project, 'app/eval/quiet.py'), QUIET_EVAL)
  const models = path.join(work, 'models')
  const datasets = path.join(work, 'datasets')
  await layOutExampleAssets(path.join(REPO, 'examples/hub-repos'), models, datasets, 'guardrails_ru', ['fast'])
  const venv = path.join(work, 'venv')
  // The system's Python where there is one: a pod sandbox sees /usr, not a pyenv under the home.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
  await $`${python} -m venv ${venv}`.quiet()
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
export function oursArgs(rig: NoopRig, port: number, evalModule = 'app.eval.noop'): string[] {
  return [
    ...['--host', rig.sshd.alias, '--ssh-config', rig.sshd.configFile, '--ssh-option', `Port=${port}`],
    ...['--remote-dir', path.join(rig.work, 'ours'), '--runtime', 'cpu', '--remote-has-internet', 'no'],
    ...['--models-dir', rig.models, '--datasets-dir', rig.datasets, '--venv', rig.venv, '--eval-module', evalModule],
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

export interface NoopPod {
  /** k8s_eval.ts's target flags. */
  flags: string[]
  /** The environment of a kubectl user here: its kubeconfig, and a kubectl that takes delayMs more per call. */
  env: (delayMs: number) => NodeJS.ProcessEnv
  /** kubectl calls so far (ours and the bash way's), and execs the API server double served. */
  calls(): Promise<number>
  execs(): Promise<number>
  stop(): Promise<void>
}

/**
 * A pod on the Kubernetes API server double (a bubblewrap sandbox, reached with the real kubectl)
 * that sees the rig's venv and prepared directories at their own paths. kubectl is wrapped: each
 * call is logged and first sleeps, as a call through a distant API server costs a TLS handshake
 * and a stream upgrade.
 */
export async function startNoopPod(rig: NoopRig): Promise<NoopPod> {
  const root = path.join(rig.work, 'kube')
  const [context, namespace, pod] = ['bench', 'ml', 'eval-0']
  const container = path.join(root, 'contexts', context, 'namespaces', namespace, 'pods', pod, 'containers', 'main')
  await mkdir(path.join(container, 'workdir'), { recursive: true })
  await writeFile(path.join(container, 'binds'), `rw ${rig.work} ${rig.work}\n`)
  const server = await startKubeApiServer(root)
  const kubeconfig = path.join(root, 'kubeconfig.yaml')
  await writeKubeconfig(kubeconfig, server.url, [context])
  const realKubectl = (await $`command -v kubectl`.quiet()).stdout.trim()
  const bin = path.join(rig.work, 'bin')
  const callLog = path.join(rig.work, 'kubectl-calls')
  await mkdir(bin)
  await writeFile(
    path.join(bin, 'kubectl'),
    `#!/bin/sh\necho call >> ${shellQuote(callLog)}\nsleep "$KUBECTL_DELAY"\nexec ${shellQuote(realKubectl)} "$@"\n`,
    { mode: 0o755 },
  )
  const lines = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length
  return {
    flags: ['--context', context, '--namespace', namespace, '--pod', pod],
    env: (delayMs) => ({
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      KUBECONFIG: kubeconfig,
      KUBECACHEDIR: path.join(root, 'cache'),
      KUBECTL_DELAY: (delayMs / 1000).toFixed(3),
    }),
    calls: () => lines(callLog),
    execs: () => lines(path.join(root, 'exec.log')),
    stop: async () => {
      await server.stop()
      const info = await readFile(path.join(container, '.sandbox.info'), 'utf8').catch(() => '')
      const pid = Number(/"child-pid": *(\d+)/.exec(info)?.[1])
      if (pid) process.kill(pid, 'SIGKILL')
    },
  }
}

/** k8s_eval.ts's arguments for the no-op run in the pod. */
export function oursPodArgs(rig: NoopRig, pod: NoopPod): string[] {
  return [
    ...pod.flags,
    ...['--workdir', '/workdir/ours', '--runtime', 'cpu', '--remote-has-internet', 'no'],
    ...['--models-dir', rig.models, '--datasets-dir', rig.datasets, '--venv', rig.venv, '--eval-module', 'app.eval.noop'],
    ...['--project-dir', rig.project],
  ]
}

/**
 * The same run the real repo's bash pod runner's way (guardrails:scripts/remote_eval/k8s_eval.sh):
 * tar piped into kubectl exec, kubectl exec for the run, kubectl cp back.
 */
export async function bashPodWay(rig: NoopRig, pod: NoopPod, env: NodeJS.ProcessEnv): Promise<void> {
  const [, context, , namespace, , name] = pod.flags
  const kubectl = ['kubectl', '--context', context!, '-n', namespace!]
  const dir = '/workdir/bash'
  const excludes = BASH_RUNNER_EXCLUDES.map((e) => `--exclude=${e.replace(/\/$/, '')}`)
  await $({
    cwd: rig.project,
    env,
    quiet: true,
  })`tar -cf - ${excludes} . | ${kubectl} exec -i ${name} -- sh -c ${`mkdir -p ${dir} && tar -xf - -C ${dir}`}`
  const command = `cd ${dir} && GR_MODEL_DIR=${rig.models} HF_HOME=${rig.datasets}/hf_cache ${rig.venv}/bin/python -m app.eval.noop --suite guardrails_ru --split fast --env-file .env.eval --output-dir reports/evaluations`
  const run = await $({ env, quiet: true })`${kubectl} exec ${name} -- sh -c ${command}`
  const runDir = JSON.parse(run.stdout).run_dir as string
  const local = path.join(rig.work, 'bash-pod-reports', path.basename(runDir))
  await mkdir(path.dirname(local), { recursive: true })
  await $({ env, quiet: true })`${kubectl} cp ${`${name}:${runDir}`} ${local}`
}
