import assert from 'node:assert/strict'
import { cp, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, remoteDir, runScript, sshFlags, writeAsTestUser } from '../support/harness.ts'

// The runbook's fast-split workflow: a tool of the repo (app.tools.rebalance_fast_splits) run on
// the target with --run-module, dry run then push, with the target's token; a prepared datasets
// directory then found stale against the Hub; the runner preparing the new commit by itself.

const TOKEN = 'hf_rebalance_token_6022'
const SSH = 'remote_eval/ssh_eval.ts'

describe('fast splits rebuilt on the Hub from the target', () => {
  let hub: HubServer
  let project: string
  let dir: string
  let local: string
  let env: NodeJS.ProcessEnv
  const module = (args: string[]) => [
    ...sshFlags(),
    '--remote-dir',
    dir,
    '--project-dir',
    project,
    '--run-module',
    'app.tools.rebalance_fast_splits',
    ...args.map((a) => `--module-arg=${a}`),
  ]
  const checkAgainstHub = () =>
    runScript(
      'download_datasets.ts',
      ['--check', '--against-hub', '--datasets-dir', local, '--project-dir', project, '--venv', harness().venv],
      { ...env, HF_TOKEN: TOKEN },
    )

  before(async () => {
    const repos = await mkdtemp(path.join(tmpdir(), 'gre-rebalance-hub-'))
    await cp(EXAMPLE_HUB, repos, { recursive: true })
    hub = await startHub({ root: repos, tokens: [TOKEN] })
    project = await copyExample()
    dir = remoteDir('rebalance')
    local = path.join(await mkdtemp(path.join(tmpdir(), 'gre-rebalance-')), 'datasets')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  test('a dry run prints the plan, streamed, with the token of the target; nothing is pushed', async () => {
    const prepared = await runScript(
      'download_datasets.ts',
      ['--datasets-dir', local, '--project-dir', project, '--venv', harness().venv],
      { ...env, HF_TOKEN: TOKEN },
    )
    assert.equal(prepared.code, 0, prepared.stderr)
    assert.equal((await checkAgainstHub()).code, 0)
    const before = hub.requests.length
    const result = await runScript(SSH, module(['--size=6']), env)
    assert.equal(result.code, 0, result.stderr)
    const plan = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(
      plan.map((p) => [p.hf_id, p.full_rows, p.fast_rows]),
      [
        ['org/ru-pii-chat', 60, 6],
        ['org/ru-pii-forms', 40, 6],
      ],
    )
    assert.match(result.stderr, /^\[preflight\] .*HF_TOKEN from \.env\.eval there/m)
    assert.match(result.stderr, /^\[run\] \[dry-run\] nothing pushed/m)
    assert.match(result.stderr, /^\[done\] python -m app\.tools\.rebalance_fast_splits exited 0$/m)
    const used = hub.requests.slice(before)
    assert.ok(used.some((r) => r.authorization === `Bearer ${TOKEN}`))
    assert.ok(!used.some((r) => r.method === 'POST' && r.path.includes('/commit/')), 'nothing committed')
  })

  test("the module's failure is passed through: its exit code, its traceback as [run] lines", async () => {
    const result = await runScript(SSH, module(['--suite=nope']), env)
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /^\[run\] KeyError: 'nope'$/m)
    assert.match(result.stderr, /^\[error\] python -m app\.tools\.rebalance_fast_splits exited 1$/m)
  })

  test('--push --no-dry-run commits; the prepared directory is then stale, and an online run prepares the new commit', async () => {
    const pushed = await runScript(SSH, module(['--push', '--no-dry-run', '--size=6']), env)
    assert.equal(pushed.code, 0, pushed.stderr)
    assert.match(pushed.stderr, /^\[run\] \[push\] org\/ru-pii-chat: fast split of 6 rows at [0-9a-f]{40}$/m)

    const stale = await checkAgainstHub()
    assert.equal(stale.code, 11, stale.stderr)
    assert.match(stale.stderr, /datasets in .* are stale:\n.*org\/ru-pii-chat: prepared from [0-9a-f]{12}, the Hub is at [0-9a-f]{12} now/)
    assert.match(
      stale.stderr,
      /Fix: cd \S+ && \S+\/scripts\/download_datasets\.ts --datasets-dir \S+ --project-dir \S+ --venv \S+ \(it prepares again/,
    )
    assert.doesNotMatch(stale.stderr, /Fix: .*--(check|against-hub)/)

    const run = await runScript(
      SSH,
      [
        ...sshFlags(),
        '--remote-dir',
        dir,
        '--project-dir',
        project,
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'yes',
        '--models-dir',
        `${dir}/models`,
        '--datasets-dir',
        `${dir}/datasets`,
      ],
      env,
    )
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /\[loaded\] dataset=ru_pii_chat split=fast samples=6/)
  })
})
