import assert from 'node:assert/strict'
import { readdir, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, makePod, podExecs, runScript, type TestPod, FETCHED_REPORT } from '../support/harness.ts'
import { tmpdir } from 'node:os'
import { $ } from 'zx'

// k8s_eval.ts through the real kubectl and the API server double: each container a sandbox with its own /workdir, the test
// venv mounted read-only at /opt/venv (a prebuilt environment, as images usually carry one).

const TOKEN = 'hf_pod_token_5512'
const SCRIPT = 'remote_eval/k8s_eval.ts'

describe('k8s_eval.ts', () => {
  let hub: HubServer
  // Read after makePod(), which adds the pod's context to KUBECONFIG.
  const env = () => ({ ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' })
  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
  })
  after(() => hub.stop())

  async function podWithToken(containers: string[], container = containers[0]!): Promise<TestPod> {
    const pod = await makePod(containers, { binds: [`ro ${harness().venv} /opt/venv`] })
    // The token lives in the pod only, in the eval repo's .env.eval under the default --workdir.
    await mkdir(path.join(pod.workdir(container), 'guardrails'), { recursive: true })
    await writeFile(path.join(pod.workdir(container), 'guardrails/.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    return pod
  }
  const podArgs = (pod: TestPod, project: string) => [
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
  ]

  test('runs at the default --workdir in the default container, and fetches the report', async () => {
    const pod = await podWithToken(['main', 'sidecar'])
    const project = await copyExample()
    const result = await runScript(SCRIPT, podArgs(pod, project), env())
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.match(out.remote_run_dir, /^\/workdir\/guardrails\/reports\/evaluations\/eval_guardrails_ru_fast_/)
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), FETCHED_REPORT)
    assert.ok((await readdir(path.join(pod.workdir('main'), 'guardrails/.models/token_classifier'))).includes('org__ru-pii-detector'))
    assert.deepEqual(await readdir(pod.workdir('sidecar')), [], 'the other container was not touched')
    assert.doesNotMatch(result.stderr, /Defaulted container/)
    assert.ok((await podExecs(pod)).every((e) => e.container === 'main'))
  })

  test('--container picks the container', async () => {
    const pod = await podWithToken(['main', 'gpu'], 'gpu')
    const project = await copyExample()
    const result = await runScript(SCRIPT, [...podArgs(pod, project), '--container', 'gpu', '--remote-has-internet', 'yes'], env())
    assert.equal(result.code, 0, result.stderr)
    assert.ok((await readdir(path.join(pod.workdir('gpu'), 'guardrails/reports/evaluations'))).length === 1)
    assert.deepEqual(await readdir(pod.workdir('main')), [])
    assert.ok((await podExecs(pod)).every((e) => e.container === 'gpu'))
  })

  test('air-gapped with no models in the pod: exit 10, and the printed fix (tar through kubectl exec) works when pasted', async () => {
    const pod = await podWithToken(['main', 'gpu'], 'gpu')
    const project = await copyExample()
    const airGapped = [
      ...podArgs(pod, project),
      '--container',
      'gpu',
      '--remote-has-internet',
      'no',
      '--models-dir',
      '/workdir/models',
      '--datasets-dir',
      '/workdir/datasets',
    ]
    const result = await runScript(SCRIPT, airGapped, env())
    assert.equal(result.code, 10, result.stderr)
    const fix = /Fix: on a machine with internet: (.*) \(or run with --remote-has-internet yes\)$/m.exec(result.stderr)?.[1]
    assert.ok(fix, result.stderr)
    assert.match(fix, /\| kubectl --context \S+ --namespace ml exec -i \S+ --container gpu -- sh -c /)
    const userShell = { ...env(), HF_TOKEN: TOKEN, PATH: `${harness().fixturesBin}:${process.env.PATH}`, UV_DOUBLE_VENV: harness().venv }
    const pasted = await $({ cwd: tmpdir(), env: userShell, nothrow: true, quiet: true })`bash -c ${fix}`
    assert.equal(pasted.exitCode, 0, pasted.stderr)
    const again = await runScript(SCRIPT, airGapped, env())
    assert.equal(again.code, 11, again.stderr)
    assert.match(again.stderr, /^\[models\] models in \/workdir\/models: complete/m)
  })

  test('a pod without bash: exit 4 naming bash', async () => {
    const pod = await makePod(['main'], { noBash: true })
    const result = await runScript(
      SCRIPT,
      ['--context', pod.context, '--namespace', pod.namespace, '--pod', pod.pod, '--runtime', 'cpu', '--project-dir', await copyExample()],
      env(),
    )
    assert.equal(result.code, 4, result.stderr)
    assert.match(result.stderr, /bash is not available in pod/)
  })
})
