import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { runCleanups } from '../../lib/core/cleanup.ts'
import { parseFlags } from '../../lib/core/flags.ts'
import { silentLogger } from '../../lib/core/log.ts'
import { K8S_EVAL_FLAGS, SSH_EVAL_FLAGS, evalOptionsFrom } from '../../lib/eval/options.ts'
import { EVAL_RUN_ID } from '../../lib/eval/dry-run.ts'
import { openTarget, runRemoteEval } from '../../lib/eval/pipeline.ts'
import { kindNamed } from '../../lib/transport/kinds.ts'
import { recordingTransport, type RoundTrip } from '../../lib/transport/recording.ts'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, makePod, remoteDir, runScript, sshHost } from '../support/harness.ts'

// --dry-run is exact: what it prints is, round trip by round trip, what a real run on a fresh
// target sends (recorded at the transport while the real run goes). Only ids, times and temp
// names differ: our run id, the eval's run id, the pid and clock in the lock's holder line and the
// owner marker, the name of the directory a pull lands in before it is renamed.

const TOKEN = 'hf_dry_run_token_4242'

/** The round trips with ids, times and temp names replaced by the same words on both sides. */
function comparable(trips: readonly RoundTrip[], evalRunId: string): unknown[] {
  const plain = (text: string) =>
    text
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
      .replace(/\b\d{8}-\d{6}-[0-9a-f]{4}\b/g, '<run-id>')
      .replace(/\bpid \d+/g, 'pid <pid>')
      .replaceAll(evalRunId, EVAL_RUN_ID)
      .replace(/\.partial-\w+$/, '')
  return trips.map((trip) => {
    if (trip.kind === 'run') return { kind: 'run', script: plain(trip.script) }
    if (trip.kind === 'pull') return { kind: 'pull', remote_dir: plain(trip.remote_dir), local_dir: plain(trip.local_dir) }
    const { kind, remote_dir, method, send, remove, claims, stamp, compress, checksum, whole_tree } = trip
    return { kind, remote_dir, method, send, remove, claims, stamp, compress, checksum, whole_tree }
  })
}

/** A real run, in this process, with every round trip recorded as the transport sends it. */
async function recordRealRun(
  argv: string[],
  kind: 'ssh' | 'k8s',
): Promise<{ trips: RoundTrip[]; exitCode: number; output: Record<string, unknown> }> {
  const trips: RoundTrip[] = []
  const options = evalOptionsFrom(
    parseFlags(argv, kind === 'ssh' ? SSH_EVAL_FLAGS : K8S_EVAL_FLAGS),
    kindNamed(kind === 'ssh' ? 'ssh' : 'kubectl'),
  )
  try {
    const result = await runRemoteEval(options, {
      logger: silentLogger,
      signal: new AbortController().signal,
      open: async (o, logger) => recordingTransport(await openTarget(o, logger), (trip) => trips.push(trip)),
    })
    return { trips, exitCode: result.exitCode, output: result.output as Record<string, unknown> }
  } finally {
    await runCleanups()
  }
}

/** The dry run as a user runs it: its JSON's round trips. */
async function dryRun(script: string, argv: string[], env: NodeJS.ProcessEnv): Promise<RoundTrip[]> {
  const result = await runScript(script, [...argv, '--dry-run'], env, { raw: true })
  assert.equal(result.code, 0, result.stderr)
  return (JSON.parse(result.stdout) as { round_trips: RoundTrip[] }).round_trips
}

describe('--dry-run prints what a real run sends', () => {
  let hub: HubServer
  let project: string
  let endpointBefore: string | undefined
  let env: NodeJS.ProcessEnv
  let prepared: { models: string; datasets: string }

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    project = await copyExample()
    // The real runs go in this process: the Hub's address as both sides read it.
    endpointBefore = process.env.HF_ENDPOINT
    process.env.HF_ENDPOINT = hub.endpoint
    env = { ...process.env, HF_TOKEN: '' }
  })
  after(async () => {
    if (endpointBefore === undefined) delete process.env.HF_ENDPOINT
    else process.env.HF_ENDPOINT = endpointBefore
    await hub.stop()
  })

  async function compare(script: string, argv: string[], kind: 'ssh' | 'k8s') {
    const dry = await dryRun(script, argv, env)
    const real = await recordRealRun(argv, kind)
    assert.equal(real.exitCode, 0, JSON.stringify(real.output))
    const evalRunId = path.posix.basename(String(real.output.remote_run_dir))
    assert.deepEqual(comparable(dry, 'not-an-id'), comparable(real.trips, evalRunId))
    return { dry, real }
  }

  test('SSH, online, CPU: lock and preflight, push, uv sync, each download round trip, the run, the fetch', async () => {
    const host = await sshHost({ env: { HF_TOKEN: TOKEN } })
    const dir = remoteDir('dry-online')
    prepared = { models: `${dir}/.models`, datasets: `${dir}/.datasets` }
    const argv = [
      ...host.flags,
      '--remote-dir',
      dir,
      '--runtime',
      'cpu',
      '--project-dir',
      project,
      '--remote-has-internet',
      'yes',
      '--models-dir',
      prepared.models,
      '--datasets-dir',
      prepared.datasets,
    ]
    const { dry } = await compare('remote_eval/ssh_eval.ts', argv, 'ssh')
    const functions = dry.flatMap((trip) => (trip.kind === 'run' && trip.fn ? [trip.fn] : []))
    assert.deepEqual(
      functions.filter((fn) => ['lock_hold', 'eval_deps', 'envfile_exec', 'eval_run', 'run_report_dir'].includes(fn)),
      // The report directory is checked as the followed run ends, in the run's own round trip.
      ['lock_hold', 'eval_deps', 'envfile_exec', 'envfile_exec', 'envfile_exec', 'eval_run'],
    )
    assert.equal(dry.filter((trip) => trip.kind === 'push').length, 1)
  })

  test('SSH, online, CUDA on GPU 1 with --fresh-cache: the cuda extra everywhere Python runs, and the cache reset', async () => {
    const host = await sshHost({ env: { HF_TOKEN: TOKEN }, tools: ['nvidia-smi'] })
    const dir = remoteDir('dry-cuda')
    const argv = [
      ...host.flags,
      '--remote-dir',
      dir,
      '--runtime',
      'cuda',
      '--gpus',
      '1',
      '--fresh-cache',
      '--workers',
      '2',
      '--project-dir',
      project,
      '--remote-has-internet',
      'yes',
      '--models-dir',
      `${dir}/.models`,
      '--datasets-dir',
      `${dir}/.datasets`,
      '--env',
      'GR_ENABLE_NEMOTRON=true',
    ]
    const { dry } = await compare('remote_eval/ssh_eval.ts', argv, 'ssh')
    const python = dry.filter((trip) => trip.kind === 'run' && /^(eval_deps|envfile_exec|eval_run)$/.test(trip.fn ?? ''))
    assert.ok(
      python.length >= 5 && python.every((trip) => trip.kind === 'run' && trip.script.includes("'--extra' 'eval' '--extra' 'cuda'")),
    )
    assert.ok(dry.some((trip) => trip.kind === 'run' && trip.fn === 'fresh_datasets_cache'))
  })

  test('SSH, --shard on GPUs 0,1: the plan, then one start per shard with its datasets; nothing followed or touched', async () => {
    const host = await sshHost({ env: { HF_TOKEN: TOKEN }, tools: ['nvidia-smi'] })
    const dir = remoteDir('dry-shard')
    const fresh = await copyExample()
    const argv = [
      ...host.flags,
      ...['--remote-dir', dir, '--runtime', 'cuda', '--gpus', '0,1', '--shard', '--project-dir', fresh],
      ...['--remote-has-internet', 'yes', '--models-dir', `${dir}/.models`, '--datasets-dir', `${dir}/.datasets`, '--dry-run'],
    ]
    const result = await runScript('remote_eval/ssh_eval.ts', argv, env, { raw: true })
    assert.equal(result.code, 0, result.stderr)
    // No earlier run here, and a fresh target's manifest counts no rows.
    assert.match(result.stderr, /^\[run\] \[dry-run\] plan: 2 shards on GPUs 0,1 of ssh .*, by equal shares/m)
    const out = JSON.parse(result.stdout) as { plan: { shards: Array<{ datasets: string[] }> }; round_trips: RoundTrip[] }
    const starts = out.round_trips.filter((trip) => trip.kind === 'run' && trip.fn === 'eval_run')
    assert.equal(starts.length, 2)
    out.plan.shards.forEach((shard, i) => {
      const args = (starts[i] as { args: string[] }).args
      assert.deepEqual(
        args.flatMap((arg, k) => (args[k - 1] === '--dataset' ? [arg] : [])),
        shard.datasets,
      )
    })
    assert.deepEqual(out.plan.shards.flatMap((s) => s.datasets).sort(), ['ru_pii_chat', 'ru_pii_forms'])
    assert.ok(!existsSync(dir), 'nothing on the target')
    assert.ok(!existsSync(path.join(fresh, 'reports')), 'nothing written here')
  })

  test('SSH, --shard on two hosts: the round trips of each host named, one start on each; nothing touched', async () => {
    const dirs = [remoteDir('dry-fleet-a'), remoteDir('dry-fleet-b')]
    const fresh = await copyExample()
    const argv = [
      ...['--host', 'gpu-a', '--host', 'gpu-b', '--remote-dir', dirs[0]!, '--remote-dir', dirs[1]!],
      ...['--runtime', 'cuda', '--gpus', '0', '--shard', '--project-dir', fresh, '--dry-run'],
      ...['--remote-has-internet', 'yes', '--models-dir', '/srv/eval/models', '--datasets-dir', '/srv/eval/datasets'],
    ]
    const result = await runScript('remote_eval/ssh_eval.ts', argv, env, { raw: true })
    assert.equal(result.code, 0, result.stderr)
    assert.match(
      result.stderr,
      /^\[run\] \[dry-run\] plan: 2 shards on 2 GPUs of 2 targets \(ssh gpu-a: 0; ssh gpu-b: 0\), by equal shares/m,
    )
    assert.match(result.stderr, /^\[preflight\] \[dry-run\] nothing is sent to ssh gpu-a, ssh gpu-b\./m)
    const out = JSON.parse(result.stdout) as { round_trips: Array<RoundTrip & { target: string }> }
    for (const host of ['ssh gpu-a', 'ssh gpu-b']) {
      const trips = out.round_trips.filter((trip) => trip.target === host)
      assert.ok(
        trips.some((trip) => trip.kind === 'run' && trip.fn === 'lock_hold'),
        `${host}: its lock and preflight`,
      )
      assert.equal(trips.filter((trip) => trip.kind === 'run' && trip.fn === 'eval_run').length, 1, `${host}: one shard`)
      assert.match(result.stderr, new RegExp(`^\\[preflight\\] \\[dry-run\\] \\d+\\. ${host}: lock_hold `, 'm'))
    }
    for (const dir of dirs) assert.ok(!existsSync(dir), 'nothing on the targets')
  })

  test('SSH, air-gapped, with --venv: the check of the prepared directories instead of downloads', async () => {
    const host = await sshHost()
    const dir = remoteDir('dry-offline')
    const argv = [
      ...host.flags,
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
      prepared.models,
      '--datasets-dir',
      prepared.datasets,
    ]
    const { dry } = await compare('remote_eval/ssh_eval.ts', argv, 'ssh')
    assert.ok(!dry.some((trip) => trip.kind === 'run' && (trip.fn === 'envfile_exec' || trip.fn === 'eval_deps')))
  })

  test('a pod, online, with --venv: the push by tar through kubectl', async () => {
    const pod = await makePod(['main'], { binds: [`ro ${harness().venv} /opt/venv`], env: { HF_TOKEN: TOKEN } })
    const argv = [
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
      '--remote-has-internet',
      'yes',
      '--models-dir',
      '/workdir/guardrails/.models',
      '--datasets-dir',
      '/workdir/guardrails/.datasets',
    ]
    // makePod added the pod's context to KUBECONFIG: the dry run's process reads it afresh.
    env = { ...process.env, HF_TOKEN: '' }
    const { dry } = await compare('remote_eval/k8s_eval.ts', argv, 'k8s')
    const push = dry.find((trip) => trip.kind === 'push')
    assert.equal(push?.kind === 'push' && push.method, 'tar')
  })
})
