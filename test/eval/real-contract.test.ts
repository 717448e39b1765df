import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { startHub, type HubServer } from '../support/hub-server.ts'
import {
  PREPARED_POD_ASSETS,
  EXAMPLE_HUB,
  copyExample,
  harness,
  makePod,
  remoteDir,
  runScript,
  sshFlags,
  startScript,
  writeAsTestUser,
  type TestPod,
} from '../support/harness.ts'

// The runners against an eval that behaves as the real guardrails CLI does where they depend on it
// (examples/guardrails-mini: the cache root rule, load_dataset(cache_dir=root), locks and _eval/
// under the root, the env file's reading, the stored login token, the PyTriton ports). Over SSH
// (the zsh test user, uv only in ~/.local/bin) and in pods; online, then air-gapped with the asset
// directories mounted read-only at another path than where they were prepared.

const TOKEN = 'hf_contract_token_3141'
const LOGIN_TOKEN = 'hf_stored_by_hf_auth_login_2718'
const SSH = 'remote_eval/ssh_eval.ts'
const K8S = 'remote_eval/k8s_eval.ts'

/** Every file under dir with its mode, size and sha256, and every directory: what "unchanged" means. */
async function snapshot(dir: string): Promise<string> {
  const out = await $({ cwd: dir, quiet: true })`find . -printf '%y %m %s %p\n' | sort`
  const lines = [out.stdout]
  for (const line of out.stdout.split('\n').filter((l) => l.startsWith('f '))) {
    const file = line.split(' ').slice(3).join(' ')
    lines.push(
      `${file} ${createHash('sha256')
        .update(await readFile(path.join(dir, file)))
        .digest('hex')}`,
    )
  }
  return lines.join('\n')
}

/** Copies prepared directories to a new root-owned place the remote user can read but not write. */
async function mountReadOnly(sources: Record<string, string>): Promise<Record<string, string>> {
  const root = await mkdtemp('/srv/gre-mounted-')
  const mounted: Record<string, string> = {}
  for (const [name, source] of Object.entries(sources)) {
    mounted[name] = path.join(root, name)
    await cp(source, mounted[name], { recursive: true, verbatimSymlinks: true })
  }
  await $`chown -R root:root ${root} && chmod -R a+rX,a-w ${root}`.quiet()
  return mounted
}

const reportOf = async (stdout: string) => JSON.parse(await readFile(path.join(JSON.parse(stdout).local_run_dir, 'report.json'), 'utf8'))

describe('the real eval contract over SSH', () => {
  let hub: HubServer
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  const args = (extra: string[]) => [...sshFlags(), '--remote-dir', dir, '--runtime', 'cpu', '--project-dir', project, ...extra]

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    project = await copyExample()
    dir = remoteDir('contract')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  test('online: one prepared cache, where the eval reads it; then read-only elsewhere, offline, untouched', async () => {
    const assets = ['--models-dir', `${dir}/models`, '--datasets-dir', `${dir}/datasets`]
    const online = await runScript(SSH, args(['--remote-has-internet', 'yes', ...assets]), env)
    assert.equal(online.code, 0, online.stderr)
    // Both splits, as download_datasets.py prepares them; only at <root>/<org>___<name>/.
    const cache = await readdir(`${dir}/datasets/hf_cache`)
    assert.ok(cache.includes('org___ru-pii-chat') && cache.includes('org___ru-pii-forms'), cache.join(' '))
    assert.ok(!cache.includes('datasets'), 'no second copy under HF_DATASETS_CACHE')
    const arrows = (await $`find ${dir}/datasets/hf_cache/org___ru-pii-chat -name '*.arrow'`.quiet()).stdout
    assert.match(arrows, /ru-pii-chat-fast\.arrow/)
    assert.match(arrows, /ru-pii-chat-full\.arrow/)

    const mounted = await mountReadOnly({ models: `${dir}/models`, datasets: `${dir}/datasets` })
    const before = await snapshot(path.dirname(mounted.models!))
    for (const split of ['fast', 'full']) {
      const offline = await runScript(
        SSH,
        args(['--remote-has-internet', 'no', '--split', split, '--models-dir', mounted.models!, '--datasets-dir', mounted.datasets!]),
        {
          ...env,
          HF_ENDPOINT: 'http://127.0.0.1:9',
        },
      )
      assert.equal(offline.code, 0, offline.stderr)
      assert.match(offline.stderr, /the datasets cache .* is read-only: the eval uses \S+, links to its files/)
      const report = await reportOf(offline.stdout)
      assert.equal(report.run.split, split)
      assert.match(report.run.cache_dir, /\/\.remote-eval\/datasets-cache\/\d{8}-\d{6}-[0-9a-f]{4}$/)
      assert.ok(existsSync(path.join(report.run.cache_dir, '_eval', 'splits', 'ru_pii_chat')), 'the sampled indices landed in the overlay')
    }
    assert.equal(await snapshot(path.dirname(mounted.models!)), before, 'the read-only mount is byte-identical afterwards')
  })

  test('a Python the runbook says breaks the deps (3.14): the preflight warns and says what to do', async () => {
    // A venv whose python says 3.14.0 when asked its version, and is the test venv's otherwise.
    const venv = await mkdtemp('/tmp/gre-py314-')
    await mkdir(path.join(venv, 'bin'))
    await writeFile(
      path.join(venv, 'bin/python'),
      `#!/bin/sh\ncase "$2" in *version_info*) echo 3.14.0; exit 0 ;; esac\nexec ${harness().venv}/bin/python "$@"\n`,
    )
    await chmod(path.join(venv, 'bin/python'), 0o755)
    await chmod(venv, 0o755)
    const result = await runScript(
      SSH,
      args(['--venv', venv, '--remote-has-internet', 'no', '--models-dir', `${dir}/models`, '--datasets-dir', `${dir}/datasets`]),
      env,
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(
      result.stderr,
      /^\[warn\] Python 3\.14\.0 on .*: the eval's dependencies are known to break on 3\.14 .* uv python pin 3\.12/m,
    )
  })

  test('.env.eval read as the eval reads it: a line python-dotenv reads otherwise is named, never shown', async () => {
    const secret = 'hf_inline_commented_value_8080'
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${secret} # the team token\nexport OTHER_API_KEY=other_secret_value_77\n`)
    try {
      const result = await runScript(
        SSH,
        args([
          '--remote-has-internet',
          'no',
          '--models-dir',
          `${dir}/models`,
          '--datasets-dir',
          `${dir}/datasets`,
          '--eval-arg=--print-token',
        ]),
        env,
      )
      assert.equal(result.code, 0, result.stderr)
      assert.match(
        result.stderr,
        /^\[warn\] .*\.env\.eval on .*: the line of HF_TOKEN reads differently in the eval than in python-dotenv/m,
      )
      assert.match(result.stderr, /^\[warn\] .*: the line of OTHER_API_KEY reads differently/m)
      // The eval used "value # the team token" (its reading); both readings are redacted on the target.
      assert.match(result.stderr, /token in use: \*\*\*$/m)
      assert.ok(!result.stderr.includes('hf_inline') && !result.stdout.includes('hf_inline'), 'the value never shows')
      const runs = await readdir(`${dir}/.remote-eval/runs`)
      for (const run of runs) assert.ok(!(await readFile(`${dir}/.remote-eval/runs/${run}/log`, 'utf8')).includes(secret))
    } finally {
      await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    }
  })
})

describe("a bundle laid out and manifested as the eval repo's Python tools do", () => {
  let hub: HubServer
  let project: string
  let bundle: string
  let env: NodeJS.ProcessEnv

  // What guardrails:app/tools/download_models.py and download_datasets.py leave behind (their layout and
  // manifest shapes, docs/REMOTE_EVAL.md), made with Hugging Face's real clients against the Hub double.
  const PYTHON_TOOLS = String.raw`
import hashlib, json, os, sys
from datetime import datetime, timezone
out, policy, registry = sys.argv[1], sys.argv[2], sys.argv[3]
models, data = os.path.join(out, "models"), os.path.join(out, "datasets")
root = os.path.join(data, "hf_cache")
os.environ.update(HF_HOME=root, HUGGINGFACE_HUB_CACHE=os.path.join(root, "hub"), HF_DATASETS_CACHE=os.path.join(root, "datasets"))
from huggingface_hub import snapshot_download
import datasets
datasets.disable_progress_bars()
name = "org/ru-pii-detector"
local = os.path.join(models, "token_classifier", name.replace("/", "__"))
snapshot_download(repo_id=name, local_dir=local)
def sha(p): return hashlib.sha256(open(p, "rb").read()).hexdigest()
files = sorted((os.path.join(d, f) for d, _, fs in os.walk(local) for f in fs), key=str)
tree = hashlib.sha256("\n".join("%s:%s" % (os.path.relpath(f, local), sha(f)) for f in files).encode()).hexdigest()
now = datetime.now(timezone.utc).isoformat()
json.dump({"generated_at_utc": now, "policy_path": policy, "token_classifier_models": {name: local},
           "checksums": {"token_classifier_models": {name: {"path": local, "sha256_tree": tree, "files": len(files)}}}},
          open(os.path.join(models, "manifest.json"), "w"), indent=2)
entries = []
for dataset_id, hf_id in (("ru_pii_chat", "org/ru-pii-chat"), ("ru_pii_forms", "org/ru-pii-forms")):
    for split in ("fast", "full"):
        ds = datasets.load_dataset(hf_id, split=split, token=os.environ["HF_TOKEN"], cache_dir=root)
        entries.append({"dataset_id": dataset_id, "hf_id": hf_id, "split": split, "sha": None, "fingerprint": ds._fingerprint, "rows": len(ds)})
json.dump({"generated_at_utc": now, "registry_path": registry, "suite": "guardrails_ru", "splits": ["fast", "full"], "datasets": entries,
           "cache_root": root, "cache_size_bytes": 0}, open(os.path.join(data, "manifest.json"), "w"), indent=2)
`

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    project = await copyExample()
    bundle = await mkdtemp(path.join(tmpdir(), 'gre-python-bundle-'))
    env = { ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9', HF_TOKEN: '' }
    await $({
      env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: TOKEN },
      quiet: true,
    })`${harness().venv}/bin/python -c ${PYTHON_TOOLS} ${bundle} ${project}/configs/policy.yaml ${project}/configs/eval/suites.yaml`
  })
  after(() => hub.stop())

  test('mounted read-only elsewhere: --check accepts it and says how deep it looked; the air-gapped run passes', async () => {
    const mounted = await mountReadOnly({ models: `${bundle}/models`, datasets: `${bundle}/datasets` })
    const models = await runScript(
      'download_models.ts',
      ['--check', '--verify-checksums', '--models-dir', mounted.models!, '--project-dir', project],
      env,
    )
    assert.equal(models.code, 0, models.stderr)
    assert.match(
      models.stderr,
      /complete \(a manifest of the eval repo's Python tools, without a file list: each model's directory is there and not empty, sha256_tree verified\)/,
    )
    const datasets = await runScript(
      'download_datasets.ts',
      ['--check', '--datasets-dir', mounted.datasets!, '--project-dir', project],
      env,
    )
    assert.equal(datasets.code, 0, datasets.stderr)
    assert.match(datasets.stderr, /each split's Arrow file is in the cache/)

    const dir = remoteDir('bundle')
    const run = await runScript(
      SSH,
      [
        ...sshFlags(),
        '--remote-dir',
        dir,
        '--runtime',
        'cpu',
        '--project-dir',
        project,
        '--venv',
        harness().venv,
        '--remote-has-internet',
        'no',
        '--models-dir',
        mounted.models!,
        '--datasets-dir',
        mounted.datasets!,
      ],
      env,
    )
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /\[loaded\] dataset=ru_pii_forms split=fast samples=8/)
  })

  test('one file changed, same size: 0 by sizes, 10 with --verify-checksums; a split missing: 11', async () => {
    const copy = await mkdtemp(path.join(tmpdir(), 'gre-python-bundle-broken-'))
    await cp(bundle, copy, { recursive: true })
    const detector = path.join(copy, 'models/token_classifier/org__ru-pii-detector/detector.json')
    const text = await readFile(detector, 'utf8')
    await writeFile(detector, text.replace('PHONE', 'PHONY'))
    const check = (extra: string[]) =>
      runScript('download_models.ts', ['--check', '--models-dir', `${copy}/models`, '--project-dir', project, ...extra], env)
    assert.equal((await check([])).code, 0)
    const verified = await check(['--verify-checksums'])
    assert.equal(verified.code, 10, verified.stderr)
    assert.match(
      verified.stderr,
      /checksum mismatch: token_classifier\/org__ru-pii-detector\/ \(org\/ru-pii-detector: sha256_tree differs\)/,
    )
    await $`find ${copy}/datasets/hf_cache/org___ru-pii-forms -name '*-full.arrow' -delete`.quiet()
    const datasets = await runScript(
      'download_datasets.ts',
      ['--check', '--datasets-dir', `${copy}/datasets`, '--project-dir', project],
      env,
    )
    assert.equal(datasets.code, 11, datasets.stderr)
    assert.match(datasets.stderr, /missing: hf_cache\/org___ru-pii-forms\/ \(org\/ru-pii-forms split full: no Arrow file\)/)
  })
})

describe('the real eval contract in pods', () => {
  let hub: HubServer
  let prepared: TestPod
  let gpuBin: string
  const env = () => ({ ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' })
  const podArgs = (pod: TestPod, project: string, extra: string[]) => [
    '--context',
    pod.context,
    '--namespace',
    pod.namespace,
    '--pod',
    pod.pod,
    '--venv',
    '/opt/venv',
    '--project-dir',
    project,
    ...extra,
  ]

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN, LOGIN_TOKEN] })
    // nvidia-smi (the double: two GPUs) on the pods' PATH, for the CUDA runs.
    gpuBin = await mkdtemp(path.join(tmpdir(), 'gre-gpu-bin-'))
    await cp(path.join(harness().fixturesBin, 'nvidia-smi'), path.join(gpuBin, 'nvidia-smi'))
    await chmod(gpuBin, 0o755)
  })
  after(() => hub.stop())

  test('online with the token `hf auth login` stored in the pod (HF_TOKEN nowhere): prepared and used through HF_TOKEN_PATH', async () => {
    prepared = await makePod(['main'], { binds: [`ro ${harness().venv} /opt/venv`] })
    const home = path.join(path.dirname(prepared.workdir()), 'home')
    await mkdir(path.join(home, '.cache/huggingface'), { recursive: true })
    await writeFile(path.join(home, '.cache/huggingface/token'), `${LOGIN_TOKEN}\n`)
    const before = hub.requests.length
    const result = await runScript(
      K8S,
      podArgs(prepared, await copyExample(), [
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'yes',
        '--models-dir',
        '/workdir/models',
        '--datasets-dir',
        '/workdir/datasets',
        '--eval-arg=--print-token',
      ]),
      env(),
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[preflight\] .*the token `hf auth login` stored there \(\/root\/\.cache\/huggingface\/token\)$/m)
    const used = hub.requests.slice(before)
    assert.ok(
      used.some((r) => r.authorization === `Bearer ${LOGIN_TOKEN}` && r.fileDownload),
      'the downloads used the stored token',
    )
    assert.ok(!used.some((r) => r.authorization !== null && r.authorization !== `Bearer ${LOGIN_TOKEN}`), 'no other token was sent')
    // The eval itself found it too (token=True with HF_HOME moved): it printed it, redacted.
    assert.match(result.stderr, /token in use: \*\*\*$/m)
    assert.ok(!result.stderr.includes(LOGIN_TOKEN))
  })

  test("online with HF_TOKEN in the pod's own environment (its spec's env:), no .env.eval: found, named, and used", async () => {
    const pod = await makePod(['main'], { binds: [`ro ${harness().venv} /opt/venv`], env: { HF_TOKEN: TOKEN } })
    const before = hub.requests.length
    const result = await runScript(
      K8S,
      podArgs(pod, await copyExample(), [
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'yes',
        '--models-dir',
        '/workdir/models',
        '--datasets-dir',
        '/workdir/datasets',
      ]),
      env(),
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[preflight\] pod .*, HF_TOKEN from the environment$/m)
    const used = hub.requests.slice(before)
    assert.ok(
      used.some((r) => r.authorization === `Bearer ${TOKEN}` && r.fileDownload),
      "the downloads used the pod's token",
    )
    assert.ok(!result.stderr.includes(TOKEN))
  })

  test('air-gapped in another pod, the prepared directories mounted read-only at /mnt: passes, mounts untouched', async () => {
    const models = path.join(prepared.workdir(), 'models')
    const datasets = path.join(prepared.workdir(), 'datasets')
    const before = [await snapshot(models), await snapshot(datasets)]
    const pod = await makePod(['main'], {
      binds: [`ro ${harness().venv} /opt/venv`, `ro ${models} /mnt/models`, `ro ${datasets} /mnt/datasets`],
    })
    const result = await runScript(
      K8S,
      podArgs(pod, await copyExample(), ['--runtime', 'cpu', ...PREPARED_POD_ASSETS, '--split', 'full']),
      { ...env(), HF_ENDPOINT: 'http://127.0.0.1:9' },
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /the datasets cache \/mnt\/datasets\/hf_cache is read-only/)
    assert.match(result.stderr, /\[loaded\] dataset=ru_pii_chat split=full samples=60/)
    assert.deepEqual([await snapshot(models), await snapshot(datasets)], before)
  })

  test('two CUDA runs at once on one host, --gpus 0 and --gpus 1: both pass, each with its GPU and its own ports', async () => {
    const models = path.join(prepared.workdir(), 'models')
    const datasets = path.join(prepared.workdir(), 'datasets')
    const pod = await makePod(['main'], {
      binds: [`ro ${harness().venv} /opt/venv`, `ro ${models} /mnt/models`, `ro ${datasets} /mnt/datasets`, `ro ${gpuBin} /usr/local/sbin`],
    })
    const project = await copyExample()
    const cuda = (gpu: string) =>
      podArgs(pod, project, [
        '--runtime',
        'cuda',
        '--gpus',
        gpu,
        ...PREPARED_POD_ASSETS,
        '--eval-arg=--sleep',
        '--eval-arg=2',
        '--env',
        'GR_ENABLE_NEMOTRON=true',
      ])
    const [a, b] = await Promise.all([startScript(K8S, cuda('0'), env()), startScript(K8S, cuda('1'), env())])
    const [first, second] = await Promise.all([a.result, b.result])
    assert.equal(first.code, 0, first.stderr)
    assert.equal(second.code, 0, second.stderr)
    const reports = await Promise.all([reportOf(first.stdout), reportOf(second.stdout)])
    assert.deepEqual(reports.map((r) => r.run.env.CUDA_VISIBLE_DEVICES).sort(), ['0', '1'])
    assert.deepEqual(
      reports.map((r) => r.run.env.GR_ENABLE_NEMOTRON),
      ['true', 'true'],
    )
    const ports = reports.map((r) => Object.values(r.run.settings.pytriton_ports as Record<string, number>))
    assert.equal(new Set(ports.flat()).size, 6, `six distinct ports: ${JSON.stringify(ports)}`)
    assert.ok(!ports.flat().some((p) => p >= 8000 && p <= 8002), 'not the defaults every run would share')
    // Nor a port an outgoing connection may take between the pick and the eval's bind.
    const [low, high] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).trim().split(/\s+/).map(Number)
    assert.ok(!ports.flat().some((p) => p >= low! && p <= high!), `outside the ephemeral range ${low}-${high}: ${JSON.stringify(ports)}`)
    assert.notEqual(reports[0].run.run_id, reports[1].run.run_id)
    // Both held their ports at the same time (each slept 2 s while holding them).
    const spans = reports.map((r) => [Date.parse(r.run.started_at_utc), Date.parse(r.run.finished_at_utc)])
    assert.ok(spans[0]![0]! < spans[1]![1]! && spans[1]![0]! < spans[0]![1]!, 'the two runs overlapped')

    const list = await runScript(K8S, ['--context', pod.context, '--namespace', pod.namespace, '--pod', pod.pod, '--list'], env())
    assert.equal(list.code, 0, list.stderr)
    const listed = JSON.parse(list.stdout)
      .runs.map((r: { ports: string }) => r.ports)
      .sort()
    assert.deepEqual(listed, ports.map((p) => p.join(',')).sort())
  })

  test('a PyTriton port already in use fails the eval as Triton does', async () => {
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(0, '0.0.0.0', resolve))
    const port = (holder.address() as { port: number }).port
    try {
      const pod = await makePod(['main'], {
        binds: [
          `ro ${harness().venv} /opt/venv`,
          `ro ${path.join(prepared.workdir(), 'models')} /mnt/models`,
          `ro ${path.join(prepared.workdir(), 'datasets')} /mnt/datasets`,
          `ro ${gpuBin} /usr/local/sbin`,
        ],
      })
      const result = await runScript(
        K8S,
        podArgs(pod, await copyExample(), ['--runtime', 'cuda', ...PREPARED_POD_ASSETS, '--env', `GR_PYTRITON_URL=127.0.0.1:${port}`]),
        env(),
      )
      assert.equal(result.code, 1, result.stderr)
      assert.match(result.stderr, new RegExp(`embedded PyTriton failed to start: http port ${port}: Address already in use`))
    } finally {
      holder.close()
    }
  })

  test('a NonMatchingSplitsSizesError from datasets (split sizes on the Hub out of date) is answered with what to do', async () => {
    // A fast split rebalanced without its dataset card: the README still gives the old row count.
    const repos = await mkdtemp(path.join(tmpdir(), 'gre-stale-hub-'))
    await cp(EXAMPLE_HUB, repos, { recursive: true })
    const card = path.join(repos, 'datasets/org/ru-pii-chat/README.md')
    await writeFile(card, (await readFile(card, 'utf8')).replace('num_examples: 12', 'num_examples: 13'))
    const stale = await startHub({ root: repos, tokens: [TOKEN] })
    try {
      const pod = await makePod(['main'], { binds: [`ro ${harness().venv} /opt/venv`] })
      await mkdir(path.join(pod.workdir(), 'guardrails'), { recursive: true })
      await writeFile(path.join(pod.workdir(), 'guardrails/.env.eval'), `HF_TOKEN=${TOKEN}\n`)
      const result = await runScript(
        K8S,
        podArgs(pod, await copyExample(), [
          '--runtime',
          'cpu',
          '--remote-has-internet',
          'yes',
          '--models-dir',
          '/workdir/models',
          '--datasets-dir',
          '/workdir/datasets',
        ]),
        { ...env(), HF_ENDPOINT: stale.endpoint },
      )
      assert.equal(result.code, 11, result.stderr)
      assert.match(result.stderr, /NonMatchingSplitsSizesError/)
      assert.match(result.stderr, /--fresh-cache.*publish_dataset_info/s)
    } finally {
      await stale.stop()
    }
  })
})
