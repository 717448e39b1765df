import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, readdir, readlink } from 'node:fs/promises'
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
  sshHost,
  startScript,
  writeAsTestUser,
  type ShardEntry,
  type SshHost,
} from '../support/harness.ts'

// --shard over the real sshd, on a host with two GPUs (the nvidia-smi double on its PATH): one eval
// per GPU on its share of the suite, followed together, merged on the target by the example's
// merger (app.tools.merge_eval_reports, the real one's CLI), and brought home under one folder.

const TOKEN = 'hf_remote_secret_shards_4417'
const SCRIPT = 'remote_eval/ssh_eval.ts'

describe('one suite in shards across the GPUs of one host (ssh)', () => {
  let hub: HubServer
  let host: SshHost
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  const args = (extra: string[] = []) => [
    ...host.flags,
    '--remote-dir',
    dir,
    '--runtime',
    'cuda',
    '--project-dir',
    project,
    '--env',
    'GR_ENABLE_NEMOTRON=true',
    ...extra,
  ]
  const sharded = (extra: string[] = []) => args(['--gpus', '0,1', '--shard', ...extra])

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    host = await sshHost({ tools: ['nvidia-smi'] })
    project = await copyExample()
    dir = remoteDir('shards')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  test('two GPUs: one eval each on its datasets, planned by the earlier run; merged counts equal one whole run', async () => {
    const whole = await runScript(SCRIPT, args(['--gpus', '0']), env)
    assert.equal(whole.code, 0, whole.stderr)
    const wholeOut = JSON.parse(whole.stdout)
    const wholeReport = JSON.parse(await readFile(path.join(wholeOut.local_run_dir, 'report.json'), 'utf8'))

    const result = await runScript(SCRIPT, sharded(), env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout) as { group: string; local_run_dir: string; merged_report: string; shards: ShardEntry[] }
    // The plan, from the whole run's time per dataset, before anything starts.
    assert.match(
      result.stderr,
      new RegExp(`^\\[run\\] plan: 2 shards on GPUs 0,1 of ssh .*, by times of the earlier run ${wholeOut.run_id}`, 'm'),
    )
    assert.match(result.stderr, /^\[run\] {3}shard 1 on GPU 0: \S+ \((under 1 s|\d+ s)\)$/m)
    // Each shard on its own GPU and datasets, its lines named.
    const datasets = out.shards.flatMap((s) => s.datasets).sort()
    assert.deepEqual(datasets, ['ru_pii_chat', 'ru_pii_forms'])
    for (const shard of out.shards) {
      assert.equal(shard.exit_code, 0)
      assert.match(
        result.stderr,
        new RegExp(
          `^\\[run\\] \\[shard ${shard.shard} gpu ${shard.gpu}\\] \\[guardrails-mini\\] runtime cuda, .*CUDA_VISIBLE_DEVICES=${shard.gpu}$`,
          'm',
        ),
      )
      for (const id of shard.datasets)
        assert.match(
          result.stderr,
          new RegExp(`^\\[run\\] \\[shard ${shard.shard} gpu ${shard.gpu}\\] \\[guardrails-mini\\] \\[loaded\\] dataset=${id} `, 'm'),
        )
      // Every shard's report under the group's folder.
      assert.equal(path.dirname(shard.local_run_dir!), out.local_run_dir)
      assert.ok(existsSync(path.join(shard.local_run_dir!, 'report.json')))
    }
    assert.deepEqual(out.shards.map((s) => s.gpu).sort(), ['0', '1'])
    // The merged report: count for count the whole run's.
    assert.equal(out.merged_report, path.join(out.local_run_dir, 'report.json'))
    const merged = JSON.parse(await readFile(out.merged_report, 'utf8'))
    assert.deepEqual(merged.tasks.span_detection.metrics.combined, wholeReport.tasks.span_detection.metrics.combined)
    assert.match(result.stderr, /^\[done\] merged metrics of 2 shards \(guardrails_ru \/ fast\):$/m)
    assert.match(result.stderr, /^\[done\] span_detection\s+combined\s+exact_canonical\s+[\d.]+\s+[\d.]+\s+[\d.]+$/m)
    // The group is the latest local run, on the history page with its merged scores.
    const reports = path.dirname(out.local_run_dir)
    assert.equal(await readlink(path.join(reports, 'latest')), out.group)
    assert.match(await readFile(path.join(reports, 'index.html'), 'utf8'), new RegExp(out.group))
    // Both shards ran at once, each with PyTriton ports of its own.
    const listed = JSON.parse((await runScript(SCRIPT, [...host.flags, '--remote-dir', dir, '--list'], env)).stdout).runs as Array<{
      id: string
      gpus: string
      ports: string
      state: string
    }>
    const shardRuns = listed.filter((r) => out.shards.some((s) => s.remote_run_id === r.id))
    assert.deepEqual(
      shardRuns.map((r) => r.state),
      ['finished', 'finished'],
    )
    assert.notEqual(shardRuns[0]!.ports, shardRuns[1]!.ports)
    // The group's folder is a local run of the suite: the next plan reads its merged report's times.
    const again = await runScript(SCRIPT, sharded(), env)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stderr, new RegExp(`^\\[run\\] plan: .*by times of the earlier run ${out.group}`, 'm'))
  })

  test("--compare-to: the repo's compare module on the target against an earlier run; diff.md comes home and is printed", async () => {
    const reports = path.join(project, 'reports/evaluations')
    const earlier = path.join(reports, await readlink(path.join(reports, 'latest')))
    // A plain run against the latest (the group above), then the shards against that plain run.
    const plain = await runScript(SCRIPT, args(['--gpus', '0', '--compare-to', 'latest']), env)
    assert.equal(plain.code, 0, plain.stderr)
    const plainOut = JSON.parse(plain.stdout)
    assert.equal(plainOut.compare.base, path.join(earlier, 'report.json'))
    assert.equal(plainOut.compare.diff_md, path.join(plainOut.local_run_dir, 'compare', 'diff.md'))
    const diffMd = await readFile(plainOut.compare.diff_md, 'utf8')
    assert.match(plain.stderr, new RegExp(`^\\[done\\] app\\.eval\\.compare against ${earlier}/report\\.json:$`, 'm'))
    assert.ok(plain.stderr.includes(`[done] ${diffMd.split('\n')[0]}`), 'diff.md is printed')
    const result = await runScript(SCRIPT, sharded(['--compare-to', plainOut.local_run_dir]), env)
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.equal(out.compare.base, path.join(plainOut.local_run_dir, 'report.json'))
    assert.ok(existsSync(path.join(out.local_run_dir, 'compare', 'diff.json')))
    // Same data, same counts: the compare module finds no label changed.
    const diff = JSON.parse(await readFile(path.join(out.local_run_dir, 'compare', 'diff.json'), 'utf8'))
    assert.equal(diff.headline.delta, 0)
    const labels = diff.span_detection.per_label_char_recall as Array<{ label: string; delta: number }>
    assert.ok(labels.length > 0)
    assert.deepEqual(
      labels.filter((l) => l.delta !== 0),
      [],
    )
  })

  test('one failing shard: exit 1, every report fetched, no merged report', async () => {
    const result = await runScript(SCRIPT, sharded(['--env', 'GR_MINI_FAIL_DATASETS=ru_pii_forms']), env)
    assert.equal(result.code, 1, result.stderr)
    const out = JSON.parse(result.stdout) as { local_run_dir: string; merged_report: string | null; shards: ShardEntry[] }
    assert.equal(out.merged_report, null)
    const failing = out.shards.find((s) => s.datasets.includes('ru_pii_forms'))!
    const passing = out.shards.find((s) => s !== failing)!
    assert.equal(failing.exit_code, 1)
    assert.equal(passing.exit_code, 0)
    assert.match(result.stderr, new RegExp(`^\\[error\\] 1 of 2 shards failed \\(shard ${failing.shard}\\): no merged report`, 'm'))
    for (const shard of out.shards) assert.ok(existsSync(path.join(shard.local_run_dir!, 'report.json')), `shard ${shard.shard} fetched`)
    assert.ok(!existsSync(path.join(out.local_run_dir, 'report.json')), 'no merged report pretends to be complete')
  })

  test('Ctrl-C stops every shard: exit 130, no process left on the host', async () => {
    const sleep = sleepFor(60)
    const runner = await startScript(SCRIPT, sharded(sleep.args), env)
    await runner.waitFor(/\[shard 1 gpu 0\] \[guardrails-mini\] sleeping/)
    await runner.waitFor(/\[shard 2 gpu 1\] \[guardrails-mini\] sleeping/)
    assert.equal((await livingProcesses(sleep.marker)).length > 0, true)
    runner.kill('SIGINT')
    const result = await runner.result
    assert.equal(result.code, 130, result.stderr)
    assert.match(result.stderr, /^\[run\] stopping 2 shards \(runs \S+, \S+\) on ssh .*: SIGTERM to their process groups/m)
    assert.match(result.stderr, /^\[run\] 2 shards \(runs .*\) are stopped, stopped$/m)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
    assert.deepEqual(
      (await readdir(path.join(project, 'reports/evaluations'))).filter((name) => name.endsWith('.merged') || name.includes('.partial-')),
      [],
    )
  })

  test('a sharded run detached (SIGHUP) is one group: --list names it, --attach GROUP merges, --stop GROUP stops every shard', async () => {
    const detach = async (seconds: number) => {
      const sleep = sleepFor(seconds)
      const runner = await startScript(SCRIPT, sharded(sleep.args), env)
      await runner.waitFor(/\[shard 1 gpu 0\] \[guardrails-mini\] sleeping/)
      await runner.waitFor(/\[shard 2 gpu 1\] \[guardrails-mini\] sleeping/)
      runner.kill('SIGHUP')
      const result = await runner.result
      assert.equal(result.code, 0, result.stderr)
      const group = JSON.parse(result.stdout).group as string
      assert.match(
        result.stderr,
        new RegExp(`^\\[done\\] 2 shards \\(runs .*\\) go on on ssh .*; to come back, run the same command with --attach ${group}`, 'm'),
      )
      return { group, marker: sleep.marker }
    }
    const control = (flags: string[]) => runScript(SCRIPT, sharded(flags), env)
    // Come back to it: the same command with --attach GROUP follows both shards, then merges.
    const short = await detach(6)
    const listed = await control(['--list'])
    assert.equal(listed.code, 0, listed.stderr)
    const members = (JSON.parse(listed.stdout).runs as Array<{ group: string | null; shard: number; datasets: string[] }>).filter(
      (r) => r.group === short.group,
    )
    assert.deepEqual(members.map((r) => r.shard).sort(), [1, 2])
    assert.deepEqual(members.flatMap((r) => r.datasets).sort(), ['ru_pii_chat', 'ru_pii_forms'])
    assert.match(listed.stderr, new RegExp(`\\s${short.group} #2\\s`))
    const attached = await control(['--attach', short.group])
    assert.equal(attached.code, 0, attached.stderr)
    const out = JSON.parse(attached.stdout)
    assert.equal(out.group, short.group)
    assert.ok(existsSync(out.merged_report), attached.stderr)
    assert.match(attached.stderr, /^\[done\] merged metrics of 2 shards/m)
    // Or stop it: --stop GROUP ends every process of every shard.
    const long = await detach(60)
    assert.ok((await livingProcesses(long.marker)).length > 0)
    const stopped = await control(['--stop', long.group, '--stop-grace', '1'])
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.deepEqual(
      (JSON.parse(stopped.stdout).runs as Array<{ state: string }>).map((r) => r.state),
      ['stopped', 'stopped'],
    )
    assert.deepEqual(await livingProcesses(long.marker), [])
    const unknown = await control(['--stop', 'shards-20990101-000000-beef'])
    assert.equal(unknown.code, 2, unknown.stderr)
    assert.match(unknown.stderr, /There is no sharded run shards-20990101-000000-beef .*--list/)
  })
})
