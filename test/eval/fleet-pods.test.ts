import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { chmod, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { layOutExampleAssets } from '../../examples/demo-assets.ts'
import {
  AIR_GAPPED_POD_FLAGS,
  EXAMPLE_HUB,
  addKubeContext,
  copyExample,
  harness,
  makePod,
  remoteDir,
  runScript,
  unique,
  type TestPod,
} from '../support/harness.ts'

// --shard over the pods a label selector finds, through the real kubectl and the API server
// double (which lists pods by their labels): each running pod with the labels is a target of one
// GPU (the nvidia-smi double), a Pending one and one of other labels are left alone.

const K8S = 'remote_eval/k8s_eval.ts'
const LABELS = { app: 'gr-eval', team: 'ml' }

describe('one suite across the pods of a label selector (kubectl)', () => {
  let project: string
  let context: string
  let scratch: string
  const pods: Record<'a' | 'b' | 'pending' | 'other', TestPod> = {} as never
  const common = () => [
    '--context',
    context,
    '--namespace',
    'ml',
    ...AIR_GAPPED_POD_FLAGS,
    '--project-dir',
    project,
    '--runtime',
    'cuda',
    '--gpus',
    '0',
    '--env',
    'GR_ENABLE_NEMOTRON=true',
  ]
  // Read at each run: addKubeContext adds the context's kubeconfig to KUBECONFIG.
  const env = () => ({ ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9' })

  before(async () => {
    project = await copyExample()
    scratch = remoteDir('fleet-pods')
    const models = path.join(scratch, 'models')
    const datasets = path.join(scratch, 'datasets')
    await layOutExampleAssets(EXAMPLE_HUB, models, datasets, 'guardrails_ru', ['fast', 'full'])
    // A bare venv: without the datasets package the example reads the JSONL export laid out above.
    const venv = path.join(scratch, 'venv')
    await $`/usr/bin/python3 -m venv ${venv}`.quiet()
    const bin = await mkdtemp(path.join(tmpdir(), 'gre-gpu-bin-'))
    await cp(path.join(harness().fixturesBin, 'nvidia-smi'), path.join(bin, 'nvidia-smi'))
    await writeFile(path.join(bin, 'nvidia-smi.conf'), 'gpus=1\n')
    await chmod(bin, 0o755)
    const binds = [`ro ${venv} /opt/venv`, `ro ${models} /mnt/models`, `ro ${datasets} /mnt/datasets`, `ro ${bin} /usr/local/sbin`]
    context = unique('ctx')
    await addKubeContext(context)
    pods.a = await makePod(['main'], { binds, context, labels: LABELS })
    pods.b = await makePod(['main'], { binds, context, labels: LABELS })
    pods.pending = await makePod(['main'], { binds, context, labels: LABELS, phase: 'Pending' })
    pods.other = await makePod(['main'], { binds, context, labels: { app: 'other' } })
  })
  after(() => rm(scratch, { recursive: true, force: true }))

  test('--selector finds the two running pods: one shard each, the merged counts equal a whole run in one pod', async () => {
    const whole = await runScript(K8S, [...common(), '--pod', pods.a.pod], env())
    assert.equal(whole.code, 0, whole.stderr)
    const wholeReport = JSON.parse(await readFile(path.join(JSON.parse(whole.stdout).local_run_dir, 'report.json'), 'utf8'))

    const result = await runScript(K8S, [...common(), '--selector', 'app=gr-eval,team in (ml,ops)', '--shard'], env())
    assert.equal(result.code, 0, result.stderr)
    const running = [pods.a.pod, pods.b.pod].sort()
    assert.match(
      result.stderr,
      new RegExp(`--selector app=gr-eval,team in \\(ml,ops\\): 2 running pod\\(s\\) in ml: ${running.join(', ')}$`, 'm'),
    )
    const out = JSON.parse(result.stdout) as {
      targets: string[]
      merged_report: string
      shards: Array<{ target: string; datasets: string[]; exit_code: number }>
    }
    assert.deepEqual(
      out.targets,
      running.map((pod) => `pod ml/${pod}`),
    )
    assert.deepEqual(
      out.shards.map((s) => [s.target, s.exit_code]),
      running.map((pod) => [`pod ml/${pod}`, 0]),
    )
    assert.deepEqual(out.shards.flatMap((s) => s.datasets).sort(), ['ru_pii_chat', 'ru_pii_forms'])
    const merged = JSON.parse(await readFile(out.merged_report, 'utf8'))
    assert.deepEqual(merged.tasks.span_detection.metrics.combined, wholeReport.tasks.span_detection.metrics.combined)
    assert.equal(merged.tasks.span_detection.sample_count, 20, 'the 12 chat and 8 forms samples, merged')
    // The code went to both running pods, and to no other.
    for (const pod of [pods.a, pods.b]) assert.ok(existsSync(path.join(pod.workdir(), 'guardrails/pyproject.toml')), pod.pod)
    for (const pod of [pods.pending, pods.other]) assert.ok(!existsSync(path.join(pod.workdir(), 'guardrails')), pod.pod)
  })

  test('a selector that finds no running pod, several pods without --shard, a dry run of a selector: exit 2, nothing sent', async () => {
    const none = await runScript(K8S, [...common(), '--selector', 'app=nothing-here', '--shard'], env())
    assert.equal(none.code, 2, none.stderr)
    assert.match(
      none.stderr,
      /No running pod in namespace ml of context \S+ has the labels app=nothing-here \(none found\)\. See `kubectl --context \S+ --namespace ml get pods --selector app=nothing-here`/,
    )
    const unsharded = await runScript(K8S, [...common(), '--selector', 'app=gr-eval'], env())
    assert.equal(unsharded.code, 2, unsharded.stderr)
    assert.match(unsharded.stderr, /2 targets were found \(pod ml\/\S+, pod ml\/\S+\); this works on one: add --shard/)
    const bad = await runScript(K8S, [...common(), '--selector', 'app in (gr-eval', '--shard'], env())
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stderr, /unable to parse requirement/)
    const dry = await runScript(K8S, [...common(), '--selector', 'app=gr-eval', '--shard', '--dry-run'], env())
    assert.equal(dry.code, 2, dry.stderr)
    assert.match(dry.stderr, /--dry-run connects nowhere, so it cannot find the targets --selector names: name each with --pod/)
    const both = await runScript(K8S, [...common(), '--pod', pods.a.pod, '--selector', 'app=gr-eval', '--shard'], env())
    assert.equal(both.code, 2, both.stderr)
    assert.match(both.stderr, /Give --pod POD \(repeatable\) or --selector LABELS, not both\./)
    const hostile = await runScript(K8S, [...common(), '--selector', 'app=$(id)', '--shard'], env())
    assert.equal(hostile.code, 2, hostile.stderr)
    assert.match(hostile.stderr, /--selector "app=\$\(id\)" is not a label selector/)
    for (const pod of [pods.pending, pods.other]) assert.ok(!existsSync(path.join(pod.workdir(), 'guardrails')), pod.pod)
  })
})
