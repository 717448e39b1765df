import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startHub, type HubServer } from '../support/hub-server.ts'
import {
  EXAMPLE_HUB,
  copyExample,
  livingProcesses,
  remoteDir,
  runScript,
  sleepFor,
  sshAliases,
  sshHost,
  startScript,
  startScriptOnPty,
  lastLines,
  writeAsTestUser,
  type ShardEntry,
} from '../support/harness.ts'

// --shard over several hosts: the real sshd reached from two addresses, each a host of its own to
// the runner (an alias in an ssh config, its own remote directory, the nvidia-smi double on its
// PATH), and a third host without a GPU driver. Each host is made ready under its own lock, then
// one eval per GPU runs on its share; the second host's report goes to the first for the merger.

const TOKEN = 'hf_remote_secret_fleet_5521'
const SCRIPT = 'remote_eval/ssh_eval.ts'

describe('one suite across two hosts (ssh)', () => {
  let hub: HubServer
  let config: string
  let project: string
  const dirs = { a: '', b: '', bare: '' }
  let env: NodeJS.ProcessEnv
  /** Flags of a run on the named hosts (gpu-a, gpu-b, gpu-bare), each with its own remote directory. */
  const on = (hosts: Array<keyof typeof dirs>, extra: string[] = [], assets = `${dirs.a}/.`) => [
    ...hosts.flatMap((h) => ['--host', `gpu-${h}`]),
    '--ssh-config',
    config,
    ...hosts.flatMap((h) => ['--remote-dir', dirs[h]]),
    '--runtime',
    'cuda',
    '--project-dir',
    project,
    '--env',
    'GR_ENABLE_NEMOTRON=true',
    // The hosts share this machine's disk: the assets the first run put in gpu-a's directory serve both.
    '--models-dir',
    `${assets}models`,
    '--datasets-dir',
    `${assets}datasets`,
    ...extra,
  ]
  const sharded = (hosts: Array<keyof typeof dirs>, extra: string[] = [], assets?: string) =>
    on(hosts, ['--gpus', '0', '--shard', ...extra], assets)
  const runsOn = async (host: keyof typeof dirs) =>
    JSON.parse(
      (await runScript(SCRIPT, ['--host', `gpu-${host}`, '--ssh-config', config, '--remote-dir', dirs[host], '--list'], env)).stdout,
    ).runs as Array<{ id: string; group: string | null; state: string }>

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    config = await sshAliases({
      'gpu-a': await sshHost({ tools: ['nvidia-smi'] }),
      'gpu-b': await sshHost({ tools: ['nvidia-smi'] }),
      'gpu-bare': await sshHost(),
    })
    project = await copyExample()
    for (const host of Object.keys(dirs) as Array<keyof typeof dirs>) {
      dirs[host] = remoteDir(`fleet-${host}`)
      await writeAsTestUser(path.join(dirs[host], '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    }
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  test('two hosts, a GPU each: each made ready, one shard each, the merged counts equal one whole run', async () => {
    const whole = await runScript(SCRIPT, on(['a'], ['--gpus', '0']), env)
    assert.equal(whole.code, 0, whole.stderr)
    const wholeReport = JSON.parse(await readFile(path.join(JSON.parse(whole.stdout).local_run_dir, 'report.json'), 'utf8'))

    const result = await runScript(SCRIPT, sharded(['a', 'b']), env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout) as { group: string; targets: string[]; merged_report: string; shards: ShardEntry[] }
    // Each host's own steps, named: gpu-b had nothing yet, so its code and deps went there.
    assert.match(result.stderr, /^\[preflight\] \[ssh gpu-a\] /m)
    assert.match(result.stderr, /^\[preflight\] \[ssh gpu-b\] /m)
    assert.ok(existsSync(path.join(dirs.b, 'pyproject.toml')), 'the code was synced to gpu-b')
    assert.match(
      result.stderr,
      /^\[run\] plan: 2 shards on 2 GPUs of 2 targets \(ssh gpu-a: 0; ssh gpu-b: 0\), by times of the earlier run /m,
    )
    assert.deepEqual(out.targets, ['ssh gpu-a', 'ssh gpu-b'])
    assert.deepEqual(
      out.shards.map((s) => [s.target, s.gpu, s.exit_code]),
      [
        ['ssh gpu-a', '0', 0],
        ['ssh gpu-b', '0', 0],
      ],
    )
    assert.deepEqual(out.shards.flatMap((s) => s.datasets).sort(), ['ru_pii_chat', 'ru_pii_forms'])
    for (const shard of out.shards) {
      assert.match(
        result.stderr,
        new RegExp(
          `^\\[run\\] \\[shard ${shard.shard} ${shard.target} gpu 0\\] \\[guardrails-mini\\] \\[loaded\\] dataset=${shard.datasets[0]} `,
          'm',
        ),
      )
      // Each shard ran in its host's own directory, and came home under the group's folder.
      const host = shard.target === 'ssh gpu-a' ? 'a' : 'b'
      assert.ok(existsSync(path.join(dirs[host], '.remote-eval/runs', shard.remote_run_id)), `${shard.remote_run_id} in ${dirs[host]}`)
      assert.ok(existsSync(path.join(shard.local_run_dir!, 'report.json')))
    }
    // gpu-b's report went to gpu-a, where the merger ran over both.
    const gpuB = out.shards.find((s) => s.target === 'ssh gpu-b')!
    assert.deepEqual(
      await readFile(path.join(dirs.a, '.remote-eval/merge', out.group, `${gpuB.remote_run_id}.json`)),
      await readFile(path.join(dirs.b, 'reports/evaluations', path.basename(gpuB.local_run_dir!), 'report.json')),
      'byte for byte',
    )
    assert.match(result.stderr, /^\[run\] merging on ssh gpu-a: /m)
    const merged = JSON.parse(await readFile(out.merged_report, 'utf8'))
    assert.deepEqual(merged.tasks.span_detection.metrics.combined, wholeReport.tasks.span_detection.metrics.combined)
    assert.equal(merged.tasks.span_detection.sample_count, wholeReport.tasks.span_detection.sample_count)
    // --list on both hosts at once: each host's runs, the group's shard on each.
    const listed = await runScript(SCRIPT, on(['a', 'b'], ['--list']), env)
    assert.equal(listed.code, 0, listed.stderr)
    const perHost = JSON.parse(listed.stdout).targets as Array<{ target: string; runs: Array<{ group: string | null }> }>
    assert.deepEqual(
      perHost.map((t) => [t.target, t.runs.filter((r) => r.group === out.group).length]),
      [
        ['ssh gpu-a', 1],
        ['ssh gpu-b', 1],
      ],
    )
  })

  test('a host that fails its preflight: nothing starts on any (exit 4, naming it); --skip-failed-targets goes on without it', async () => {
    const before = (await runsOn('a')).length
    const refused = await runScript(SCRIPT, sharded(['a', 'bare']), env)
    assert.equal(refused.code, 4, refused.stderr)
    assert.match(refused.stderr, /^\[error\] ssh gpu-bare: --runtime cuda, but nvidia-smi is not on ssh gpu-bare/m)
    assert.match(
      refused.stderr,
      /1 of 2 targets could not be made ready \(ssh gpu-bare\): nothing was started on any\. Fix it and run again, or add --skip-failed-targets/,
    )
    assert.equal((await runsOn('a')).length, before, 'no run started on gpu-a')
    assert.equal(JSON.parse(refused.stdout).error.exit_code, 4)

    const without = await runScript(SCRIPT, sharded(['a', 'bare'], ['--skip-failed-targets']), env)
    assert.equal(without.code, 0, without.stderr)
    assert.match(without.stderr, /^\[warn\] going on without ssh gpu-bare \(--skip-failed-targets\)/m)
    const out = JSON.parse(without.stdout) as { skipped_targets: Array<{ target: string }>; shards: ShardEntry[]; merged_report: string }
    assert.deepEqual(
      out.skipped_targets.map((s) => s.target),
      ['ssh gpu-bare'],
    )
    assert.deepEqual(
      out.shards.map((s) => s.target),
      ['ssh gpu-a'],
    )
    assert.deepEqual(out.shards[0]!.datasets.sort(), ['ru_pii_chat', 'ru_pii_forms'])
    assert.equal(JSON.parse(await readFile(out.merged_report, 'utf8')).tasks.span_detection.sample_count, 20)
  })

  test('Ctrl-C stops the shards on both hosts: exit 130, no process left on either', async () => {
    const sleep = sleepFor(60)
    const runner = await startScript(SCRIPT, sharded(['a', 'b'], sleep.args), env)
    await runner.waitFor(/\[shard 1 ssh gpu-a gpu 0\] \[guardrails-mini\] sleeping/)
    await runner.waitFor(/\[shard 2 ssh gpu-b gpu 0\] \[guardrails-mini\] sleeping/)
    runner.kill('SIGINT')
    const result = await runner.result
    assert.equal(result.code, 130, result.stderr)
    assert.match(result.stderr, /^\[run\] stopping 2 shards \(runs \S+, \S+\) on ssh gpu-a, ssh gpu-b: SIGTERM/m)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
  })

  test('on a terminal: one heartbeat for the group while no shard prints; d at the Ctrl-C prompt detaches every shard', async () => {
    const sleep = sleepFor(60)
    // NO_COLOR: the lines are matched from their start. A heartbeat every 100 ms (30 s by default):
    // shorter than any shard's start over ssh, so a heartbeat of a shard's own, while it starts or
    // after, would show.
    const runner = await startScriptOnPty(SCRIPT, sharded(['a', 'b'], sleep.args), {
      ...env,
      NO_COLOR: '1',
      REMOTE_EVAL_HEARTBEAT_MS: '100',
    })
    await runner.waitFor(/\[shard 1 ssh gpu-a gpu 0\] \[guardrails-mini\] sleeping/)
    await runner.waitFor(/\[shard 2 ssh gpu-b gpu 0\] \[guardrails-mini\] sleeping/)
    await runner.waitFor(/^\[run\] still running: \d+ s so far, nothing printed for [1-9]\d* s\r?$/m)
    runner.type('\x03')
    await runner.waitFor(/\[s\]top them or \[d\]etach and leave them running\? \[S\/d\]/)
    runner.type('d\r')
    const { code, output } = await runner.result
    const group = /--attach (shards-[0-9a-f-]+)/.exec(output)?.[1]
    assert.ok(group, lastLines(output))
    const goingOn = (await livingProcesses(sleep.marker)).length
    // Stopped before the other checks, so a failing one leaves no group running for the tests after.
    const stopped = await runScript(SCRIPT, sharded(['a', 'b'], ['--stop', group]), env)
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
    assert.equal(code, 0, lastLines(output))
    assert.ok(goingOn > 0, 'the shards went on after d')
    assert.doesNotMatch(output, /\[shard \d+ [^\]]*\] still running/, 'no heartbeat of its own per shard')
  })

  test('detached (SIGHUP), the group is on both hosts: --attach GROUP follows and merges, --stop GROUP stops both', async () => {
    const detach = async (seconds: number) => {
      const sleep = sleepFor(seconds)
      const runner = await startScript(SCRIPT, sharded(['a', 'b'], sleep.args), env)
      await runner.waitFor(/\[shard 2 ssh gpu-b gpu 0\] \[guardrails-mini\] sleeping/)
      runner.kill('SIGHUP')
      const result = await runner.result
      assert.equal(result.code, 0, result.stderr)
      return { group: JSON.parse(result.stdout).group as string, marker: sleep.marker }
    }
    const short = await detach(5)
    const attached = await runScript(SCRIPT, sharded(['a', 'b'], ['--attach', short.group]), env)
    assert.equal(attached.code, 0, attached.stderr)
    assert.match(attached.stderr, new RegExp(`^\\[run\\] attached to the 2 shards of ${short.group} on ssh gpu-a, ssh gpu-b`, 'm'))
    const out = JSON.parse(attached.stdout) as { merged_report: string; shards: ShardEntry[] }
    assert.equal(JSON.parse(await readFile(out.merged_report, 'utf8')).tasks.span_detection.sample_count, 20)

    const long = await detach(60)
    const stopped = await runScript(SCRIPT, sharded(['a', 'b'], ['--stop', long.group]), env)
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.deepEqual(
      (JSON.parse(stopped.stdout).runs as Array<{ target: string; state: string }>).map((r) => [r.target, r.state]),
      [
        ['ssh gpu-a', 'stopped'],
        ['ssh gpu-b', 'stopped'],
      ],
    )
    assert.deepEqual(await livingProcesses(long.marker), [])
    // Nothing of ours is left half-written in the reports.
    assert.deepEqual(
      (await readdir(path.join(project, 'reports/evaluations'))).filter((name) => name.includes('.partial-')),
      [],
    )
  })

  test("--prune takes a group's merged report, and the reports sent there for its merge, with the last of its runs", async () => {
    const reports = path.join(dirs.a, 'reports/evaluations')
    const inbox = path.join(dirs.a, '.remote-eval/merge')
    const groups = async () => (await readdir(reports)).filter((name) => name.startsWith('shards-')).sort()
    // Merged on gpu-a: the first test's group and the attached one; gpu-b's reports were sent there for both.
    assert.equal((await groups()).length, 2)
    assert.equal((await readdir(inbox)).length, 2)
    const pruned = await runScript(
      SCRIPT,
      ['--host', 'gpu-a', '--ssh-config', config, '--remote-dir', dirs.a, '--prune', '--keep-last', '1'],
      env,
    )
    assert.equal(pruned.code, 0, pruned.stderr)
    // The newest run there stays (the stopped group's shard, never merged): every merged group went with its runs.
    const left = await runsOn('a')
    assert.equal(left.length, 1)
    assert.match(left[0]!.group ?? '', /^shards-/)
    assert.deepEqual(await groups(), [])
    assert.deepEqual(await readdir(inbox), [])
    // gpu-b is another target: its runs are its own to prune.
    assert.ok((await runsOn('b')).length >= 3)
  })

  test('a merger that fails: exit 1 naming it, the reports of both shards fetched, no merged report', async () => {
    const result = await runScript(SCRIPT, sharded(['a', 'b'], ['--merge-module', 'app.tools.no_such_merger']), env)
    assert.equal(result.code, 1, result.stderr)
    assert.match(result.stderr, /The merger \(python -m app\.tools\.no_such_merger\) failed on ssh gpu-a \(exit 1\): .*No module named/)
    assert.match(result.stderr, /The shards' reports are fetched; merge them by hand, or fix --merge-module\./)
    const group = /merging on ssh gpu-a: .* --out \S+\/(shards-[0-9a-f-]+)\/report\.json/.exec(result.stderr)?.[1]
    assert.ok(group, result.stderr)
    const local = path.join(project, 'reports/evaluations', group)
    const shardDirs = (await readdir(local, { withFileTypes: true })).filter((e) => e.isDirectory())
    assert.equal(shardDirs.length, 2)
    for (const dir of shardDirs) assert.ok(existsSync(path.join(local, dir.name, 'report.json')))
    assert.ok(!existsSync(path.join(local, 'report.json')), 'no merged report')
  })

  test('two hosts downloading into one shared directory take turns: one fetches, the other finds it all in place', async () => {
    // A slow Hub: each host's downloads take seconds, so without the download lock the two would
    // fetch into the directories at once.
    const slowHub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN], bytesPerSecond: 40_000 })
    try {
      const shared = `${remoteDir('fleet-shared-assets')}/`
      const result = await runScript(SCRIPT, sharded(['a', 'b'], [], shared), { ...env, HF_ENDPOINT: slowHub.endpoint })
      assert.equal(result.code, 0, result.stderr)
      for (const kind of ['models', 'datasets']) {
        const fetched = result.stderr.match(new RegExp(`^\\[${kind}\\] \\[ssh gpu-[ab]\\] wrote `, 'gm')) ?? []
        const inPlace = result.stderr.match(new RegExp(`^\\[${kind}\\] \\[ssh gpu-[ab]\\] all in place, nothing fetched`, 'gm')) ?? []
        assert.deepEqual([fetched.length, inPlace.length], [1, 1], `${kind}: one host fetched, the other found it done\n${result.stderr}`)
      }
      const downloads = slowHub.fileDownloads().map((r) => r.path)
      assert.ok(downloads.length > 0)
      assert.deepEqual(
        downloads.filter((p, i) => downloads.indexOf(p) !== i),
        [],
        'no file came from the Hub twice',
      )
    } finally {
      await slowHub.stop()
    }
  })
})
