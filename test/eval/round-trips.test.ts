import assert from 'node:assert/strict'
import { appendFile, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { copyExample, harness, makePod, podExecs, preparedAssets, remoteDir, runScript, sshFlags } from '../support/harness.ts'
import { NOOP_EVAL } from '../support/noop-eval.ts'
import { startCountingProxy, type CountingProxy } from '../support/tcp-proxy.ts'

// What a run costs on the wire, counted where it happens: SSH sessions in the test sshd's log (of
// this test's connection only, through a counting proxy), kubectl execs in the API server
// double's log. An unchanged, air-gapped run: one after the connection (the preflight's, which
// then carries the run, and the run brings its report directory home at its end).

/** The example repo with a no-op eval (app.eval.noop): what is counted is the runner's work. */
async function noopProject(): Promise<string> {
  const project = await copyExample()
  await writeFile(path.join(project, 'app/eval/noop.py'), NOOP_EVAL)
  return project
}

describe('round trips of a run', () => {
  let proxy: CountingProxy
  before(async () => {
    proxy = await startCountingProxy(harness().sshd.port)
  })
  after(() => proxy.close())

  /** sshd's sessions (each script, each rsync) on this proxy's connections since `logBefore`. */
  async function sessionsSince(logBefore: number): Promise<number> {
    const log = (await readFile(harness().sshd.logFile, 'utf8')).slice(logBefore)
    return log
      .split('\n')
      .filter((line) => line.startsWith('Starting session:') && proxy.upstreamPorts.some((p) => line.includes(` port ${p} `))).length
  }

  test('SSH, air-gapped, with uv: 1 session on 1 connection, unchanged or with a changed file (its push rides the session too)', async () => {
    const project = await noopProject()
    const { models, datasets } = await preparedAssets('trips-assets')
    const args = [
      ...sshFlags([`Port=${proxy.port}`]),
      ...[
        '--remote-dir',
        remoteDir('trips'),
        '--project-dir',
        project,
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'no',
        '--eval-module',
        'app.eval.noop',
      ],
      ...['--models-dir', models, '--datasets-dir', datasets],
    ]
    const run = async () => {
      proxy.reset()
      const logBefore = (await readFile(harness().sshd.logFile, 'utf8')).length
      const result = await runScript('remote_eval/ssh_eval.ts', args)
      assert.equal(result.code, 0, result.stderr)
      // sshd writes a session's line as it starts it; the last one is long started once we are done.
      return { connections: proxy.connections, sessions: await sessionsSince(logBefore), stderr: result.stderr, stdout: result.stdout }
    }
    const first = await run()
    assert.match(first.stderr, /^\[deps\] uv sync --extra eval: done$/m)
    const unchanged = await run()
    assert.match(unchanged.stderr, /^\[deps\] pyproject\.toml, uv\.lock and extras unchanged since the last sync: skipped$/m)
    assert.match(unchanged.stderr, /^\[sync\] .* is up to date; nothing sent$/m)
    // The closing summary: every step's time, and what was skipped and why; the same in the JSON.
    const lastLine = unchanged.stderr.trim().split('\n').at(-1)
    assert.match(
      lastLine!,
      /^\[done\] \d+\.\d s in all: preflight \d+\.\d s, sync \d+\.\d s \(skipped: unchanged tree\), deps \d+\.\d s \(skipped: pyproject\.toml, uv\.lock and extras unchanged\), assets \d+\.\d s \(skipped: complete, checked against their manifests\), run \d+\.\d s, fetch \d+\.\d s$/,
    )
    const { timings, skipped } = JSON.parse(unchanged.stdout)
    assert.deepEqual(Object.keys(timings), ['preflight', 'sync', 'deps', 'assets', 'run', 'fetch', 'total'])
    const steps = ['preflight', 'sync', 'deps', 'assets', 'run', 'fetch'].reduce((sum, step) => sum + timings[step], 0)
    assert.ok(Math.abs(steps - timings.total) < timings.total * 0.5 + 0.5, JSON.stringify(timings))
    assert.deepEqual(Object.keys(skipped), ['sync', 'deps', 'assets'])
    assert.deepEqual({ connections: unchanged.connections, sessions: unchanged.sessions }, { connections: 1, sessions: 1 })
    await appendFile(path.join(project, 'app/eval/cli.py'), '# changed\n')
    const changed = await run()
    assert.match(changed.stderr, /^\[sync\] .*\(tar, /m)
    assert.deepEqual({ connections: changed.connections, sessions: changed.sessions }, { connections: 1, sessions: 1 })
  })

  test('a pod, air-gapped: 1 kubectl exec, unchanged or with a changed file (its push rides the exec too)', async () => {
    const project = await noopProject()
    const { models, datasets } = await preparedAssets('trips-assets')
    const pod = await makePod(['main'], {
      binds: [`ro ${harness().venv} /opt/venv`, `ro ${models} /mnt/models`, `ro ${datasets} /mnt/datasets`],
    })
    const args = [
      ...['--context', pod.context, '--namespace', pod.namespace, '--pod', pod.pod, '--venv', '/opt/venv'],
      ...['--project-dir', project, '--runtime', 'cpu', '--remote-has-internet', 'no', '--eval-module', 'app.eval.noop'],
      ...['--models-dir', '/mnt/models', '--datasets-dir', '/mnt/datasets'],
    ]
    const execsOf = async () => {
      const before = (await podExecs(pod)).length
      const result = await runScript('remote_eval/k8s_eval.ts', args)
      assert.equal(result.code, 0, result.stderr)
      return (await podExecs(pod)).length - before
    }
    await execsOf()
    assert.equal(await execsOf(), 1, 'preflight, then the run in the same exec, with the report directory at its end')
    await appendFile(path.join(project, 'app/eval/cli.py'), '# changed\n')
    assert.equal(await execsOf(), 1, 'the push of a small archive too')
  })
})
