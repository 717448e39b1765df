import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { layOutExampleAssets } from '../examples/demo-assets.ts'
import { pathUnder } from '../lib/core/filenames.ts'
import {
  EXAMPLE_HUB,
  copyExample,
  harness,
  makeProject,
  remoteDir,
  runScript,
  sshFlags,
  sshHost,
  writeAsTestUser,
} from './support/harness.ts'

// The hostile-input probe of the "nothing leaks, nothing is lost" issue, as one table: each row is
// an input the probe tried against a real sshd and what must happen now. Every row runs the
// scripts as a user would, so the table can also be pointed at another checkout's scripts/ to see
// what it did there: GRE_PROBE_SCRIPTS=/path/to/old/scripts npm test -- test/probe.test.ts

const SCRIPTS = process.env.GRE_PROBE_SCRIPTS
const ROW_TIMEOUT_MS = 90_000
const SYNC = 'remote_eval/sync_code.ts'
const SSH_EVAL = 'remote_eval/ssh_eval.ts'
const TOKEN = 'hf_probe_token_6f1d2c9a8b7e'

const run = (script: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  runScript(script, args, env, { scripts: SCRIPTS, timeoutMs: ROW_TIMEOUT_MS })

const CREDENTIALS = [
  '.git-credentials',
  '.aws/credentials',
  'credentials.json',
  'id_ecdsa',
  'server.key',
  '.ssh/config',
  '.pypirc',
  '.kube/config',
  '.docker/config.json',
  '.htpasswd',
  'service-account.json',
  'secrets.yaml',
  'terraform.tfstate',
]

/** A minimal report in reports/evaluations/<id>, and the eval's JSON line, after `body` (Python). */
const evalModule = (body: string) => String.raw`
import json, os, subprocess, sys
${body}
out = os.path.realpath(os.path.join("reports", "evaluations", "eval_probe_1"))
os.makedirs(out, exist_ok=True)
json.dump({"report_version": "3.0", "run": {"suite": "guardrails_ru", "split": "fast"}}, open(os.path.join(out, "report.json"), "w"))
print(json.dumps({"run_dir": out, "report_json": os.path.join(out, "report.json"), "report_md": "", "metrics_csv": ""}))
`

const MODULES: Record<string, string> = {
  fork: evalModule('subprocess.Popen(["bash", "-c", "( (exec -a gre-probe-straggler sleep 300) & )"])'),
  bigline: evalModule('sys.stdout.write("x" * 50_000_000); sys.stdout.write("\\n"); sys.stdout.flush()'),
  split: evalModule(String.raw`
token = [l.split("=", 1)[1].strip() for l in open(".env.eval") if l.startswith("HF_TOKEN=")][0]
print("token starts " + token[:14], file=sys.stderr, flush=True)
print(token[14:] + " was the rest", file=sys.stderr, flush=True)`),
  links: evalModule(String.raw`
out = os.path.realpath(os.path.join("reports", "evaluations", "eval_probe_1"))
os.makedirs(out, exist_ok=True)
for name, target in (("metrics.csv", os.path.expanduser("~/victim.csv")), ("passwd", "/etc/passwd"), ("up", "../../../..")):
    if not os.path.lexists(os.path.join(out, name)):
        os.symlink(target, os.path.join(out, name))`),
}

const exists = (file: string | Buffer) => existsSync(file)

describe('the probe, as a table: each input, and what happens now', () => {
  let project: string
  let assets: { models: string; datasets: string }
  const evalArgs = (module: string, dir: string) => [
    ...sshFlags(),
    '--remote-dir',
    dir,
    '--project-dir',
    project,
    '--venv',
    harness().venv,
    '--eval-module',
    `app.eval.probe_${module}`,
    '--remote-has-internet',
    'no',
    '--runtime',
    'cpu',
    '--models-dir',
    assets.models,
    '--datasets-dir',
    assets.datasets,
  ]
  const evalDir = async () => {
    const dir = remoteDir('probe-eval')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    return dir
  }

  before(async () => {
    project = await copyExample()
    for (const [name, source] of Object.entries(MODULES)) await writeFile(path.join(project, `app/eval/probe_${name}.py`), source)
    const root = remoteDir('probe-assets')
    assets = { models: path.join(root, 'models'), datasets: path.join(root, 'datasets') }
    await layOutExampleAssets(EXAMPLE_HUB, assets.models, assets.datasets, 'guardrails_ru', ['fast', 'full'])
  })
  after(async () => {
    await $`pkill -f gre-probe-straggler`.nothrow().quiet()
  })

  const rows: Array<[input: string, check: () => Promise<void>]> = [
    [
      '13 credential files committed with git add -f (.git-credentials, .aws/credentials, id_ecdsa, server.key, .kube/config, ...)',
      async () => {
        const files: Record<string, string> = { 'app.py': 'print(1)\n' }
        for (const name of CREDENTIALS) files[name] = 'user:password\n'
        const source = await makeProject(files)
        await $({ cwd: source, quiet: true })`git init -q && git add -f -A && git -c user.email=t@e -c user.name=t commit -q -m c`
        const dir = remoteDir('probe-cred')
        const result = await run(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', source])
        assert.equal(result.code, 0, result.stderr)
        assert.deepEqual(
          CREDENTIALS.filter((name) => exists(path.join(dir, name))),
          [],
          'credential files on the target',
        )
      },
    ],
    [
      "a file holding HF_TOKEN's value",
      async () => {
        const source = await makeProject({ 'app.py': 'print(1)\n', 'notes.txt': `my token is ${TOKEN}\n` }, { git: true })
        const dir = remoteDir('probe-value')
        const result = await run(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', source], { ...process.env, HF_TOKEN: TOKEN })
        assert.equal(result.code, 2, result.stderr)
        assert.match(result.stderr, /notes\.txt: holds the value of a secret/)
        assert.equal(exists(path.join(dir, 'notes.txt')), false)
      },
    ],
    [
      'a gitignored odd/secret\\xff.log beside a tracked odd/tracked\\xff.py',
      async () => {
        const source = await makeProject({ '.gitignore': '*.log\n', 'app.py': 'print(1)\n' })
        await mkdir(path.join(source, 'odd'))
        await writeFile(pathUnder(source, 'odd/secret\xff.log'), 'secret\n')
        await writeFile(pathUnder(source, 'odd/tracked\xff.py'), 'code\n')
        await $({ cwd: source, quiet: true })`git init -q && git add -A && git -c user.email=t@e -c user.name=t commit -q -m c`
        const dir = remoteDir('probe-bytes')
        const result = await run(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', source])
        assert.equal(result.code, 0, result.stderr)
        assert.equal(exists(pathUnder(dir, 'odd/secret\xff.log')), false, 'the ignored file shipped')
        assert.equal(exists(pathUnder(dir, 'odd/tracked\xff.py')), true, 'the tracked file did not ship')
      },
    ],
    [
      '--ssh-config "$DIR/c\' -S none -oProxyCommand=\'touch $DIR/pwned" (an rsync push)',
      async () => {
        const scratch = await mkdtemp(path.join(tmpdir(), 'gre-probe-'))
        const pwned = path.join(scratch, 'pwned')
        const crafted = path.join(scratch, `c' -S none -oProxyCommand='touch ${pwned}`)
        await mkdir(path.dirname(crafted), { recursive: true })
        await copyFile(harness().sshd.configFile, crafted)
        const files: Record<string, string> = {}
        for (let i = 0; i < 300; i++) files[`src/m${i}.py`] = `x = ${i}\n`
        const source = await makeProject(files, { git: true })
        const result = await run(SYNC, [
          '--host',
          harness().sshd.alias,
          '--ssh-config',
          crafted,
          '--remote-dir',
          remoteDir('probe-quote'),
          '--project-dir',
          source,
        ])
        assert.equal(exists(pwned), false, 'a local command ran')
        assert.equal(result.code, 0, result.stderr)
      },
    ],
    [
      '--models-dir ~ --datasets-dir ~ --fresh-cache (~ holds manifest.json and hf_cache/mine)',
      async () => {
        // A host with a home of its own: other tests look at the shared test user's home meanwhile.
        const host = await sshHost({ ownHome: true })
        const home = host.home
        await writeAsTestUser(path.join(home, 'manifest.json'), '{"mine": true}\n')
        await writeAsTestUser(path.join(home, 'hf_cache/mine/data.bin'), 'mine\n')
        try {
          const result = await run(
            SSH_EVAL,
            [
              ...host.flags,
              '--remote-dir',
              await evalDir(),
              '--project-dir',
              project,
              '--venv',
              harness().venv,
              '--runtime',
              'cpu',
              '--remote-has-internet',
              'yes',
              '--models-dir',
              home,
              '--datasets-dir',
              home,
              '--fresh-cache',
            ],
            { ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9' },
          )
          assert.equal(result.code, 2, result.stderr)
          assert.equal(await readFile(path.join(home, 'manifest.json'), 'utf8'), '{"mine": true}\n')
          assert.equal(exists(path.join(home, 'hf_cache/mine/data.bin')), true)
        } finally {
          await rm(path.join(home, 'manifest.json'), { force: true })
          await rm(path.join(home, 'hf_cache/mine'), { recursive: true, force: true })
        }
      },
    ],
    [
      '--remote-dir /var/tmp',
      async () => {
        const result = await run(SYNC, [...sshFlags(), '--remote-dir', '/var/tmp', '--project-dir', project])
        assert.equal(result.code, 2, result.stderr)
      },
    ],
    [
      '--remote-dir LINK --adopt-remote-dir, LINK -> /tmp',
      async () => {
        const link = `${remoteDir('probe-link')}`
        await symlink('/tmp', link)
        const result = await run(SYNC, [...sshFlags(), '--remote-dir', link, '--adopt-remote-dir', '--project-dir', project])
        assert.equal(result.code, 2, result.stderr)
        assert.equal(exists('/tmp/.remote-eval'), false, '/tmp was claimed')
      },
    ],
    [
      '15,000 files deleted locally, then a push',
      async () => {
        const source = await mkdtemp(path.join(tmpdir(), 'gre-probe-many-'))
        await writeFile(path.join(source, 'keep.py'), 'kept\n')
        for (let d = 0; d < 15; d++) {
          await mkdir(path.join(source, `generated_module_directory_${d}`))
          await Promise.all(
            Array.from({ length: 1000 }, (_, i) =>
              writeFile(path.join(source, `generated_module_directory_${d}`, `a_fairly_long_generated_file_name_${i}.py`), `x = ${i}\n`),
            ),
          )
        }
        const dir = remoteDir('probe-many')
        const sync = () => run(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', source, '--max-total-size', '1G'])
        assert.equal((await sync()).code, 0)
        for (let d = 0; d < 15; d++) await rm(path.join(source, `generated_module_directory_${d}`), { recursive: true })
        const second = await sync()
        assert.equal(second.code, 0, second.stderr.slice(-2000))
        assert.deepEqual(
          (await readdir(dir)).filter((n) => n !== '.remote-eval'),
          ['keep.py'],
        )
        await rm(source, { recursive: true, force: true })
      },
    ],
    [
      'a run dir holding metrics.csv -> ~/victim.csv, passwd -> /etc/passwd, up -> ../../../..',
      async () => {
        await writeFile(path.join(homedir(), 'victim.csv'), 'task,scope\nlocal victim,x\n')
        const result = await run(SSH_EVAL, evalArgs('links', await evalDir()))
        assert.doesNotMatch(result.stderr, /local victim/, 'a local file was read through a link')
        assert.equal(result.code, 0, result.stderr)
        const local = JSON.parse(result.stdout).local_run_dir as string
        // The eval's one regular file; run.json and run.log are the runner's record of the run.
        assert.deepEqual(
          (await readdir(local)).filter((f) => !/^run\.(json|log)$/.test(f)),
          ['report.json'],
        )
      },
    ],
    [
      "another user created the target's old lock name, /tmp/remote-eval-UID-KEY.lock",
      async () => {
        const dir = remoteDir('probe-lock')
        const uid = (await $`id -u ${harness().sshd.user}`.quiet()).stdout.trim()
        const key = (await $`printf %s ${dir} | sha256sum`.quiet()).stdout.slice(0, 16)
        const squatted = `/tmp/remote-eval-${uid}-${key}.lock`
        await writeFile(squatted, 'mine\n', { mode: 0o600 })
        try {
          const result = await run(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project])
          assert.equal(result.code, 0, result.stderr)
        } finally {
          await rm(squatted, { force: true })
        }
      },
    ],
    [
      'an eval that double-forks a child holding its stdout open (sleep 300)',
      async () => {
        const result = await run(SSH_EVAL, evalArgs('fork', await evalDir()))
        assert.notEqual(result.code, null, 'the runner was still waiting after 90 s')
        assert.equal(result.code, 0, result.stderr)
      },
    ],
    [
      'an eval that prints 50 MB without a newline',
      async () => {
        const result = await run(SSH_EVAL, evalArgs('bigline', await evalDir()))
        assert.notEqual(result.code, null, 'the runner was still waiting after 90 s')
        assert.equal(result.code, 0, result.stderr.slice(-2000))
      },
    ],
    [
      '--dry-run with HF_ENDPOINT=https://probe-user:probe-pass-5150@hub.example',
      async () => {
        const result = await run(
          SSH_EVAL,
          [
            ...sshFlags(),
            '--remote-dir',
            remoteDir('probe-dry'),
            '--project-dir',
            project,
            '--dry-run',
            '--runtime',
            'cpu',
            '--remote-has-internet',
            'yes',
          ],
          { ...process.env, HF_ENDPOINT: 'https://probe-user:probe-pass-5150@hub.example' },
        )
        assert.equal(result.code, 0, result.stderr)
        assert.ok(!`${result.stdout}\n${result.stderr}`.includes('probe-pass-5150'), 'the password was printed')
      },
    ],
    [
      'an eval that prints HF_TOKEN cut across two lines',
      async () => {
        const result = await run(SSH_EVAL, evalArgs('split', await evalDir()))
        const all = `${result.stdout}\n${result.stderr}`
        assert.ok(!all.includes(TOKEN.slice(0, 14)) && !all.includes(TOKEN.slice(14)), 'a half of the token was printed')
        assert.equal(result.code, 0, result.stderr)
      },
    ],
  ]

  for (const [input, check] of rows) test(input, { timeout: ROW_TIMEOUT_MS * 3 }, check)
})
