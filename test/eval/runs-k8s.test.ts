import assert from 'node:assert/strict'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import {
  EXAMPLE_HUB,
  copyExample,
  harness,
  livingProcesses,
  sleepFor,
  makePod,
  runScript,
  startScript,
  type TestPod,
  FETCHED_REPORT,
} from '../support/harness.ts'

// Runs in a pod (the API server double: a sandbox with its own PID namespace, whose processes the
// host's process table still shows): detach, attach, stop, list and Ctrl-C, through kubectl exec.

const TOKEN = 'hf_pod_runs_token_4471'
const SCRIPT = 'remote_eval/k8s_eval.ts'

describe('runs that outlive the runner (pod)', () => {
  let hub: HubServer
  let pod: TestPod
  let project: string
  const env = () => ({ ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' })
  const args = (extra: string[] = []) => [
    '--context',
    pod.context,
    '--namespace',
    pod.namespace,
    '--pod',
    pod.pod,
    '--runtime',
    'cpu',
    '--venv',
    '/opt/venv',
    '--project-dir',
    project,
    ...extra,
  ]

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    pod = await makePod(['main'], { binds: [`ro ${harness().venv} /opt/venv`] })
    await mkdir(path.join(pod.workdir('main'), 'guardrails'), { recursive: true })
    await writeFile(path.join(pod.workdir('main'), 'guardrails/.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    project = await copyExample()
  })
  after(() => hub.stop())

  test('--detach, then --attach fetches the report', async () => {
    const detached = await runScript(SCRIPT, args(['--detach', ...sleepFor(2).args]), env())
    assert.equal(detached.code, 0, detached.stderr)
    const runId = JSON.parse(detached.stdout).remote_run_id
    const attached = await runScript(SCRIPT, args(['--attach', runId]), env())
    assert.equal(attached.code, 0, attached.stderr)
    assert.deepEqual((await readdir(JSON.parse(attached.stdout).local_run_dir)).sort(), FETCHED_REPORT)
  })

  test('--stop leaves no process of the run in the pod; --list shows it stopped', async () => {
    const sleep = sleepFor(60)
    const detached = await runScript(SCRIPT, args(['--detach', ...sleep.args]), env())
    assert.equal(detached.code, 0, detached.stderr)
    const runId = JSON.parse(detached.stdout).remote_run_id
    assert.ok((await livingProcesses(sleep.marker)).length > 0, 'the run goes on after its kubectl exec ended')
    const stopped = await runScript(SCRIPT, args(['--stop', runId]), env())
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
    const listed = await runScript(SCRIPT, args(['--list']), env())
    const runs = JSON.parse(listed.stdout).runs as Array<{ id: string; state: string }>
    assert.equal(runs.find((r) => r.id === runId)?.state, 'stopped')
    assert.ok(runs.some((r) => r.state === 'finished'))
  })

  test('Ctrl-C without a terminal stops the run in the pod: exit 130', async () => {
    const sleep = sleepFor(60)
    const runner = await startScript(SCRIPT, args(sleep.args), env())
    await runner.waitFor(/\[guardrails-mini\] sleeping/)
    runner.kill('SIGINT')
    const result = await runner.result
    assert.equal(result.code, 130, result.stderr)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
  })

  test('--list shows the space of each run in the pod, --prune removes the ended ones with their reports, --check-assets checks the directories', async () => {
    const listed = JSON.parse((await runScript(SCRIPT, args(['--list']), env())).stdout)
    assert.ok(listed.runs.length >= 3 && listed.runs.every((r: { bytes: number }) => r.bytes > 0), JSON.stringify(listed))
    const reports = path.join(pod.workdir('main'), 'guardrails/reports/evaluations')
    assert.ok((await readdir(reports)).length > 0)
    const pruned = await runScript(SCRIPT, args(['--prune', '--keep-last', '1']), env())
    assert.equal(pruned.code, 0, pruned.stderr)
    assert.equal(JSON.parse(pruned.stdout).pruned.length, listed.runs.length - 1)
    const left = JSON.parse((await runScript(SCRIPT, args(['--list']), env())).stdout).runs
    assert.deepEqual(
      left.map((r: { id: string }) => r.id),
      [listed.runs.at(-1).id],
      'the newest stays',
    )
    assert.deepEqual(await readdir(reports), left[0].run_id ? [left[0].run_id] : [], 'the others took their reports with them')
    // The runs above downloaded into the default directories of the pod's workdir.
    const assets = ['--models-dir', '/workdir/guardrails/.models', '--datasets-dir', '/workdir/guardrails/.datasets']
    const checked = await runScript(SCRIPT, args(['--check-assets', ...assets]), env())
    assert.equal(checked.code, 0, checked.stderr)
    assert.deepEqual([JSON.parse(checked.stdout).models.complete, JSON.parse(checked.stdout).datasets.complete], [true, true])
    const missing = await runScript(SCRIPT, args(['--check-assets', '--models-dir', '/workdir/none', '--datasets-dir', assets[3]!]), env())
    assert.equal(missing.code, 10, missing.stderr)
    assert.match(missing.stderr, /^\[error\] Fix: .*download_models\.ts/m)
  })
})
