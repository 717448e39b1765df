import { existsSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import path from 'node:path'
import { $ } from 'zx'
import { startHub, type HubServer } from './hub-server.ts'
import { EXAMPLE_HUB, SCRIPTS, addKubeContext, copyExample, harness, sshHost, type SshHost } from './harness.ts'

// The machines the docs talk about, made real for the doc test: the SSH alias `gpu-box` (and
// `cpu-box`, `gpu-box-2`) reaches the test sshd, the pod eval-0 in namespace ml of context gpu-cluster is a
// sandbox on the API server double (reached with the real kubectl), both with two (double) GPUs,
// the Hub is the Hub double, and the docs' example paths exist. The SSH target is this machine,
// so "there" and "here" share one filesystem: the docs' fixed paths below are created by this test
// and removed after it.

/** The docs' example paths: the remote tree on the SSH target, and the air-gapped staging dirs. */
const DOC_PATHS = { root: '/srv/eval', remoteDir: '/srv/eval/guardrails', staging: ['/tmp/models', '/tmp/datasets'] }
const POD = { context: 'gpu-cluster', namespace: 'ml', pod: 'eval-0', container: 'main' }
/**
 * Paths this test created, so that a run after a crash may remove its own leftovers only. In the
 * home of whoever runs the tests (root's is private): in /tmp anyone could write the list and have
 * this test remove what they name.
 */
const OWNED_LIST = path.join(homedir(), '.cache', 'gre-doc-test.owned')
const TOKEN = 'hf_doc_test_token_9031'
/**
 * Source addresses of the docs' hosts. The test user is shared with the other test files, which
 * may run at the same time and expect no GPU; the test user's ~/.zshenv gives a host's tools only
 * to sessions coming from its address (~/.gre-test-hosts/ADDRESS), that is, to the docs' commands.
 */
const SOURCE = { 'gpu-box': '127.0.0.7', 'cpu-box': '127.0.0.8', 'gpu-box-2': '127.0.0.9' }

export interface DocTargets {
  /** Environment for a doc block: our ssh first on PATH, the doubles, HF_ENDPOINT at the Hub double. */
  env: NodeJS.ProcessEnv
  /** A fresh copy of the example eval repo with `scripts` and `Makefile` of this repo, as users have them. */
  newProject(): Promise<string>
  /** Empties the targets (remote dir, asset dirs, the pod) and puts the remote-only token back. */
  reset(): Promise<void>
  stop(): Promise<void>
}

const podDir = () =>
  path.join(harness().kubeRoot, 'contexts', POD.context, 'namespaces', POD.namespace, 'pods', POD.pod, 'containers', POD.container)

/** Kills the pod's sandbox (its namespaces die with it); the next exec starts a new one. */
async function stopPodSandbox(): Promise<void> {
  const info = await readFile(path.join(podDir(), '.sandbox.info'), 'utf8').catch(() => '')
  const pid = Number(/"child-pid": *(\d+)/.exec(info)?.[1])
  if (!pid) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
  for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20))
}

/** Refuses to start when a docs path exists that an earlier doc test did not create. */
async function claimDocPaths(): Promise<void> {
  const owned = new Set((await readFile(OWNED_LIST, 'utf8').catch(() => '')).split('\n').filter(Boolean))
  const all = [DOC_PATHS.root, ...DOC_PATHS.staging]
  const foreign = all.filter((p) => existsSync(p) && !owned.has(p))
  if (foreign.length) {
    throw new Error(
      `The doc test runs the docs' commands as written and needs ${foreign.join(', ')}, which exist on this machine and were not made by it. Move them away and run again.`,
    )
  }
  await mkdir(path.dirname(OWNED_LIST), { recursive: true, mode: 0o700 })
  await writeFile(OWNED_LIST, all.join('\n') + '\n', { mode: 0o600 })
  for (const p of all) await rm(p, { recursive: true, force: true })
}

/** Writes an ssh that adds `-F <config with gpu-box>` unless the caller gives its own -F. */
async function sshWrapper(dir: string): Promise<void> {
  const { sshd } = harness()
  const real = (await $`command -v ssh`.quiet()).stdout.trim()
  const config = path.join(dir, 'ssh_config')
  // The harness's entry for the test sshd, under the names the docs use, each from its own address.
  const harnessConfig = await readFile(sshd.configFile, 'utf8')
  const sources = Object.entries(SOURCE).map(([host, address]) => `Host ${host}\n  BindAddress ${address}\n`)
  await writeFile(config, sources.join('') + harnessConfig.replace(/^Host .*$/m, `Host ${Object.keys(SOURCE).join(' ')}`))
  await mkdir(path.join(dir, 'bin'), { recursive: true })
  const wrapper = path.join(dir, 'bin', 'ssh')
  await writeFile(
    wrapper,
    [
      '#!/usr/bin/env bash',
      '# TEST PLUMBING for the doc test: the docs say `gpu-box`; this makes ssh (and rsync, and the',
      "# runners, which call ssh) resolve it to the test sshd, as a user's ~/.ssh/config would.",
      'for a in "$@"; do case $a in -F|-F?*) exec ' + real + ' "$@" ;; esac; done',
      `exec ${real} -F ${config} "$@"`,
      '',
    ].join('\n'),
  )
  await chmod(wrapper, 0o755)
}

/**
 * uv (the double) on the docs' hosts and nvidia-smi on gpu-box and gpu-box-2, on the PATH the test user's login
 * shell (zsh) sets up for sessions from their addresses, as a GPU host's would.
 */
async function docHosts(): Promise<SshHost[]> {
  const env = { UV_DOUBLE_VENV: harness().venv }
  return [
    await sshHost({ address: SOURCE['gpu-box'], tools: ['uv', 'nvidia-smi'], env }),
    await sshHost({ address: SOURCE['cpu-box'], tools: ['uv'], env }),
    await sshHost({ address: SOURCE['gpu-box-2'], tools: ['uv', 'nvidia-smi'], env }),
  ]
}

/** The pod's image: nvidia-smi and the uv double in /usr/local/bin, the test venv at /opt/venv. */
async function podImage(dir: string): Promise<void> {
  const { fixturesBin, venv } = harness()
  const bin = path.join(dir, 'pod-bin')
  await mkdir(bin, { recursive: true })
  for (const tool of ['nvidia-smi', 'uv']) await $`install -m 755 ${path.join(fixturesBin, tool)} ${path.join(bin, tool)}`.quiet()
  await mkdir(path.join(podDir(), 'workdir'), { recursive: true })
  // Binds are read when the sandbox starts; /srv/eval/{models,datasets} play the cluster's shared volumes.
  const binds = [
    `ro ${bin} /usr/local/bin`,
    `ro ${venv} /opt/venv`,
    `ro ${DOC_PATHS.root}/models /mnt/models`,
    `ro ${DOC_PATHS.root}/datasets /mnt/datasets`,
  ]
  await writeFile(path.join(podDir(), 'binds'), binds.join('\n') + '\n')
}

/** Sets up the docs' machines; call stop() when done. */
export async function startDocTargets(): Promise<DocTargets> {
  const h = harness()
  await claimDocPaths()
  const scratch = await mkdtemp(path.join(h.work, 'docs-'))
  await sshWrapper(scratch)
  const home = path.join(scratch, 'home')
  await mkdir(home, { recursive: true })
  const hosts = await docHosts()
  await podImage(scratch)
  // A copy: the runbook's fast-split workflow commits to the Hub double, which writes into its root.
  const hubRoot = path.join(scratch, 'hub-repos')
  await cp(EXAMPLE_HUB, hubRoot, { recursive: true })
  const hub: HubServer = await startHub({ root: hubRoot, tokens: [TOKEN] })

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(scratch, 'bin')}:${h.fixturesBin}:${process.env.PATH}`,
    HOME: home,
    HF_ENDPOINT: hub.endpoint,
    KUBECONFIG: await addKubeContext(POD.context),
    UV_DOUBLE_VENV: h.venv,
    UV_DOUBLE_LOG: path.join(scratch, 'uv.log'),
  }
  // The token lives on the targets only.
  delete env.HF_TOKEN

  const reset = async () => {
    await stopPodSandbox()
    for (const p of [DOC_PATHS.root, ...DOC_PATHS.staging]) await rm(p, { recursive: true, force: true })
    for (const d of ['guardrails', 'models', 'datasets']) await mkdir(path.join(DOC_PATHS.root, d), { recursive: true })
    await writeFile(path.join(DOC_PATHS.remoteDir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    // gpu-box-2's directory (the runbook's second host), its token there too.
    await mkdir(`${DOC_PATHS.remoteDir}-2`, { recursive: true })
    await writeFile(`${DOC_PATHS.remoteDir}-2/.env.eval`, `HF_TOKEN=${TOKEN}\n`)
    // The docs' prebuilt venv on the target (--venv /srv/eval/venv): the test venv.
    await symlink(h.venv, path.join(DOC_PATHS.root, 'venv'))
    await $`chown -R -h ${h.sshd.user}: ${DOC_PATHS.root}`.quiet()
    for (const d of ['workdir', 'home']) await rm(path.join(podDir(), d), { recursive: true, force: true })
    await mkdir(path.join(podDir(), 'workdir/guardrails'), { recursive: true })
    await writeFile(path.join(podDir(), 'workdir/guardrails/.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    // The uv double in the pod finds its venv here (an exec carries no environment).
    await mkdir(path.join(podDir(), 'home/.config/uv-double'), { recursive: true })
    await writeFile(path.join(podDir(), 'home/.config/uv-double/venv'), '/opt/venv\n')
  }

  const newProject = async () => {
    const project = await copyExample()
    await symlink(SCRIPTS, path.join(project, 'scripts'))
    await symlink(path.join(path.dirname(SCRIPTS), 'Makefile'), path.join(project, 'Makefile'))
    return project
  }

  const stop = async () => {
    await hub.stop()
    await stopPodSandbox()
    for (const host of hosts) await host.remove()
    for (const p of [DOC_PATHS.root, ...DOC_PATHS.staging]) await rm(p, { recursive: true, force: true })
    await rm(OWNED_LIST, { force: true })
    await rm(scratch, { recursive: true, force: true })
  }
  return { env, newProject, reset, stop }
}
