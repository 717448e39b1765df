import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { LAYOUT_VARS } from '../../lib/core/layout.ts'
import { silentLogger } from '../../lib/core/log.ts'
import { followRun, listRuns, RUNS_LIBRARY, runDirOf, stopRun } from '../../lib/eval/runs.ts'
import { callFunction } from '../../lib/transport/script.ts'
import { LocalTransport } from '../../lib/transport/local.ts'
import { livingProcesses } from '../support/harness.ts'

// runs.sh on this machine's bash (the local transport): what a stop keeps, what it leaves, and what
// the redaction catches. The SSH and pod tests drive the same functions through the runners.

const local = new LocalTransport()
const START = callFunction(RUNS_LIBRARY, 'run_start', LAYOUT_VARS)

async function start(dir: string, id: string, command: string[]): Promise<void> {
  const result = await local.run(`cd -- "$1" || exit; shift\n${START}`, [dir, dir, id, 'suite=s\tsplit=p', '--', ...command])
  assert.equal(result.exitCode, 0, result.stderrTail.join('\n'))
}

describe('runs.sh', () => {
  test('a stop lets the eval shut down: what it prints then, and its own exit code, are kept', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gre-runs-'))
    const marker = `graceful-${process.pid}`
    const script = `import json, signal, sys, time\ndef bye(*_):\n    print(json.dumps({"run_dir": "stopped"})); sys.exit(3)\nsignal.signal(signal.SIGTERM, bye)\nsys.stderr.write("up\\n"); sys.stderr.flush(); time.sleep(60)`
    await start(dir, '20261128-000000-aaaa', ['python3', '-c', script, marker])
    // Stop once its handler is in place (its "up" is in the log).
    const log = path.join(runDirOf(dir, '20261128-000000-aaaa'), 'log')
    for (let i = 0; i < 100 && !(await readFile(log, 'utf8')).includes('up'); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    const stopped = await stopRun(local, { remoteDir: dir, runId: '20261128-000000-aaaa', graceSeconds: 5, logger: silentLogger })
    assert.deepEqual(stopped, { state: 'stopped', exitCode: 3 })
    assert.match(await readFile(path.join(runDirOf(dir, '20261128-000000-aaaa'), 'stdout'), 'utf8'), /"run_dir": "stopped"/)
    assert.deepEqual(await livingProcesses(marker), [])
  })

  test('a process the eval left behind keeps the run running, and a stop ends it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gre-runs-'))
    const marker = `straggler-${process.pid}`
    await start(dir, '20261128-000000-bbbb', ['bash', '-c', `(exec -a ${marker} sleep 60) & echo '{}'; exit 0`, 'x'])
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal((await listRuns(local, dir))[0]?.state, 'running', 'the eval is done, its child is not')
    assert.ok((await livingProcesses(marker)).length > 0)
    const stopped = await stopRun(local, { remoteDir: dir, runId: '20261128-000000-bbbb', graceSeconds: 5, logger: silentLogger })
    assert.equal(stopped.state, 'stopped')
    assert.deepEqual(await livingProcesses(marker), [])
  })

  test('secrets are redacted as python-dotenv reads them: inline comments, quotes, export, *_SECRET_KEY', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gre-runs-'))
    await writeFile(
      path.join(dir, '.env.eval'),
      'HF_TOKEN=hf_inline_comment_1 # read token\nexport DJANGO_SECRET_KEY="quoted-secret-2" # c\nPUBLIC_NAME=visible-value-3\n',
    )
    const text = 'hf_inline_comment_1 quoted-secret-2 visible-value-3 env-secret-value-4'
    const result = await local.run(`export MY_API_KEY=env-secret-value-4; cd -- "$1" || exit; shift\n${START}`, [
      dir,
      dir,
      '20261128-000000-cccc',
      'suite=s',
      '--',
      'bash',
      '-c',
      `echo '${text}' >&2; echo '{}'`,
    ])
    assert.equal(result.exitCode, 0)
    const end = await followRun(local, { remoteDir: dir, runId: '20261128-000000-cccc', fromEnd: false, logger: silentLogger })
    assert.equal(end.state, 'finished')
    assert.equal((await readFile(path.join(runDirOf(dir, '20261128-000000-cccc'), 'log'), 'utf8')).trim(), '*** *** visible-value-3 ***')
  })

  for (const redactor of ['perl', 'awk']) {
    test(`${redactor}: URL credentials, and a secret printed across two lines, are redacted`, async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'gre-runs-'))
      await writeFile(path.join(dir, '.env.eval'), 'HF_TOKEN=hf_split_across_lines_0123456789\n')
      const id = `20261128-000000-${redactor === 'perl' ? 'dddd' : 'eeee'}`
      const lines = [
        'endpoint https://mirror-user:mirror-pass-77@hub.example/api',
        'token: hf_split_acr',
        'oss_lines_0123456789 end',
        'a short piece hf_spl stays',
      ]
      const result = await local.run(`export REMOTE_EVAL_REDACTOR=${redactor}; cd -- "$1" || exit; shift\n${START}`, [
        dir,
        dir,
        id,
        'suite=s',
        '--',
        'bash',
        '-c',
        `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')} >&2; echo '{}'`,
      ])
      assert.equal(result.exitCode, 0)
      await followRun(local, { remoteDir: dir, runId: id, fromEnd: false, logger: silentLogger })
      const log = (await readFile(path.join(runDirOf(dir, id), 'log'), 'utf8')).trim().split('\n')
      assert.deepEqual(log, ['endpoint https://***@hub.example/api', 'token: ***', '*** end', 'a short piece hf_spl stays'])
    })
  }

  test('a run ends with its eval: a double-forked child holding its output open is stopped after the grace and named', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gre-runs-'))
    const marker = `double-forked-${process.pid}`
    const id = '20261128-000000-ffff'
    const result = await local.run(`cd -- "$1" || exit; shift\n${START}`, [
      dir,
      dir,
      id,
      'suite=s\tstop_grace=1',
      '--',
      'bash',
      '-c',
      `( (exec -a ${marker} sleep 60) & ) ; echo '{"run_dir": "x"}'; exit 0`,
    ])
    assert.equal(result.exitCode, 0)
    const started = Date.now()
    const end = await followRun(local, { remoteDir: dir, runId: id, fromEnd: false, logger: silentLogger })
    assert.ok(Date.now() - started < 15_000, 'the run did not wait for its straggler')
    assert.equal(end.state, 'finished')
    assert.deepEqual(end.json, { run_dir: 'x' })
    assert.equal(end.meta.stragglers, '1')
    assert.match(await readFile(path.join(runDirOf(dir, id), 'stragglers'), 'utf8'), new RegExp(`^\\d+ ${marker} 60`))
    assert.deepEqual(await livingProcesses(marker), [])
  })
})
