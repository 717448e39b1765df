import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { describe, test } from 'node:test'
import { addKubeContext, makePod, makeProject, runScript, type PodOptions } from '../support/harness.ts'

// What the real kubectl prints when a pod cannot be reached, and the exit code and advice each
// becomes. The failures are staged on the API server double; the words are kubectl's own.

interface Row {
  name: string
  pod?: PodOptions
  /** Flags that replace the good ones (a made-up context, namespace, pod or container). */
  flags?: (good: { context: string; namespace: string; pod: string }) => string[]
  code: number
  /** What kubectl printed, quoted in our message. */
  kubectl: RegExp
  /** What we add: what is wrong and how to fix it. */
  advice: RegExp
}

const rows: Row[] = [
  {
    name: 'a context not in the kubeconfig',
    flags: (g) => ['--context', 'no-such-context', '--namespace', g.namespace, '--pod', g.pod],
    code: 2,
    // kubectl's words with --namespace given, as we always give it (without: "Error in
    // configuration: context was not found for specified context: no-such-context").
    kubectl: /\(kubectl: error: context "no-such-context" does not exist\)/,
    advice: /--context no-such-context is not in your kubeconfig .*`kubectl config get-contexts`/,
  },
  {
    name: 'a namespace that does not exist',
    flags: (g) => ['--context', g.context, '--namespace', 'no-such-ns', '--pod', g.pod],
    code: 2,
    kubectl: /\(kubectl: Error from server \(NotFound\): namespaces "no-such-ns" not found\)/,
    advice: /--namespace no-such-ns does not exist in context \S+ .*get namespaces/,
  },
  {
    name: 'a pod that does not exist',
    flags: (g) => ['--context', g.context, '--namespace', g.namespace, '--pod', 'no-such-pod'],
    code: 2,
    kubectl: /\(kubectl: Error from server \(NotFound\): pods "no-such-pod" not found\)/,
    advice: /--pod no-such-pod is not in namespace ml of context \S+ .*get pods/,
  },
  {
    name: 'a container the pod does not have',
    flags: (g) => ['--context', g.context, '--namespace', g.namespace, '--pod', g.pod, '--container', 'gpu'],
    code: 2,
    kubectl: /\(kubectl: Error from server \(BadRequest\): container gpu is not valid for pod eval-\w+\)/,
    advice: /--container gpu is not a container of pod ml\/eval-\w+ .*jsonpath/,
  },
  {
    name: 'a pod still starting (Pending)',
    pod: { phase: 'Pending' },
    code: 5,
    kubectl: /\(kubectl: Error from server \(BadRequest\): container not found \("main"\)\)/,
    advice: /pod ml\/eval-\w+ is not running .*get pod eval-\w+`; run again when it is Running/,
  },
  {
    name: 'a pod that has completed',
    pod: { phase: 'Succeeded' },
    code: 5,
    kubectl: /\(kubectl: error: cannot exec into a container in a completed pod; current phase is Succeeded\)/,
    advice: /pod ml\/eval-\w+ is not running/,
  },
  {
    name: 'an image without bash',
    pod: { noBash: true },
    code: 4,
    kubectl: /\(kubectl: error: Internal error occurred: .*exec: "bash": executable file not found in \$PATH: unknown\)/,
    advice: /bash is not available in pod ml\/eval-\w+ .*Use an image with bash, or pick its container with --container/,
  },
]

describe('kubectl failures, as the real client prints them', () => {
  for (const row of rows) {
    test(`${row.name}: exit ${row.code}, kubectl's words quoted, nothing written in the pod`, async () => {
      const pod = await makePod(['main'], row.pod)
      const good = { context: pod.context, namespace: pod.namespace, pod: pod.pod }
      const flags = row.flags?.(good) ?? ['--context', pod.context, '--namespace', pod.namespace, '--pod', pod.pod]
      const project = await makeProject({ 'a.py': 'x = 1\n' }, { git: true })
      const result = await runScript('remote_eval/sync_code.ts', [...flags, '--project-dir', project])
      assert.equal(result.code, row.code, result.stderr)
      const error = result.stderr.split('\n').find((l) => l.startsWith('[error]')) ?? ''
      assert.match(error, row.kubectl, result.stderr)
      assert.match(error, row.advice)
      assert.deepEqual(await readdir(pod.workdir()), [], 'nothing was written in the pod')
    })
  }

  test("a cluster that does not answer: exit 5 with kubectl's words", async () => {
    const pod = await makePod()
    // A context of its own whose server is a port nothing listens on.
    await addKubeContext('down-cluster', 'http://127.0.0.1:9')
    const project = await makeProject({ 'a.py': 'x = 1\n' }, { git: true })
    const result = await runScript('remote_eval/sync_code.ts', [
      '--context',
      'down-cluster',
      '--namespace',
      pod.namespace,
      '--pod',
      pod.pod,
      '--project-dir',
      project,
    ])
    assert.equal(result.code, 5, result.stderr)
    assert.match(
      result.stderr,
      /\[error\] the cluster of context down-cluster did not answer \(kubectl: The connection to the server 127\.0\.0\.1:9 was refused - did you specify the right host or port\?\)\. Check the network/,
    )
  })
})
