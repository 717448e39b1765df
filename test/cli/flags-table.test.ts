import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { layOutExampleAssets } from '../../examples/demo-assets.ts'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, runScript } from '../support/harness.ts'

// Every flag of the bash runners (guardrails:scripts/remote_eval/*.sh of the eval repo) and of its Python
// download tools (guardrails:app/tools/download_*.py): accepted with the same meaning, or refused with exit 2
// where they refused. The runners' meaning is read from --dry-run, which prints the exact scripts
// a run would send and connects to nothing.

type Plan = {
  target: string
  remote_dir: string
  round_trips: Array<{ step: string; kind: string; fn?: string | null; args?: string[]; script?: string }>
}
const scriptOf = (plan: Plan, step: string) =>
  plan.round_trips
    .filter((s) => s.step === step)
    .map((s) => s.script ?? '')
    .join('\n')

describe("the bash runners' flags", () => {
  let project: string
  before(async () => {
    project = await copyExample()
  })
  const required = ['--runtime', 'cpu', '--remote-has-internet', 'yes', '--models-dir', '/data/m', '--datasets-dir', '/data/d']
  const ssh = (args: string[]) =>
    runScript(
      'remote_eval/ssh_eval.ts',
      ['--host', 'gpu-box', '--remote-dir', '/srv/g', '--project-dir', project, '--dry-run', ...args],
      process.env,
      { raw: true },
    )
  const k8s = (args: string[]) =>
    runScript(
      'remote_eval/k8s_eval.ts',
      ['--context', 'c1', '--namespace', 'ml', '--pod', 'p0', '--project-dir', project, '--dry-run', ...args],
      process.env,
      { raw: true },
    )
  const planOf = async (run: Promise<{ code: number | null; stdout: string; stderr: string }>) => {
    const result = await run
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout) as Plan
  }

  const meanings: Array<[string, () => Promise<void>]> = [
    ['--host', async () => assert.equal((await planOf(ssh(required))).target, 'ssh gpu-box')],
    ['--remote-dir', async () => assert.match(scriptOf(await planOf(ssh(required)), 'run'), /^set -- '\/srv\/g' /m)],
    [
      '--runtime cpu|cuda (cuda adds the cuda extra and GR_RUNTIME_MODE)',
      async () => {
        const plan = await planOf(ssh([...required.slice(2), '--runtime', 'cuda']))
        assert.match(scriptOf(plan, 'run'), /export GR_RUNTIME_MODE='cuda'/)
        assert.match(scriptOf(plan, 'run'), /'--extra' 'eval' '--extra' 'cuda'/)
        assert.match(scriptOf(await planOf(ssh(required)), 'run'), /export GR_RUNTIME_MODE='cpu'/)
      },
    ],
    [
      '--suite (default guardrails_ru) and --split (default fast)',
      async () => {
        assert.match(scriptOf(await planOf(ssh(required)), 'run'), /'--suite' 'guardrails_ru' '--split' 'fast'/)
        assert.match(
          scriptOf(await planOf(ssh([...required, '--suite', 'smoke', '--split', 'fast'])), 'run'),
          /'--suite' 'smoke' '--split' 'fast'/,
        )
      },
    ],
    [
      '--remote-has-internet yes|no (no: the offline variables, checks instead of downloads)',
      async () => {
        const online = await planOf(ssh(required))
        assert.doesNotMatch(scriptOf(online, 'run'), /HF_HUB_OFFLINE/)
        assert.match(scriptOf(online, 'datasets'), /'dataset' 'org\/ru-pii-chat'/)
        const offline = await planOf(
          ssh(['--runtime', 'cpu', '--remote-has-internet', 'no', '--models-dir', '/data/m', '--datasets-dir', '/data/d']),
        )
        for (const variable of ["GR_OFFLINE_MODE='true'", "HF_HUB_OFFLINE='1'", "HF_DATASETS_OFFLINE='1'", "TRANSFORMERS_OFFLINE='1'"])
          assert.match(scriptOf(offline, 'run'), new RegExp(`export ${variable}`))
        // Both directories are listed in the preflight's round trip (eval_preflight_and_inspect), none of their own.
        assert.ok(!offline.round_trips.some((s) => s.fn === 'list_prepared_dirs'), 'no round trip of its own')
        const preflight = offline.round_trips.find((s) => s.fn === 'lock_hold')!
        const call = preflight.args!.slice(preflight.args!.indexOf('eval_preflight_and_inspect') + 1)
        assert.deepEqual(call.slice(3, 6), ['0', '/data/m', '/data/d'], 'air-gapped, with both directories')
        assert.match(preflight.script!, /if \[ "\$4" = 0 \]; then\n *printf '@@assets\\0'\n *list_prepared_dirs "\$5" "\$6"/)
        assert.ok(!offline.round_trips.some((s) => s.fn === 'envfile_exec'), 'nothing downloaded')
      },
    ],
    [
      '--models-dir (GR_MODEL_DIR) and --datasets-dir (HF_HOME=<dir>/hf_cache)',
      async () => {
        const run = scriptOf(await planOf(ssh(required)), 'run')
        assert.match(run, /export GR_MODEL_DIR='\/data\/m'/)
        assert.match(run, /export HF_HOME='\/data\/d\/hf_cache'/)
        assert.match(run, /export HUGGINGFACE_HUB_CACHE='\/data\/d\/hf_cache\/hub'/)
        assert.match(run, /export HF_DATASETS_CACHE='\/data\/d\/hf_cache\/datasets'/)
      },
    ],
    ['k8s --context, --namespace, --pod', async () => assert.equal((await planOf(k8s(required))).target, 'pod ml/p0')],
    [
      'k8s --workdir (default /workdir/guardrails)',
      async () => {
        assert.equal((await planOf(k8s(required))).remote_dir, '/workdir/guardrails')
        assert.equal((await planOf(k8s([...required, '--workdir', '/w/g']))).remote_dir, '/w/g')
      },
    ],
    ['k8s --container', async () => assert.equal((await k8s([...required, '--container', 'gpu'])).code, 0)],
  ]
  for (const [flag, check] of meanings) test(`${flag}: the bash runner's meaning`, check)

  test('--env (ours): in the run script, never in a command line; secret-looking values hidden', async () => {
    const result = await ssh([...required, '--env', 'GR_ENABLE_NEMOTRON=true', '--env', 'MY_API_KEY=not-for-your-eyes-42'])
    assert.equal(result.code, 0, result.stderr)
    const run = scriptOf(JSON.parse(result.stdout) as Plan, 'run')
    assert.match(run, /^export GR_ENABLE_NEMOTRON='true'$/m)
    assert.match(run, /^export MY_API_KEY='\*\*\*'$/m)
    assert.ok(!result.stdout.includes('not-for-your-eyes') && !result.stderr.includes('not-for-your-eyes'))
  })

  for (const help of ['-h', '--help']) {
    test(`${help}: the usage, exit 0, for both runners`, async () => {
      for (const script of ['remote_eval/ssh_eval.ts', 'remote_eval/k8s_eval.ts']) {
        const result = await runScript(script, [help], process.env, { raw: true })
        assert.equal(result.code, 0, result.stderr)
        assert.match(result.stdout, /^Usage: scripts\/remote_eval\/(ssh|k8s)_eval\.ts/)
      }
    })
  }

  // Where the bash runner refused to start (usage, exit 2), so do the runners.
  const refused: Array<[string, string, string[], RegExp]> = [
    ['ssh', 'without --host', ['--remote-dir', '/srv/g', ...required], /--host is required|--host/],
    ['ssh', 'without --remote-dir', ['--host', 'gpu-box', ...required], /--remote-dir/],
    ['ssh', 'without --runtime', ['--host', 'gpu-box', '--remote-dir', '/srv/g', ...required.slice(2)], /Missing --runtime/],
    [
      'ssh',
      'without --remote-has-internet',
      ['--host', 'gpu-box', '--remote-dir', '/srv/g', '--runtime', 'cpu', '--models-dir', '/m', '--datasets-dir', '/d'],
      /Missing --remote-has-internet/,
    ],
    [
      'ssh',
      'without --models-dir',
      ['--host', 'gpu-box', '--remote-dir', '/srv/g', '--runtime', 'cpu', '--remote-has-internet', 'no', '--datasets-dir', '/d'],
      /Missing --models-dir/,
    ],
    [
      'ssh',
      'without --datasets-dir',
      ['--host', 'gpu-box', '--remote-dir', '/srv/g', '--runtime', 'cpu', '--remote-has-internet', 'no', '--models-dir', '/m'],
      /Missing --datasets-dir/,
    ],
    ['ssh', 'an unknown arg', ['--host', 'gpu-box', '--remote-dir', '/srv/g', ...required, '--gpu', '1'], /Unknown arg: --gpu/],
    ['k8s', 'without --pod', ['--context', 'c1', '--namespace', 'ml', ...required], /--pod/],
    ['k8s', 'without --runtime', ['--context', 'c1', '--namespace', 'ml', '--pod', 'p0', ...required.slice(2)], /Missing --runtime/],
    ['k8s', 'an unknown arg', ['--context', 'c1', '--namespace', 'ml', '--pod', 'p0', ...required, '--ns', 'x'], /Unknown arg: --ns/],
  ]
  for (const [kind, name, args, message] of refused) {
    test(`${kind}_eval ${name}: exit 2, as the bash runner`, async () => {
      const result = await runScript(`remote_eval/${kind}_eval.ts`, [...args, '--project-dir', project], process.env, { raw: true })
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, message)
    })
  }
})

describe("the Python download tools' flags", () => {
  let project: string
  let models: string
  let datasets: string
  let hub: HubServer
  const MY_TOKEN = 'hf_named_by_hf_token_env_44'

  before(async () => {
    project = await copyExample()
    const root = await mkdtemp(path.join(tmpdir(), 'gre-flags-'))
    models = path.join(root, 'models')
    datasets = path.join(root, 'datasets')
    await layOutExampleAssets(EXAMPLE_HUB, models, datasets, 'guardrails_ru', ['fast', 'full'])
    await writeFile(
      path.join(project, 'configs/other-policy.yaml'),
      '{"recognizer_definitions": {"x": {"type": "token_classifier", "params": {"model_name": "org/other-ner"}}}}\n',
    )
    await writeFile(
      path.join(project, 'configs/eval/other-suites.yaml'),
      '{"suites": {"guardrails_ru": {"datasets": ["z"]}}, "datasets": {"z": {"hf_id": "org/zzz"}}}\n',
    )
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [MY_TOKEN] })
  })
  after(() => hub.stop())

  const models_ = (args: string[]) => runScript('download_models.ts', ['--check', '--project-dir', project, ...args])
  const datasets_ = (args: string[], env = process.env) =>
    runScript('download_datasets.ts', ['--check', '--project-dir', project, ...args], env)
  const uncovered = (stdout: string) => (JSON.parse(stdout) as { uncovered: string[] }).uncovered

  test('download_models.py --output-dir: the models directory', async () => {
    const result = await models_(['--output-dir', models])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(JSON.parse(result.stdout).dir, models)
  })
  test('download_models.py --policy-path: the policy the models come from', async () => {
    const result = await models_(['--output-dir', models, '--policy-path', 'configs/other-policy.yaml'])
    assert.equal(result.code, 10, result.stderr)
    assert.deepEqual(uncovered(result.stdout), ['org/other-ner@main'])
  })
  test('download_models.py --extra-token-classifier-model (repeatable): more models', async () => {
    const result = await models_([
      '--output-dir',
      models,
      '--extra-token-classifier-model',
      'org/extra-a',
      '--extra-token-classifier-model',
      'org/extra-b',
    ])
    assert.equal(result.code, 10, result.stderr)
    assert.deepEqual(uncovered(result.stdout), ['org/extra-a@main', 'org/extra-b@main'])
  })
  test('download_datasets.py --output-dir, --suite, --splits: the directory, the suite, the splits', async () => {
    for (const args of [
      ['--output-dir', datasets],
      ['--output-dir', datasets, '--suite', 'smoke', '--splits', 'fast'],
      ['--output-dir', datasets, '--splits', 'full'],
    ]) {
      const result = await datasets_(args)
      assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`)
      assert.equal(JSON.parse(result.stdout).dir, datasets)
    }
  })
  test('download_datasets.py --registry-path: the suites file', async () => {
    const result = await datasets_(['--output-dir', datasets, '--registry-path', 'configs/eval/other-suites.yaml', '--splits', 'fast'])
    assert.equal(result.code, 11, result.stderr)
    assert.deepEqual(uncovered(result.stdout), ['org/zzz (split fast)'])
  })
  test('download_datasets.py --hf-token-env: the variable the token is read from', async () => {
    const before = hub.requests.length
    const result = await datasets_(['--output-dir', datasets, '--against-hub', '--venv', harness().venv, '--hf-token-env', 'MY_TOKEN'], {
      ...process.env,
      HF_ENDPOINT: hub.endpoint,
      HF_TOKEN: '',
      MY_TOKEN,
    })
    assert.ok(result.code === 0 || result.code === 11, result.stderr)
    assert.ok(
      hub.requests.slice(before).some((r) => r.authorization === `Bearer ${MY_TOKEN}`),
      'the token came from MY_TOKEN',
    )
    assert.ok(!result.stderr.includes(MY_TOKEN))
  })

  const refused: Array<[string, string, string[], RegExp]> = [
    ['download_models.ts', 'without --output-dir (required there)', [], /--models-dir is required/],
    ['download_datasets.ts', 'without --output-dir (required there)', [], /--datasets-dir is required/],
    ['download_models.ts', 'an unknown flag', ['--output-dir', '/tmp/x', '--policy-file', 'p'], /Unknown arg: --policy-file/],
    [
      'download_datasets.ts',
      'empty --splits (refused there)',
      ['--output-dir', '/tmp/x', '--splits', ','],
      /--splits "," is not a list of split names|--splits "" is not a list/,
    ],
    [
      'download_datasets.ts',
      'both --registry-path and --suites',
      ['--output-dir', '/tmp/x', '--registry-path', 'a', '--suites', 'b'],
      /--suites and --registry-path mean the same/,
    ],
    [
      'download_models.ts',
      'both --output-dir and --models-dir',
      ['--output-dir', '/tmp/x', '--models-dir', '/tmp/y'],
      /--models-dir and --output-dir mean the same/,
    ],
  ]
  for (const [script, name, args, message] of refused) {
    test(`${script} ${name}: exit 2`, async () => {
      const result = await runScript(script, ['--check', '--project-dir', project, ...args])
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, message)
    })
  }
})
