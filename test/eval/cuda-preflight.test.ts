import assert from 'node:assert/strict'
import { chmod, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import { $ } from 'zx'
import { layOutExampleAssets } from '../../examples/demo-assets.ts'
import { AIR_GAPPED_POD_FLAGS, EXAMPLE_HUB, copyExample, harness, makePod, remoteDir, runScript } from '../support/harness.ts'

// --runtime cuda looks at the GPUs before anything is sent: nvidia-smi -L must list them (its
// failure, or no GPU, is exit 4 quoting it), and each --gpus id must be one it lists (exit 2). The
// nvidia-smi double plays each host through the nvidia-smi.conf beside it.

const K8S = 'remote_eval/k8s_eval.ts'

/** An eval that reports the GPUs it was given (the example's own needs Arrow caches, not the demo's JSONL). */
const GPU_PROBE = String.raw`
import json, os
out = os.path.realpath(os.path.join("reports", "evaluations", "eval_gpu_1"))
os.makedirs(out, exist_ok=True)
json.dump({"report_version": "3.0", "run": {"env": {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}}}, open(os.path.join(out, "report.json"), "w"))
print(json.dumps({"run_dir": out, "report_json": os.path.join(out, "report.json"), "report_md": "", "metrics_csv": ""}))
`

describe('the CUDA preflight', () => {
  let project: string
  let assets: { models: string; datasets: string }
  before(async () => {
    project = await copyExample()
    await writeFile(path.join(project, 'app/eval/gpu_probe.py'), GPU_PROBE)
    const root = remoteDir('cuda-assets')
    assets = { models: path.join(root, 'models'), datasets: path.join(root, 'datasets') }
    await layOutExampleAssets(EXAMPLE_HUB, assets.models, assets.datasets, 'guardrails_ru', ['fast', 'full'])
  })

  /** A pod whose /usr/local/sbin holds the nvidia-smi double told `conf` (none: no nvidia-smi at all). */
  async function cudaRun(conf: string | null, gpus?: string, extra: string[] = [], venv = harness().venv) {
    const binds = [`ro ${venv} /opt/venv`, `ro ${assets.models} /mnt/models`, `ro ${assets.datasets} /mnt/datasets`]
    if (conf !== null) {
      const bin = await mkdtemp(path.join(tmpdir(), 'gre-gpu-bin-'))
      await cp(path.join(harness().fixturesBin, 'nvidia-smi'), path.join(bin, 'nvidia-smi'))
      await writeFile(path.join(bin, 'nvidia-smi.conf'), conf)
      await chmod(bin, 0o755)
      binds.push(`ro ${bin} /usr/local/sbin`)
    }
    const pod = await makePod(['main'], { binds })
    const args = [
      '--context',
      pod.context,
      '--namespace',
      pod.namespace,
      '--pod',
      pod.pod,
      ...AIR_GAPPED_POD_FLAGS,
      '--project-dir',
      project,
      '--runtime',
      'cuda',
      ...(gpus ? ['--gpus', gpus] : []),
      ...extra,
    ]
    const result = await runScript(K8S, args, { ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9' })
    const synced = await readFile(path.join(pod.workdir(), 'guardrails/pyproject.toml')).then(
      () => true,
      () => false,
    )
    return { ...result, synced }
  }

  const refusals: Array<[string, string | null, string | undefined, number, RegExp]> = [
    [
      'no nvidia-smi on the target',
      null,
      undefined,
      4,
      /--runtime cuda, but nvidia-smi is not on pod .*: install the NVIDIA driver there, or run with --runtime cpu/,
    ],
    [
      'the driver is not loaded',
      'fail=driver\n',
      undefined,
      4,
      /nvidia-smi -L failed on pod .* \(exit 9\): "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\. .*"\. Fix the NVIDIA driver there, or run with --runtime cpu/,
    ],
    [
      'a driver/library version mismatch',
      'fail=nvml\n',
      undefined,
      4,
      /\(exit 18\): "Failed to initialize NVML: Driver\/library version mismatch"\. Fix the NVIDIA driver there \(after a driver upgrade, reboot the host/,
    ],
    ['no GPU listed', 'gpus=0\n', undefined, 4, /nvidia-smi -L on pod .* finds no GPU \("No devices were found"\)/],
    [
      '--gpus names a GPU the host does not have',
      'gpus=2\n',
      '1,2',
      2,
      /--gpus 1,2: pod .* has no GPU 2; nvidia-smi -L lists 0, 1\. Pass ids from that list, e.g\. --gpus 0\./,
    ],
  ]
  for (const [name, conf, gpus, code, message] of refusals) {
    test(`${name}: exit ${code}, quoting what nvidia-smi said, before anything is sent`, async () => {
      const result = await cudaRun(conf, gpus)
      assert.equal(result.code, code, result.stderr)
      assert.match(result.stderr, message)
      assert.equal(result.synced, false, 'the code was synced')
    })
  }

  test('four GPUs listed and --gpus 3: the run goes on that GPU', async () => {
    const result = await cudaRun('gpus=4\n', '3', ['--eval-module', 'app.eval.gpu_probe'])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[preflight\] .*, 4 GPU\(s\)/m)
    const report = JSON.parse(await readFile(path.join(JSON.parse(result.stdout).local_run_dir, 'report.json'), 'utf8'))
    assert.equal(report.run.env.CUDA_VISIBLE_DEVICES, '3')
  })

  test('a pod with two GPUs and --shard: one eval per GPU through kubectl, merged in the pod', async () => {
    // A bare venv: without the datasets package the example reads the JSONL export laid out above.
    const bare = await mkdtemp(path.join(tmpdir(), 'gre-bare-venv-'))
    await $`/usr/bin/python3 -m venv ${bare}`.quiet()
    const result = await cudaRun('gpus=2\n', '0,1', ['--shard', '--env', 'GR_ENABLE_NEMOTRON=true'], bare).finally(() =>
      rm(bare, { recursive: true, force: true }),
    )
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout) as {
      merged_report: string
      shards: Array<{ gpu: string; datasets: string[]; exit_code: number }>
    }
    assert.deepEqual(
      out.shards.map((s) => [s.gpu, s.exit_code]),
      [
        ['0', 0],
        ['1', 0],
      ],
    )
    assert.deepEqual(out.shards.flatMap((s) => s.datasets).sort(), ['ru_pii_chat', 'ru_pii_forms'])
    assert.match(result.stderr, /^\[run\] \[shard 2 gpu 1\] \[guardrails-mini\] runtime cuda, .*CUDA_VISIBLE_DEVICES=1$/m)
    const merged = JSON.parse(await readFile(out.merged_report, 'utf8'))
    assert.equal(merged.tasks.span_detection.sample_count, 20, 'the 12 chat and 8 forms samples, merged')
  })
})
