import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, installUvForTestUser, remoteDir, runScript, sshFlags, writeAsTestUser } from '../support/harness.ts'
import { startCountingProxy, type CountingProxy } from '../support/tcp-proxy.ts'

// ssh_eval.ts as a user runs it, against the real sshd (the test user's login shell is zsh, and
// uv, the double, is only in ~/.local/bin), with the Hub double for the online downloads.

const TOKEN = 'hf_remote_only_token_77'
const SCRIPT = 'remote_eval/ssh_eval.ts'

describe('ssh_eval.ts online, through uv', () => {
  let hub: HubServer
  let proxy: CountingProxy
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  const args = () => [...sshFlags([`Port=${proxy.port}`]), '--remote-dir', dir, '--runtime', 'cpu', '--project-dir', project]

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    proxy = await startCountingProxy(harness().sshd.port)
    project = await copyExample()
    dir = remoteDir('eval')
    await installUvForTestUser()
    // The token exists only on the target, in the eval repo's .env.eval there.
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(async () => {
    await hub.stop()
    await proxy.close()
  })

  test('downloads on the target, runs, fetches the report, over one connection', async () => {
    proxy.reset()
    const result = await runScript(SCRIPT, args(), env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.match(out.run_id, /^guardrails_ru-fast-/)
    assert.equal(out.local_run_dir, path.join(project, 'reports/evaluations', out.run_id))
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), ['metrics.csv', 'report.json', 'report.md'])
    assert.match(result.stderr, /^\[models\] org\/ru-pii-detector@main\s+fetched/m)
    assert.match(result.stderr, /^\[datasets\] org\/ru-pii-chat@main\s+fetched/m)
    assert.match(result.stderr, /^\[run\] \[guardrails-mini\] org\/ru-pii-chat split fast: 12 rows$/m)
    assert.match(result.stderr, /^\[done\] task\s+scope\s+metric family\s+precision\s+recall\s+f1$/m)
    assert.match(result.stderr, /^\[done\] pii_detection\s+overall\s+label:PHONE\s+1\.0\s+1\.0\s+1\.0$/m)
    assert.equal(proxy.connections, 1, 'one SSH connection for the whole run')
    assert.ok(hub.requests.some((r) => r.authorization === `Bearer ${TOKEN}`), 'the remote token was used')
    const report = JSON.parse(await readFile(path.join(out.local_run_dir, 'report.json'), 'utf8'))
    assert.equal(report.environment.GR_MODEL_DIR, `${dir}/.models`)
    assert.equal(report.environment.HF_HOME, `${dir}/.datasets/hf_cache`)
  })

  test('a second run skips the deps and the downloads', async () => {
    const before = hub.fileDownloads().length
    const result = await runScript(SCRIPT, args(), env)
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[deps\] pyproject\.toml, uv\.lock and extras unchanged since the last sync: skipped$/m)
    assert.match(result.stderr, /0 fetched, 1 skipped/)
    assert.match(result.stderr, /0 fetched, 2 skipped/)
    assert.equal(hub.fileDownloads().length, before, 'no file downloaded again')
    assert.ok(!existsSync(path.join(project, '.env.eval')), 'the remote .env.eval never came back')
  })
})
