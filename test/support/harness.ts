import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { $ } from 'zx'
import { SshTransport } from '../../lib/transport/ssh.ts'
import { KubectlTransport } from '../../lib/transport/kubectl.ts'
import { shellQuote } from '../../lib/core/shell.ts'
import { writeKubeconfig } from './kube-apiserver.ts'
import { HOSTS_DIR, type SshdInfo } from './sshd.ts'

// What test/run.ts started, and small builders the tests share.

export interface Harness {
  sshd: SshdInfo
  /** A directory in the test user's home for this run's remote dirs. */
  remoteScratch: string
  /** The pods of the Kubernetes API server double (see test/support/kube-apiserver.ts). */
  kubeRoot: string
  /** That server's URL; a context CTX is served at `${kubeServer}/ctx/CTX`. */
  kubeServer: string
  /** test/fixtures/bin: the doubles of uv and nvidia-smi. */
  fixturesBin: string
  work: string
  /** A venv with huggingface_hub and datasets (world-readable). */
  venv: string
  /** The Hub double's fixture repos (read-only for tests: copy before changing). */
  hubRepos: string
}

/** The running harness; tests must be started through `npm test` (test/run.ts). */
export function harness(): Harness {
  const raw = process.env.GR_TEST_HARNESS
  if (!raw) throw new Error('No test harness: run the tests with `npm test` (test/run.ts starts sshd and the doubles).')
  return JSON.parse(raw) as Harness
}

export const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`

/** A fresh absolute path on the SSH target (not created). */
export function remoteDir(name = 'r'): string {
  return path.join(harness().remoteScratch, unique(name))
}

/** Opens an SshTransport to the test user, optionally through a different port (a proxy). */
export function openTestSsh(extraOptions: string[] = []): Promise<SshTransport> {
  const { sshd } = harness()
  return SshTransport.open({ host: sshd.alias, configFile: sshd.configFile, sshOptions: extraOptions })
}

/** ssh options and flags a script needs to reach the test user. */
export function sshFlags(extraOptions: string[] = []): string[] {
  const { sshd } = harness()
  return ['--host', sshd.alias, '--ssh-config', sshd.configFile, ...extraOptions.flatMap((o) => ['--ssh-option', o])]
}

export interface TestPod {
  context: string
  namespace: string
  pod: string
  /** Host path of each container's /workdir. */
  workdir: (container?: string) => string
  containers: string[]
}

export interface PodOptions {
  /** Lines "ro|rw HOST_PATH POD_PATH" mounted into each container. */
  binds?: string[]
  /** Each container's own environment (the image's ENV, the pod spec's env:). */
  env?: Record<string, string>
  /** The pod's phase (default Running). */
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed'
  /** The image has no bash (nothing on its PATH). */
  noBash?: boolean
  /** The pod's labels (what `kubectl get pods --selector` picks by). */
  labels?: Record<string, string>
  /** A context the caller made with addKubeContext, to put several pods in one namespace. */
  context?: string
}

/**
 * Writes a kubeconfig with one context at its own path of the API server double (or of another
 * server) and adds it to this process's KUBECONFIG (scripts the test starts inherit it). Returns
 * the file.
 */
export async function addKubeContext(context: string, server = harness().kubeServer): Promise<string> {
  const file = path.join(harness().kubeRoot, 'kubeconfigs', `${context}.yaml`)
  await writeKubeconfig(file, server, [context])
  process.env.KUBECONFIG = [process.env.KUBECONFIG, file].filter(Boolean).join(':')
  return file
}

/**
 * Creates a pod on the Kubernetes API server double, in a context of its own that kubectl knows
 * (or in options.context).
 */
export async function makePod(containers: string[] = ['main'], options: PodOptions = {}): Promise<TestPod> {
  const h = harness()
  const context = options.context ?? unique('ctx')
  const namespace = 'ml'
  const pod = unique('eval')
  const podDir = path.join(h.kubeRoot, 'contexts', context, 'namespaces', namespace, 'pods', pod)
  for (const c of containers) {
    const dir = path.join(podDir, 'containers', c)
    await mkdir(path.join(dir, 'workdir'), { recursive: true })
    if (options.binds) await writeFile(path.join(dir, 'binds'), options.binds.join('\n') + '\n')
    if (options.env)
      await writeFile(
        path.join(dir, 'env'),
        Object.entries(options.env)
          .map(([k, v]) => `${k}=${v}\n`)
          .join(''),
      )
    if (options.noBash) await writeFile(path.join(dir, 'no-bash'), '')
  }
  if (options.phase) await writeFile(path.join(podDir, 'phase'), options.phase)
  if (options.labels)
    await writeFile(
      path.join(podDir, 'labels'),
      Object.entries(options.labels)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    )
  if (!options.context) await addKubeContext(context)
  return {
    context,
    namespace,
    pod,
    containers,
    workdir: (container = containers[0]!) => path.join(podDir, 'containers', container, 'workdir'),
  }
}

/** A pod's flags for an air-gapped run on the prepared models and datasets the pod tests bind at /mnt/models and /mnt/datasets. */
export const PREPARED_POD_ASSETS = [
  '--remote-has-internet',
  'no',
  '--models-dir',
  '/mnt/models',
  '--datasets-dir',
  '/mnt/datasets',
] as const
/** The same with the venv the pod tests bind at /opt/venv. */
export const AIR_GAPPED_POD_FLAGS = ['--venv', '/opt/venv', ...PREPARED_POD_ASSETS] as const

/** A shard as a --shard run's JSON lists it. */
export interface ShardEntry {
  shard: number
  target: string
  gpu: string
  datasets: string[]
  remote_run_id: string
  exit_code: number | null
  local_run_dir: string | null
}

export function openTestPod(pod: TestPod, container?: string): Promise<KubectlTransport> {
  return KubectlTransport.open({ context: pod.context, namespace: pod.namespace, pod: pod.pod, container })
}

/**
 * Lines the API server double logged for a pod: one per exec, with the bytes it read on stdin. An exec
 * is logged when it ends, and a released lock's session ends a moment after its runner moves on:
 * first wait (up to 5 s) until no exec into the pod is running.
 */
export async function podExecs(pod: TestPod): Promise<Array<{ container: string; stdinBytes: number }>> {
  const { readFile } = await import('node:fs/promises')
  for (let i = 0; i < 100 && (await $`pgrep -f ${`exec -i ${pod.pod} `}`.nothrow().quiet()).ok; i++)
    await new Promise((r) => setTimeout(r, 50))
  const log = await readFile(path.join(harness().kubeRoot, 'exec.log'), 'utf8').catch(() => '')
  return log
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[0] === pod.context && f[2] === pod.pod)
    .map((f) => ({ container: f[3]!, stdinBytes: Number(f[4]) }))
}

/** Writes a project tree; `git: true` makes it a repository with everything committed. */
export async function makeProject(files: Record<string, string | Buffer>, options: { git?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-proj-'))
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
    await writeFile(path.join(dir, rel), content)
  }
  await chmod(dir, 0o755)
  if (options.git) {
    await $({ cwd: dir, quiet: true })`git init -q && git add -A && git -c user.email=t@e -c user.name=t commit -q -m init`
  }
  return dir
}

/** Lists files under a directory (relative, sorted), skipping nothing. */
export async function listTree(dir: string): Promise<string[]> {
  const out = await $({ cwd: dir, quiet: true, nothrow: true })`find . -mindepth 1 \\( -type f -o -type l \\) -printf '%P\\n'`
  return out.stdout.split('\n').filter(Boolean).sort()
}

/** The scripts/ directory, for running them as a user would. */
export const SCRIPTS = fileURLToPath(new URL('../../scripts', import.meta.url))

export interface ScriptResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * The runners refuse to start a run without --runtime, --remote-has-internet, --models-dir and
 * --datasets-dir. Tests that are not about those flags get them here, only where absent: cpu,
 * online, and <remote dir>/.models and .datasets (the bash runner's own layout). `raw` turns it off.
 */
export function withEvalDefaults(script: string, args: string[]): string[] {
  if (!/_eval\.ts$/.test(script) || args.some((a) => /^--(list|attach|stop|help)(=|$)/.test(a))) return args
  const value = (flag: string) => args[args.indexOf(flag) + 1]
  const dir = args.includes('--remote-dir')
    ? value('--remote-dir')
    : args.includes('--workdir')
      ? value('--workdir')
      : '/workdir/guardrails'
  const defaults: Array<[string, string]> = [
    ['--runtime', 'cpu'],
    ['--remote-has-internet', 'yes'],
    ['--models-dir', `${dir}/.models`],
    ['--datasets-dir', `${dir}/.datasets`],
  ]
  return [...args, ...defaults.filter(([flag]) => !args.some((a) => a === flag || a.startsWith(`${flag}=`))).flat()]
}

/**
 * Runs a script under scripts/ as a user would (its shebang, from the repo root). `scripts`: another
 * checkout's scripts/ (the probe table runs an older main this way); `timeoutMs`: a script still
 * running then is killed and gets code null.
 */
export async function runScript(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  options: { raw?: boolean; scripts?: string; timeoutMs?: number } = {},
): Promise<ScriptResult> {
  const { spawnProcess } = await import('../../lib/core/process.ts')
  const stderr: string[] = []
  const scripts = options.scripts ?? SCRIPTS
  const result = await spawnProcess(path.join(scripts, script), options.raw ? args : withEvalDefaults(script, args), {
    cwd: path.dirname(scripts),
    env,
    onStderrLine: (line) => stderr.push(line),
    timeoutMs: options.timeoutMs,
  })
  return { code: result.timedOut ? null : result.exitCode, stdout: result.stdout, stderr: stderr.join('\n') }
}

/** A PATH holding only node, git and the named tools (to show what happens when others are missing). */
export async function pathWith(tools: string[]): Promise<string> {
  const { symlink } = await import('node:fs/promises')
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-path-'))
  // The scripts' shebang needs env, sh, dirname and readlink; node runs them.
  for (const tool of ['node', 'git', 'env', 'sh', 'dirname', 'readlink', ...tools]) {
    const found = (await $`command -v ${tool}`.nothrow().quiet()).stdout.trim()
    if (found) await symlink(found, path.join(dir, path.basename(tool)))
  }
  return dir
}

/** An eval repo as the asset scripts expect it: pyproject with extras, policy, suites. */
export async function makeEvalProject(
  options: { models?: string[]; datasets?: Record<string, string>; env?: string } = {},
): Promise<string> {
  const models = options.models ?? ['org/tiny-ner']
  const datasets = options.datasets ?? { pii_a: 'org/pii-ru-a', pii_b: 'org/pii-ru-b' }
  const policy = ['recognizer_definitions:', '  phone_regex:', '    type: regex', '    params: {pattern: "\\\\+7"}']
  models.forEach((m, i) => policy.push(`  ner_${i}:`, '    type: token_classifier', '    params:', `      model_name: ${m}`))
  const suites = [
    'suites:',
    '  guardrails_ru:',
    '    splits: [fast, full]',
    `    datasets: [${Object.keys(datasets).join(', ')}]`,
    'datasets:',
  ]
  for (const [id, hf] of Object.entries(datasets)) suites.push(`  ${id}:`, `    hf_id: ${hf}`)
  return makeProject({
    'pyproject.toml':
      '[project]\nname = "guardrails-fixture"\nversion = "0.1.0"\n\n[project.optional-dependencies]\neval = ["datasets", "huggingface_hub"]\ncuda = []\n',
    'configs/policy.yaml': policy.join('\n') + '\n',
    'configs/eval/suites.yaml': suites.join('\n') + '\n',
    ...(options.env ? { '.env.eval': options.env } : {}),
  })
}

/** Runs a make target of this repo, as a user would from the repo root. */
export async function runMake(target: string, vars: Record<string, string>, env: NodeJS.ProcessEnv = process.env): Promise<ScriptResult> {
  const { spawnProcess } = await import('../../lib/core/process.ts')
  const stderr: string[] = []
  const result = await spawnProcess('make', ['-s', target, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)], {
    cwd: path.dirname(SCRIPTS),
    env,
    onStderrLine: (line) => stderr.push(line),
  })
  return { code: result.exitCode, stdout: result.stdout, stderr: stderr.join('\n') }
}

/** A copy of examples/guardrails-mini to run evals on (the original stays clean). */
export async function copyExample(): Promise<string> {
  const { cp } = await import('node:fs/promises')
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-example-'))
  await cp(path.join(path.dirname(SCRIPTS), 'examples', 'guardrails-mini'), dir, {
    recursive: true,
    filter: (src) => !/\/(reports|\.venv|\.models|\.datasets)(\/|$)/.test(src),
  })
  await chmod(dir, 0o755)
  return dir
}

/** The example's Hub content (served by the Hub double in tests, laid out by the demo). */
export const EXAMPLE_HUB = fileURLToPath(new URL('../../examples/hub-repos', import.meta.url))

/** Prepared model and dataset directories of the example (the demo's layout), readable by the SSH test user and pods. */
export async function preparedAssets(name: string): Promise<{ models: string; datasets: string }> {
  const { layOutExampleAssets } = await import('../../examples/demo-assets.ts')
  const root = remoteDir(name)
  const dirs = { models: path.join(root, 'models'), datasets: path.join(root, 'datasets') }
  await layOutExampleAssets(EXAMPLE_HUB, dirs.models, dirs.datasets, 'guardrails_ru', ['fast', 'full'])
  return dirs
}

/**
 * Puts the uv double where uv's installer puts it, ~/.local/bin of the home given (not on PATH),
 * on the test venv. test/run.ts does it once for the SSH test user; no test removes it.
 */
export async function installUvDouble(home: string, owner: string, venv: string, uv: string): Promise<void> {
  await $`install -D -m 755 ${uv} ${path.join(home, '.local/bin/uv')}`.quiet()
  await mkdir(path.join(home, '.config/uv-double'), { recursive: true })
  await writeFile(path.join(home, '.config/uv-double/venv'), `${venv}\n`)
  await $`chown -R ${owner}: ${path.join(home, '.config')} ${path.join(home, '.local')}`.quiet()
}

export interface SshHost {
  /** The flags that reach it (the test sshd, from this host's own source address). */
  flags: string[]
  /** The same, as ssh options (-o ...), for ssh itself. */
  sshOptions: string[]
  /** The test user's home on this host. */
  home: string
  /** Removes the host's tools (its sessions then get the test user's plain login). */
  remove(): Promise<void>
}

/**
 * A host of its own on the test sshd: connections from its loopback address (a random one unless
 * given) get `tools` (doubles from test/fixtures/bin) first on PATH, `env` exported and, with
 * `ownHome`, a home of their own (no uv in it). Nothing another test uses changes (see the test
 * user's .zshenv).
 */
export async function sshHost(
  options: { address?: string; tools?: string[]; env?: Record<string, string>; ownHome?: boolean } = {},
): Promise<SshHost> {
  const { sshd, fixturesBin } = harness()
  const bytes = randomBytes(3)
  const address = options.address ?? `127.${2 + (bytes[0]! % 250)}.${1 + (bytes[1]! % 250)}.${1 + (bytes[2]! % 250)}`
  const dir = path.join(sshd.home, HOSTS_DIR, address)
  await mkdir(path.join(dir, 'bin'), { recursive: true })
  for (const tool of options.tools ?? []) await $`install -m 755 ${path.join(fixturesBin, tool)} ${path.join(dir, 'bin', tool)}`.quiet()
  const env = { ...options.env }
  let home = sshd.home
  if (options.ownHome) {
    home = path.join(dir, 'home')
    await mkdir(home, { recursive: true })
    env.HOME = home
  }
  await writeFile(
    path.join(dir, 'env'),
    Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
      .join(''),
  )
  await $`chown -R ${sshd.user}: ${dir}`.quiet()
  const sshOptions = [`BindAddress=${address}`]
  return { flags: sshFlags(sshOptions), sshOptions, home, remove: () => rm(dir, { recursive: true, force: true }) }
}

/**
 * An ssh config naming each host by an alias of its own (the test sshd, from the host's address),
 * as a user's ~/.ssh/config names their GPU hosts: the runners reach several with --host A --host B.
 */
export async function sshAliases(hosts: Record<string, SshHost>): Promise<string> {
  const { sshd } = harness()
  const base = await readFile(sshd.configFile, 'utf8')
  const entries = Object.entries(hosts).map(([alias, host]) =>
    base.replace(/^Host \S+$/m, [`Host ${alias}`, ...host.sshOptions.map((o) => `  ${o.replace('=', ' ')}`)].join('\n')),
  )
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'gre-ssh-aliases-')), 'ssh_config')
  await writeFile(file, entries.join('\n'))
  return file
}

/**
 * Writes a file on the SSH target as the test user would own it. Only what it made changes owner
 * (the file and the directories it created): other tests' files may lie beside it.
 */
export async function writeAsTestUser(file: string, content: string): Promise<void> {
  const { sshd } = harness()
  const made = await mkdir(path.dirname(file), { recursive: true })
  await writeFile(file, content)
  await $`chown -R ${sshd.user}: ${made ?? file} ${file}`.quiet()
}

export interface StartedScript {
  /** Resolves with the first stderr line matching `pattern` (rejects if the script ends first). */
  waitFor(pattern: RegExp): Promise<string>
  kill(signal: NodeJS.Signals): void
  result: Promise<ScriptResult>
}

/** Starts a script under scripts/ in the background, to interrupt it or watch it while it runs. */
export async function startScript(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<StartedScript> {
  const { startProcess } = await import('../../lib/core/process.ts')
  const lines: string[] = []
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = []
  let ended = false
  const failWaiters: Array<() => void> = []
  const started = startProcess(path.join(SCRIPTS, script), withEvalDefaults(script, args), {
    cwd: path.dirname(SCRIPTS),
    env,
    onStderrLine: (line) => {
      lines.push(line)
      for (const waiter of waiters.splice(0)) {
        if (waiter.pattern.test(line)) waiter.resolve(line)
        else waiters.push(waiter)
      }
    },
  })
  const result = started.result.then((r) => {
    ended = true
    for (const fail of failWaiters) fail()
    return { code: r.exitCode, stdout: r.stdout, stderr: lines.join('\n') }
  })
  return {
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        const seen = lines.find((l) => pattern.test(l))
        if (seen !== undefined) return resolve(seen)
        const fail = () => reject(new Error(`The script ended before printing ${pattern}:\n${lines.join('\n')}`))
        if (ended) return fail()
        waiters.push({ pattern, resolve })
        failWaiters.push(fail)
      }),
    kill: (signal) => started.kill(signal),
    result,
  }
}

/** Live processes (zombies excluded) whose command line contains `marker`, e.g. a unique argument. */
export async function livingProcesses(marker: string): Promise<string[]> {
  const { readdir, readFile } = await import('node:fs/promises')
  const found: string[] = []
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ')
      const state = /^State:\s+(\S)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]
      if (cmdline.includes(marker) && state !== 'Z' && Number(pid) !== process.pid) found.push(`${pid} ${cmdline.trim()}`)
    } catch {
      // gone meanwhile
    }
  }
  return found
}

let sleeps = 0
/** --eval-arg flags that make the example eval sleep; the unique value marks its processes in `ps`. */
export function sleepFor(seconds: number): { marker: string; args: string[] } {
  const marker = `${seconds}.${process.pid}${++sleeps}`
  return { marker, args: ['--eval-arg=--sleep', `--eval-arg=${marker}`] }
}

/**
 * The end of a long output, for a failure message: CI shows the start of a message and cuts the
 * rest, and a terminal session's failure is at its end.
 */
export function lastLines(text: string, count = 30): string {
  return text.split(/\r?\n/).slice(-count).join('\n')
}

export interface PtyScript {
  /** Resolves with the output so far once it matches `pattern` (rejects if the script ends first). */
  waitFor(pattern: RegExp): Promise<string>
  /** Types on the terminal: "\x03" is Ctrl-C. */
  type(text: string): void
  /** Exit code, and stdout and stderr as the terminal showed them (interleaved, with \r\n). */
  result: Promise<{ code: number | null; output: string }>
}

/** Runs a script under scripts/ on a terminal of its own (startOnPty), as a user at a prompt would. */
export function startScriptOnPty(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<PtyScript> {
  return startOnPty([path.join(SCRIPTS, script), ...withEvalDefaults(script, args)], env)
}

/**
 * Runs a command from the repo root on a terminal of its own (util-linux `script` gives it a pty);
 * what is typed goes to that terminal, so Ctrl-C is the kernel's SIGINT.
 */
export async function startOnPty(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<PtyScript> {
  const { spawn } = await import('node:child_process')
  const { shellQuote } = await import('../../lib/core/shell.ts')
  // exec: script(1) runs the command with $SHELL -c, /bin/sh where SHELL is unset (CI); dash does
  // not exec a lone command itself, and Ctrl-C would kill that shell too, making the exit code 130
  // whatever the runner chose.
  const command = `exec ${argv.map(shellQuote).join(' ')}`
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd: path.dirname(SCRIPTS), env, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  const waiters: Array<{ pattern: RegExp; resolve: (text: string) => void; reject: (error: Error) => void }> = []
  const check = () => {
    for (const waiter of waiters.splice(0)) {
      if (waiter.pattern.test(output)) waiter.resolve(output)
      else waiters.push(waiter)
    }
  }
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
    check()
  })
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const result = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on('close', (code) => {
      for (const waiter of waiters.splice(0))
        waiter.reject(new Error(`The script ended (exit ${code}) before printing ${waiter.pattern}; its last lines:\n${lastLines(output)}`))
      resolve({ code, output })
    }),
  )
  return {
    waitFor: (pattern) =>
      new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve, reject })
        check()
      }),
    type: (text) => child.stdin.write(text),
    result,
  }
}

/** A fetched report directory of the example eval: its three files and the run's record of ours. */
export const FETCHED_REPORT = ['metrics.csv', 'report.json', 'report.md', 'run.json', 'run.log']
