#!/usr/bin/env -S sh -c 'exec node --import "$(dirname "$(readlink -f "$0")")/../node_modules/tsx/dist/loader.mjs" "$0" "$@"'
// The test command: starts the real parts the tests share (sshd with its zsh test user, the
// Kubernetes API server double), runs Node's test runner over test/**/*.test.ts (or the files
// given; --test-* options go to the runner), then stops everything, also on Ctrl-C. Its summary
// is node --test's own.
import { spawn } from 'node:child_process'
import { chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startKubeApiServer, writeKubeconfig } from './support/kube-apiserver.ts'
import { HOSTS_DIR, startSshd, TEST_USER } from './support/sshd.ts'
import { installUvDouble, type Harness } from './support/harness.ts'
import { writeHubRepos } from './support/hub-fixtures.ts'
import { ensureTestVenv } from './support/python.ts'

const testDir = path.dirname(fileURLToPath(import.meta.url))

async function findTests(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory() && entry.name !== 'fixtures') found.push(...(await findTests(full)))
    else if (entry.name.endsWith('.test.ts')) found.push(full)
  }
  return found.sort()
}

/** Kills every pod sandbox the API server double started (their namespaces die with them). */
async function stopPods(root: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) await walk(full)
      else if (entry.name === '.sandbox.info') {
        const pid = Number(/"child-pid": *(\d+)/.exec(await readFile(full, 'utf8'))?.[1])
        if (pid) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
      }
    }
  }
  await walk(root)
}

const work = await mkdtemp('/tmp/gre-test-')
const { info: sshd, stop } = await startSshd()
const remoteScratch = path.join(sshd.home, 'runs', path.basename(work))
await mkdir(remoteScratch, { recursive: true })
const uid = Number(
  (await readFile('/etc/passwd', 'utf8'))
    .split('\n')
    .find((l) => l.startsWith(`${TEST_USER}:`))
    ?.split(':')[2],
)
for (let dir = remoteScratch; dir.startsWith(sshd.home) && dir !== sshd.home; dir = path.dirname(dir)) await chown(dir, uid, uid)
// The Kubernetes API server double that the real kubectl talks to; each test adds its contexts to
// KUBECONFIG (this empty one first, so a developer's own ~/.kube/config is never read).
const kubeRoot = path.join(work, 'kube')
await mkdir(path.join(kubeRoot, 'kubeconfigs'), { recursive: true })
const kubeServer = await startKubeApiServer(kubeRoot)
const kubeconfig = path.join(kubeRoot, 'kubeconfigs', 'empty.yaml')
await writeKubeconfig(kubeconfig, kubeServer.url, [])

// Hugging Face's real Python clients in a venv (from the wheelhouse), and the Hub double's repos.
const venv = await ensureTestVenv()
// uv (the double) where its installer puts it for the SSH test user, once: no test removes it.
await installUvDouble(sshd.home, sshd.user, venv, path.join(testDir, 'fixtures', 'bin', 'uv'))
const hubRepos = path.join(work, 'hub-repos')
await writeHubRepos(hubRepos, path.join(venv, 'bin', 'python'))

const harness: Harness = {
  sshd,
  remoteScratch,
  kubeRoot,
  kubeServer: kubeServer.url,
  fixturesBin: path.join(testDir, 'fixtures', 'bin'),
  work,
  venv,
  hubRepos,
}
// Options for Node's test runner (e.g. --test-concurrency=4) pass through; the rest name test files.
const runnerOptions = process.argv.slice(2).filter((a) => a.startsWith('--test-'))
const named = process.argv.slice(2).filter((a) => !a.startsWith('--test-'))
const files = named.length > 0 ? named : await findTests(testDir)
const child = spawn(process.execPath, ['--import', 'tsx', '--test', ...runnerOptions, ...files], {
  stdio: 'inherit',
  env: { ...process.env, GR_TEST_HARNESS: JSON.stringify(harness), KUBECONFIG: kubeconfig, KUBECACHEDIR: path.join(kubeRoot, 'cache') },
})
const forward = (signal: NodeJS.Signals) => child.kill(signal)
process.on('SIGINT', forward)
process.on('SIGTERM', forward)
const code = await new Promise<number>((resolve) => child.on('close', (c, s) => resolve(c ?? (s ? 130 : 1))))
await kubeServer.stop()
// What went through the real kubectl: one exec.log line per exec, "CONTEXT NAMESPACE POD ...".
const execs = (await readFile(path.join(kubeRoot, 'exec.log'), 'utf8').catch(() => '')).split('\n').filter(Boolean)
const pods = new Set(execs.map((line) => line.split(' ').slice(0, 3).join('/')))
console.error(`# kubectl: ${execs.length} execs into ${pods.size} pods, through the real client and the API server double`)
await stopPods(kubeRoot)
await stop()
await rm(path.join(sshd.home, HOSTS_DIR), { recursive: true, force: true })
await rm(remoteScratch, { recursive: true, force: true })
await rm(work, { recursive: true, force: true })
process.exitCode = code
