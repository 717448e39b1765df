import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { before, describe, test } from 'node:test'
import { addKubeContext, makePod, unique, type TestPod } from '../support/harness.ts'

// `kubectl get pods --selector` through the real client and the API server double: the pods a label
// selector picks, by name, with their phase, and kubectl's words for a selector the server refuses.

const JSONPATH = 'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.phase}{"\\n"}{end}'

function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile('kubectl', args, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    ),
  )
}

describe('kubectl get pods --selector, on the API server double', () => {
  const context = unique('ctx')
  let kubeconfig = ''
  let evalRunning: TestPod, evalPending: TestPod, other: TestPod
  const getPods = (selector: string, namespace = 'ml') =>
    kubectl([
      '--kubeconfig',
      kubeconfig,
      '--context',
      context,
      '--namespace',
      namespace,
      'get',
      'pods',
      '--selector',
      selector,
      '-o',
      JSONPATH,
    ])

  before(async () => {
    kubeconfig = await addKubeContext(context)
    evalRunning = await makePod(['main'], { context, labels: { app: 'eval', tier: 'gpu' } })
    evalPending = await makePod(['main'], { context, labels: { app: 'eval' }, phase: 'Pending' })
    other = await makePod(['main'], { context, labels: { app: 'other' } })
  })

  const rows: Array<[selector: string, picks: () => TestPod[]]> = [
    ['app=eval', () => [evalRunning, evalPending]],
    ['app==eval,tier', () => [evalRunning]],
    ['app!=eval', () => [other]],
    ['app in (eval,other)', () => [evalRunning, evalPending, other]],
    ['app notin (eval)', () => [other]],
    ['!tier', () => [evalPending, other]],
    ['app=none', () => []],
  ]
  for (const [selector, picks] of rows) {
    test(`'${selector}': the pods it picks, sorted by name, with their phase`, async () => {
      const result = await getPods(selector)
      assert.equal(result.code, 0, result.stderr)
      const phase = (pod: TestPod) => (pod === evalPending ? 'Pending' : 'Running')
      const expected = picks()
        .sort((a, b) => (a.pod < b.pod ? -1 : 1))
        .map((pod) => `${pod.pod} ${phase(pod)}\n`)
      assert.equal(result.stdout, expected.join(''))
    })
  }

  test('a namespace that does not exist: no pods, as the real server lists it', async () => {
    const result = await getPods('app=eval', 'no-such-ns')
    assert.deepEqual([result.code, result.stdout], [0, ''], result.stderr)
  })

  test("a selector that does not parse: the server's BadRequest, in kubectl's words", async () => {
    const result = await getPods('app in (eval')
    assert.equal(result.code, 1)
    assert.equal(
      result.stderr,
      `Error from server (BadRequest): Unable to find "/v1, Resource=pods" that match label selector "app in (eval", field selector "": unable to parse requirement: found '', expected: ',' or ')'\n`,
    )
  })

  test('GET of one pod shows its labels', async () => {
    const result = await kubectl([
      '--kubeconfig',
      kubeconfig,
      '--context',
      context,
      '--namespace',
      'ml',
      'get',
      'pod',
      evalRunning.pod,
      '-o',
      'jsonpath={.metadata.labels}',
    ])
    assert.deepEqual(JSON.parse(result.stdout), { app: 'eval', tier: 'gpu' }, result.stderr)
  })
})
