import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { $ } from 'zx'
import { startHub, type HubServer } from '../support/hub-server.ts'
import {
  EXAMPLE_HUB,
  copyExample,
  harness,
  livingProcesses,
  sleepFor,
  remoteDir,
  runScript,
  sshFlags,
  sshHost,
  startScript,
  writeAsTestUser,
  startScriptOnPty,
  FETCHED_REPORT,
  lastLines,
} from '../support/harness.ts'
import { startCountingProxy } from '../support/tcp-proxy.ts'

// Runs that outlive the runner, over the real sshd: detach, attach, stop, list, Ctrl-C, a dropped
// link, two runners at once, and a token the remote eval prints. Each long eval sleeps a unique
// number of seconds, so its processes can be found in the process table by that argument alone.

const TOKEN = 'hf_remote_secret_runs_9931'
const SCRIPT = 'remote_eval/ssh_eval.ts'

/** Every file under dir, with its text. */
async function allText(dir: string): Promise<string> {
  const parts: string[] = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) parts.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'))
  }
  return parts.join('\n')
}

describe('runs that outlive the runner (ssh)', () => {
  let hub: HubServer
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  const args = (extra: string[] = []) => [...sshFlags(), '--remote-dir', dir, '--runtime', 'cpu', '--project-dir', project, ...extra]
  const list = async () => {
    const result = await runScript(SCRIPT, args(['--list']), env)
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout).runs as Array<{ id: string; state: string; exit_code: number | null }>
  }

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    project = await copyExample()
    dir = remoteDir('runs')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  test('a remote eval that prints the token: the token reaches nothing on this machine', async () => {
    const result = await runScript(SCRIPT, args(['--eval-arg=--print-token']), env)
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[run\] \[guardrails-mini\] token in use: \*\*\*$/m)
    assert.ok(!result.stderr.includes(TOKEN) && !result.stdout.includes(TOKEN))
    assert.ok(!(await allText(project)).includes(TOKEN), 'not in any file the runner wrote locally')
    // Nor in the run's own files on the target: the log is redacted as it is written.
    const runId = JSON.parse(result.stdout).remote_run_id
    assert.match(await readFile(path.join(dir, '.remote-eval/runs', runId, 'log'), 'utf8'), /token in use: \*\*\*/)
  })

  test('--detach returns at once; --attach streams the log and fetches the report', async () => {
    const sleep = sleepFor(3)
    const detached = await runScript(SCRIPT, args(['--detach', '--split', 'full', ...sleep.args]), env)
    assert.equal(detached.code, 0, detached.stderr)
    const { remote_run_id: runId, state } = JSON.parse(detached.stdout)
    assert.equal(state, 'running')
    assert.match(detached.stderr, new RegExp(`--attach ${runId}`))
    assert.ok((await livingProcesses(sleep.marker)).length > 0, 'the eval runs after the runner returned')
    const attached = await runScript(SCRIPT, args(['--attach', runId]), env)
    assert.equal(attached.code, 0, attached.stderr)
    assert.match(attached.stderr, /^\[run\] \[guardrails-mini\] \[loaded\] dataset=ru_pii_chat split=full samples=\d+$/m)
    assert.match(attached.stderr, /^\[done\] metrics \(guardrails_ru \/ full\):$/m, "the run's split, not the attach command's default")
    const out = JSON.parse(attached.stdout)
    assert.equal(out.remote_run_id, runId)
    assert.deepEqual((await readdir(out.local_run_dir)).sort(), FETCHED_REPORT)
  })

  test("either id names a run: --list shows the report folder beside the runner's id, --attach and --stop take both", async () => {
    const ran = await runScript(SCRIPT, args(), env)
    assert.equal(ran.code, 0, ran.stderr)
    const { run_id: reportId, remote_run_id: runId } = JSON.parse(ran.stdout)
    assert.match(reportId, /^eval_guardrails_ru_fast_/)
    const listed = await runScript(SCRIPT, args(['--list']), env)
    assert.equal(listed.code, 0, listed.stderr)
    assert.equal(JSON.parse(listed.stdout).runs.find((r: { id: string }) => r.id === runId)?.run_id, reportId)
    assert.match(listed.stderr, new RegExp(`^\\[done\\] ${runId}\\s+${reportId}\\s+finished`, 'm'))
    const attached = await runScript(SCRIPT, args(['--attach', reportId]), env)
    assert.equal(attached.code, 0, attached.stderr)
    assert.match(attached.stderr, new RegExp(`report folder ${reportId} is run ${runId} on `))
    assert.equal(JSON.parse(attached.stdout).remote_run_id, runId)
    const unknown = await runScript(SCRIPT, args(['--stop', 'eval_guardrails_ru_fast_20000101T000000Z_0000000000']), env)
    assert.equal(unknown.code, 2, unknown.stderr)
    assert.match(
      unknown.stderr,
      /No run in .* wrote the report folder eval_guardrails_ru_fast_20000101T000000Z_0000000000\. See .* with --list\./,
    )
  })

  test('a dropped connection does not stop the eval; --attach then fetches its results', async () => {
    const proxy = await startCountingProxy(harness().sshd.port)
    const sleep = sleepFor(4)
    const runner = await startScript(SCRIPT, [...args(sleep.args), '--ssh-option', `Port=${proxy.port}`], env)
    await runner.waitFor(/\[guardrails-mini\] sleeping/)
    await proxy.close() // the link goes: the master's connection and sshd's child for it end
    const dropped = await runner.result
    assert.equal(dropped.code, 5, dropped.stderr)
    const runId = /--attach (\S+)/.exec(dropped.stderr)?.[1]
    assert.ok(runId, `the error says how to come back:\n${dropped.stderr}`)
    assert.ok((await livingProcesses(sleep.marker)).length > 0, 'the eval still runs on the target')
    const attached = await runScript(SCRIPT, args(['--attach', runId]), env)
    assert.equal(attached.code, 0, attached.stderr)
    assert.deepEqual((await readdir(JSON.parse(attached.stdout).local_run_dir)).sort(), FETCHED_REPORT)
  })

  test('--stop ends every process of the run', async () => {
    const sleep = sleepFor(60)
    const detached = await runScript(SCRIPT, args(['--detach', ...sleep.args]), env)
    assert.equal(detached.code, 0, detached.stderr)
    const runId = JSON.parse(detached.stdout).remote_run_id
    assert.ok((await livingProcesses(sleep.marker)).length > 0)
    const stopped = await runScript(SCRIPT, args(['--stop', runId, '--stop-grace', '5']), env)
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.equal(JSON.parse(stopped.stdout).state, 'stopped')
    assert.deepEqual(await livingProcesses(sleep.marker), [])
  })

  // Ctrl-C without a terminal, and SIGTERM (kill, a CI timeout): the followed run is stopped without asking.
  const stops: Array<[string, NodeJS.Signals, RegExp]> = [
    ['Ctrl-C without a terminal', 'SIGINT', /^\[error\] Interrupted \(Ctrl-C\): cleaning up/m],
    ['SIGTERM (kill, a CI timeout)', 'SIGTERM', /^\[error\] Got SIGTERM: cleaning up/m],
  ]
  for (const [name, signal, said] of stops) {
    test(`${name} stops the run: exit 130, nothing left running`, async () => {
      const sleep = sleepFor(60)
      const runner = await startScript(SCRIPT, args(sleep.args), env)
      await runner.waitFor(/\[guardrails-mini\] sleeping/)
      runner.kill(signal)
      const result = await runner.result
      assert.equal(result.code, 130, result.stderr)
      assert.match(result.stderr, said)
      assert.match(result.stderr, /^\[run\] stopping run \S+ on ssh .*: SIGTERM to its process group/m)
      assert.deepEqual(await livingProcesses(sleep.marker), [])
    })
  }

  test('SIGHUP (the terminal went away) detaches: the run goes on, and can be stopped later', async () => {
    const sleep = sleepFor(60)
    const runner = await startScript(SCRIPT, args(sleep.args), env)
    await runner.waitFor(/\[guardrails-mini\] sleeping/)
    runner.kill('SIGHUP')
    const result = await runner.result
    assert.match(result.stderr, /^\[error\] Got SIGHUP: cleaning up/m)
    assert.doesNotMatch(result.stderr, /stopping run/)
    assert.ok((await livingProcesses(sleep.marker)).length > 0, 'the run goes on')
    const runId = /run (\d{8}-\d{6}-[0-9a-f]+)\)/.exec(result.stderr)?.[1]
    assert.ok(runId, result.stderr)
    assert.equal((await list()).find((r) => r.id === runId)?.state, 'running')
    assert.equal((await runScript(SCRIPT, args(['--stop', runId, '--stop-grace', '1']), env)).code, 0)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
  })

  test('a run killed from outside (SIGKILL to its whole process group) is listed as lost, exit code unknown', async () => {
    const sleep = sleepFor(60)
    const detached = await runScript(SCRIPT, args(['--detach', ...sleep.args]), env)
    const runId = JSON.parse(detached.stdout).remote_run_id as string
    const leader = (await readFile(path.join(dir, '.remote-eval/runs', runId, 'pid'), 'utf8')).trim().split(/\s+/)[0]!
    process.kill(-Number(leader), 'SIGKILL')
    for (let i = 0; i < 100 && (await livingProcesses(sleep.marker)).length; i++) await new Promise((r) => setTimeout(r, 50))
    const run = (await list()).find((r) => r.id === runId)
    assert.deepEqual([run?.state, run?.exit_code], ['lost', null])
  })

  test('Ctrl-C on a terminal asks; d detaches, leaves the run going and ends as --detach does (exit 0, its id)', async () => {
    const sleep = sleepFor(60)
    // script(1) gives the runner a pseudo-terminal; Ctrl-C and the answer are typed into it.
    // A heartbeat every second here (30 s by default) while the eval prints nothing. NO_COLOR: the
    // lines are matched from their start, and picocolors colours a terminal whenever CI is set.
    const runner = await startScriptOnPty(SCRIPT, args(sleep.args), { ...env, NO_COLOR: '1', REMOTE_EVAL_HEARTBEAT_MS: '1000' })
    await runner.waitFor(/\[guardrails-mini\] sleeping/)
    await runner.waitFor(/^\[run\] still running: \d+ s so far, nothing printed for [1-9]\d* s\r?$/m)
    runner.type('\x03')
    await runner.waitFor(/\[s\]top it or \[d\]etach and leave it running\? \[S\/d\]/)
    runner.type('d\r')
    const { code, output } = await runner.result
    const runId = /^\[done\] run (\S+) goes on on ssh .*--attach \1/m.exec(output)?.[1]
    assert.ok(runId, lastLines(output))
    const goingOn = (await livingProcesses(sleep.marker)).length
    // Stopped before the other checks, so a failing one leaves no run going for the tests after.
    const stopped = await runScript(SCRIPT, args(['--stop', runId, '--stop-grace', '1']), env)
    assert.equal(stopped.code, 0, stopped.stderr)
    assert.deepEqual(await livingProcesses(sleep.marker), [])
    assert.equal(code, 0, lastLines(output))
    assert.match(output, new RegExp(`"remote_run_id": "${runId}",\\s+"state": "running"`))
    assert.doesNotMatch(output, /^\[error\]/m, 'a detach is no error')
    assert.ok(goingOn > 0, 'the run went on after d')
  })

  test('two CUDA runners at once on GPUs 0 and 1: the second waits for the lock, both finish, results apart', async () => {
    // A host with two GPUs (the nvidia-smi double on its login PATH), as the runners find it over ssh.
    const gpuHost = await sshHost({ tools: ['nvidia-smi'] })
    const cuda = (gpu: string) => [
      ...gpuHost.flags,
      '--remote-dir',
      dir,
      '--runtime',
      'cuda',
      '--gpus',
      gpu,
      '--project-dir',
      project,
      '--env',
      'GR_ENABLE_NEMOTRON=true',
    ]
    const [a, b] = await Promise.all([runScript(SCRIPT, cuda('0'), env), runScript(SCRIPT, cuda('1'), env)])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    const waited = [a, b].filter((r) => /^\[preflight\] waiting for the lock on .*: a runner on .* is syncing there/m.test(r.stderr))
    assert.equal(waited.length, 1, `exactly one runner waited:\n${a.stderr}\n---\n${b.stderr}`)
    const [outA, outB] = [JSON.parse(a.stdout), JSON.parse(b.stdout)]
    assert.notEqual(outA.remote_run_id, outB.remote_run_id)
    assert.notEqual(outA.local_run_dir, outB.local_run_dir)
    assert.match(a.stderr, /^\[preflight\] .*, 2 GPU\(s\)/m, "nvidia-smi -L listed the host's GPUs")
    assert.match(a.stderr, /^\[run\] \[guardrails-mini\] runtime cuda, .*CUDA_VISIBLE_DEVICES=0$/m, 'each run on its own GPU')
    assert.match(b.stderr, /^\[run\] \[guardrails-mini\] runtime cuda, .*CUDA_VISIBLE_DEVICES=1$/m)
  })

  test('--no-wait fails at once with exit 12 while another runner holds the lock', async () => {
    // Another runner that has taken the lock and keeps it until stopped (a real runner lets go as
    // its eval starts, which may come before this one asks).
    const holder = spawn(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(new URL('../fixtures/plumbing/hold-lock.ts', import.meta.url)), dir],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (chunk: Buffer) => (chunk.toString().includes('held') ? resolve() : undefined))
        holder.on('close', (code) => reject(new Error(`the holder ended (${code}) before taking the lock`)))
      })
      const second = await runScript(SCRIPT, args(['--no-wait']), env)
      assert.equal(second.code, 12, second.stderr)
      assert.match(second.stderr, new RegExp(`is busy: a runner on .* \\(pid ${holder.pid}\\) since .* is syncing there \\(--no-wait\\)`))
    } finally {
      holder.kill('SIGTERM')
      await new Promise((resolve) => (holder.exitCode === null ? holder.on('close', resolve) : resolve(null)))
    }
  })

  test('--list shows finished, failed, running and stopped runs', async () => {
    const failed = await runScript(SCRIPT, args(['--eval-arg=--fail-after-report']), env)
    assert.equal(failed.code, 1, failed.stderr)
    const running = await runScript(SCRIPT, args(['--detach', ...sleepFor(60).args]), env)
    const runningId = JSON.parse(running.stdout).remote_run_id
    const runs = await list()
    const stateOf = (id: string) => runs.find((r) => r.id === id)
    const failedRun = stateOf(JSON.parse(failed.stdout).remote_run_id)
    assert.equal(failedRun?.state, 'failed')
    assert.ok(failedRun.exit_code !== null && failedRun.exit_code > 0)
    assert.equal(stateOf(runningId)?.state, 'running')
    assert.ok(runs.some((r) => r.state === 'finished' && r.exit_code === 0))
    assert.ok(runs.some((r) => r.state === 'stopped'))
    assert.deepEqual(
      runs.map((r) => r.id),
      runs.map((r) => r.id).sort(),
      'oldest first',
    )
    await runScript(SCRIPT, args(['--stop', runningId, '--stop-grace', '1']), env)
    assert.equal((await list()).find((r) => r.id === runningId)?.state, 'stopped')
  })

  test('--attach and --stop of a run that is not there: exit 2, with the way to list them', async () => {
    const result = await runScript(SCRIPT, args(['--attach', '20990101-000000-beef']), env)
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /There is no run 20990101-000000-beef on ssh .*--list/)
    const bad = await runScript(SCRIPT, args(['--stop', '../../etc']), env)
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /is not a run id/)
  })

  test('--list shows the space runs take; --prune removes ended runs past its limits with their reports, never a running one', async () => {
    const reports = path.join(dir, 'reports/evaluations')
    // A folder of the eval's output directory that no run wrote, and a run whose JSON names it
    // through "..": pruning that run leaves the folder.
    await writeAsTestUser(path.join(reports, 'not-ours/report.json'), '{}')
    const beforeClaim = new Set(await readdir(reports))
    await runScript(SCRIPT, args(['--eval-arg=--claim-run-dir', `--eval-arg=${reports}/../evaluations/not-ours`]), env)
    // That eval wrote its report in a folder of its own, which its JSON does not name: it stays too.
    const unnamed = (await readdir(reports)).filter((name) => !beforeClaim.has(name))
    assert.equal(unnamed.length, 1, String(unnamed))
    const sleep = sleepFor(60)
    const running = JSON.parse((await runScript(SCRIPT, args(['--detach', ...sleep.args]), env)).stdout).remote_run_id
    const listed = await runScript(SCRIPT, args(['--list']), env)
    const runs = JSON.parse(listed.stdout).runs as Array<{ id: string; run_id: string | null; state: string; bytes: number }>
    assert.ok(runs.length >= 4, listed.stderr)
    assert.ok(
      runs.every((r) => r.bytes > 0),
      JSON.stringify(runs),
    )
    assert.equal(
      JSON.parse(listed.stdout).bytes,
      runs.reduce((sum, r) => sum + r.bytes, 0),
    )
    assert.match(listed.stderr, new RegExp(`^\\[done\\] ${runs.length} run\\(s\\), [\\d.]+ [KM]iB in all`, 'm'))
    assert.match(listed.stderr, /^\[done\] run\s+report folder \(run_id\)\s+state.*\ssize$/m)
    const runDir = (id: string) => path.join(dir, '.remote-eval/runs', id)
    // A folder among the runs not named as ours: never pruned.
    await writeAsTestUser(path.join(runDir('not a run'), 'meta'), 'started=2000-01-01T00:00:00Z\n')
    const ended = runs.filter((r) => r.id !== running)
    const ours = async () => (await list()).filter((r) => r.id !== 'not a run')
    const prune = async (flags: string[]) => {
      const result = await runScript(SCRIPT, args(['--prune', ...flags]), env)
      assert.equal(result.code, 0, result.stderr)
      return { ...result, pruned: (JSON.parse(result.stdout).pruned as Array<{ id: string }>).map((r) => r.id) }
    }
    // --dry-run names what would go and removes nothing.
    const dry = await prune(['--keep-last', '2', '--dry-run'])
    assert.deepEqual(
      dry.pruned.sort(),
      runs.slice(0, -2).map((r) => r.id),
      dry.stderr,
    )
    assert.match(dry.stderr, /^\[done\] would remove \d+ run\(s\) .*\(dry run: nothing removed\)$/m)
    assert.deepEqual(
      (await ours()).map((r) => r.id),
      runs.map((r) => r.id),
    )
    // --older-than: by when a run ended; only the one made 3 days old here goes, with its report.
    const oldest = ended.find((r) => r.run_id !== null)!
    await $`touch -d '3 days ago' ${path.join(runDir(oldest.id), 'exit')}`
    const aged = await prune(['--older-than', '2'])
    assert.deepEqual(aged.pruned, [oldest.id], aged.stderr)
    assert.ok(!existsSync(runDir(oldest.id)) && !existsSync(path.join(reports, oldest.run_id!)), 'the run and its report are gone')
    // --keep-last 1: the newest is the running one; every ended run goes.
    const kept = await prune(['--keep-last', '1'])
    assert.deepEqual(
      kept.pruned.sort(),
      ended.filter((r) => r !== oldest).map((r) => r.id),
      kept.stderr,
    )
    assert.deepEqual(
      (await ours()).map((r) => [r.id, r.state]),
      [[running, 'running']],
    )
    assert.ok(existsSync(path.join(runDir('not a run'), 'meta')), 'a folder not named as a run of ours stays')
    assert.deepEqual((await readdir(reports)).sort(), [...unnamed, 'not-ours'].sort(), 'only the reports the pruned runs named went')
    assert.ok((await livingProcesses(sleep.marker)).length > 0, 'the running run goes on')
    await runScript(SCRIPT, args(['--stop', running, '--stop-grace', '1']), env)
  })
})
