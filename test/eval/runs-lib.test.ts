import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { LAYOUT_VARS } from '../../lib/core/layout.ts'
import { silentLogger } from '../../lib/core/log.ts'
import { followRun, listRuns, parseFollowOutput, RUNS_LIBRARY, runDirOf, stopRun } from '../../lib/eval/runs.ts'
import { callFunction } from '../../lib/transport/script.ts'
import { LocalTransport } from '../../lib/transport/local.ts'
import { unpackReceived } from '../../lib/transport/tree.ts'
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
  for (const mode of ['stream', 'poll']) {
    test(`a follow (${mode}) passes every line on in order, ends with the run, and checks the report directory its JSON names`, async () => {
      const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'gre-runs-')))
      await mkdir(path.join(dir, 'reports/evaluations/r1'), { recursive: true })
      await symlink('/etc/passwd', path.join(dir, 'reports/evaluations/r1/link'))
      await writeFile(path.join(dir, 'reports/evaluations/r1/report.json'), '{"ok": true}\n')
      const id = `20261128-000000-${mode === 'stream' ? 'ffff' : 'abcd'}`
      const eval_ = `for i in 1 2 3; do echo "line $i" >&2; sleep 0.3; done; sleep 1; echo done >&2; echo '{"run_dir": "reports/evaluations/r1"}'`
      await start(dir, id, ['bash', '-c', eval_])
      const lines: string[] = []
      const follow = callFunction(RUNS_LIBRARY, 'run_follow', LAYOUT_VARS)
      const result = await local.run(follow, [runDirOf(dir, id), '0', `${dir}/reports/evaluations`, '1048576'], {
        env: { REMOTE_EVAL_FOLLOW: mode },
        stdoutEncoding: 'latin1',
        onStderrLine: (line) => lines.push(line),
      })
      assert.deepEqual(lines, ['line 1', 'line 2', 'line 3', 'done'])
      const end = parseFollowOutput(result.stdout)
      assert.equal(end?.state, 'finished')
      assert.deepEqual(end?.json, { run_dir: 'reports/evaluations/r1' })
      const { archive, ...check } = end!.reportDir!
      assert.deepEqual(check, { absolute: `${dir}/reports/evaluations/r1`, status: 0, output: `${dir}/reports/evaluations/r1\0link` })
      // The directory came along: its regular files, never the link.
      const home = path.join(await mkdtemp(path.join(tmpdir(), 'gre-received-')), 'r1')
      assert.deepEqual(await unpackReceived(archive!, home, { remoteDir: check.absolute, target: 'here' }), { files: 1, bytes: 13 })
      assert.deepEqual(await readdir(home), ['report.json'])
    })
  }

  test("the report directory's check as a run ends: outside the output directory, or not written plainly", async () => {
    const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'gre-runs-')))
    await mkdir(path.join(dir, 'reports/evaluations'), { recursive: true })
    await symlink('/tmp', path.join(dir, 'reports/evaluations/away'))
    const follow = callFunction(RUNS_LIBRARY, 'run_follow', LAYOUT_VARS)
    const endOf = async (id: string, json: string, archiveMax = '') => {
      await start(dir, id, ['bash', '-c', `echo '${json}'`])
      const args = [runDirOf(dir, id), '0', `${dir}/reports/evaluations`, archiveMax]
      return parseFollowOutput((await local.run(follow, args, { stdoutEncoding: 'latin1' })).stdout)
    }
    await mkdir(path.join(dir, 'reports/evaluations/big'))
    await writeFile(path.join(dir, 'reports/evaluations/big/report.json'), '0123456789')
    const big = await endOf('20261128-000000-a000', '{"run_dir": "reports/evaluations/big"}', '9')
    assert.equal(big?.reportDir?.status, 0)
    assert.equal(big?.reportDir?.archive, undefined, 'more than the limit: pulled in a round trip of its own')
    const fits = await endOf('20261128-000000-a00a', '{"run_dir": "reports/evaluations/big"}', '10')
    assert.ok(fits?.reportDir?.archive, 'within the limit: it comes along')
    const away = await endOf('20261128-000000-a001', '{"run_dir": "reports/evaluations/away"}')
    assert.equal(away?.reportDir?.status, 69)
    assert.match(away!.reportDir!.output, /resolves to \/tmp, outside/)
    const missing = await endOf('20261128-000000-a002', '{"run_dir": "reports/evaluations/none"}')
    assert.equal(missing?.reportDir?.status, 77)
    for (const [n, json] of [
      ['3', '{"run_dir": "reports/evaluations/\\u00e9"}'],
      ['4', '{"run_dir": "reports/evaluations/../x"}'],
      ['5', '{"run_dir": "a", "run_dir": "b"}'],
    ]) {
      const end = await endOf(`20261128-000000-a00${n}`, json!)
      assert.equal(end?.reportDir, undefined, `${json}: checked in a round trip of its own`)
    }
  })

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
