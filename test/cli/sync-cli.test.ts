import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { freePort } from '../support/sshd.ts'
import { listTree, makePod, makeProject, pathWith, remoteDir, runScript, sshFlags } from '../support/harness.ts'

const SCRIPT = 'remote_eval/sync_code.ts'
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('[error]'))

describe('sync_code.ts, run as a user would', () => {
  test('--help lists every flag and the exit codes', async () => {
    const result = await runScript(SCRIPT, ['--help'])
    assert.equal(result.code, 0)
    for (const flag of [
      '--host',
      '--remote-dir',
      '--context',
      '--namespace',
      '--pod',
      '--container',
      '--workdir',
      '--ssh-option',
      '--max-file-size',
      '--adopt-remote-dir',
    ]) {
      assert.ok(result.stdout.includes(flag), flag)
    }
    assert.match(result.stdout, /Exit codes:[\s\S]*\n {2}5 {4}the connection or transport failed/)
  })

  test('an unknown flag is refused as the bash runner did, with the usage', async () => {
    const result = await runScript(SCRIPT, ['--hots', 'gpu'])
    assert.equal(result.code, 2)
    assert.deepEqual(errorLines(result.stderr), ['[error] Unknown arg: --hots'])
    assert.match(result.stderr, /Usage:\n {2}scripts\/remote_eval\/sync_code\.ts --host HOST --remote-dir DIR/)
  })

  test('--dry-run names what would be sent and removed and sends nothing; --verbose names what was', async () => {
    const project = await makeProject({ 'app.py': 'print(1)\n', 'old.py': 'x = 1\n' }, { git: true })
    const dir = remoteDir('dry')
    const args = [...sshFlags(), '--remote-dir', dir, '--project-dir', project]
    const dry = await runScript(SCRIPT, [...args, '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    const planned = JSON.parse(dry.stdout)
    assert.deepEqual([planned.dry_run, planned.sent, planned.removed, planned.files_sent], [true, ['app.py', 'old.py'], [], 2])
    assert.match(dry.stderr, /^\[sync\] would send: app\.py$/m)
    assert.match(dry.stderr, new RegExp(`^\\[done\\] dry run: nothing sent to ${dir} on ssh gr-test$`, 'm'))
    assert.equal(existsSync(dir), false, 'the remote dir was not even made')

    const pushed = await runScript(SCRIPT, [...args, '--verbose'])
    assert.equal(pushed.code, 0, pushed.stderr)
    assert.deepEqual(JSON.parse(pushed.stdout).sent, ['app.py', 'old.py'])
    assert.match(pushed.stderr, /^\[sync\] sent: old\.py$/m)

    await writeFile(path.join(project, 'app.py'), 'print(2)\n')
    await rm(path.join(project, 'old.py'))
    const before = await listTree(dir)
    const second = await runScript(SCRIPT, [...args, '--dry-run'])
    assert.equal(second.code, 0, second.stderr)
    assert.deepEqual([JSON.parse(second.stdout).sent, JSON.parse(second.stdout).removed], [['app.py'], ['old.py']])
    assert.match(second.stderr, /^\[sync\] would remove: old\.py$/m)
    assert.deepEqual(await listTree(dir), before)
    assert.equal(await readFile(path.join(dir, 'app.py'), 'utf8'), 'print(1)\n', 'nothing changed there')

    const third = await runScript(SCRIPT, [...args, '--verbose'])
    assert.equal(third.code, 0, third.stderr)
    assert.match(third.stderr, /^\[sync\] removed: old\.py$/m)
    assert.equal(await readFile(path.join(dir, 'app.py'), 'utf8'), 'print(2)\n')
  })

  test('pushes over ssh and prints a JSON summary; a second run sends nothing', async () => {
    const project = await makeProject({ 'app.py': 'print(1)\n', '.env.eval': 'HF_TOKEN=hf_x\n' }, { git: true })
    const dir = remoteDir('cli')
    const args = [...sshFlags(), '--remote-dir', dir, '--project-dir', project]
    const first = await runScript(SCRIPT, args)
    assert.equal(first.code, 0, first.stderr)
    const summary = JSON.parse(first.stdout)
    assert.equal(summary.remote_dir, dir)
    assert.equal(summary.files_sent, 1)
    assert.match(first.stderr, /^\[sync\] 1 files .* selected by git's rules; 1 excluded \(\.env\.eval\)$/m)
    assert.deepEqual(
      (await listTree(dir)).filter((f) => !f.startsWith('.remote-eval')),
      ['app.py'],
    )
    const second = await runScript(SCRIPT, args)
    assert.equal(JSON.parse(second.stdout).unchanged, true)
  })

  test('pushes into a pod at the default --workdir', async () => {
    const pod = await makePod()
    const project = await makeProject({ 'app.py': 'print(1)\n' })
    const result = await runScript(SCRIPT, [
      '--context',
      pod.context,
      '--namespace',
      pod.namespace,
      '--pod',
      pod.pod,
      '--project-dir',
      project,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(JSON.parse(result.stdout).remote_dir, '/workdir/guardrails')
    assert.equal(await readFile(path.join(pod.workdir(), 'guardrails/app.py'), 'utf8'), 'print(1)\n')
  })

  test('an unreachable host ends with exit code 5 and the ssh error in one line', async () => {
    const port = await freePort()
    const result = await runScript(SCRIPT, ['--host', '127.0.0.1', '--ssh-option', `Port=${port}`, '--remote-dir', '/srv/eval'])
    assert.equal(result.code, 5)
    const errors = errorLines(result.stderr)
    assert.equal(errors.length, 1, result.stderr)
    assert.match(
      errors[0]!,
      new RegExp(`^\\[error\\] Cannot connect to 127\\.0\\.0\\.1: ssh: connect to host 127\\.0\\.0\\.1 port ${port}: Connection refused$`),
    )
  })

  const missing: Array<[string, string[], string[]]> = [
    ['ssh', ['rsync', 'tar'], ['--host', 'gpu', '--remote-dir', '/srv/eval']],
    ['rsync', ['ssh', 'tar'], ['--host', 'gpu', '--remote-dir', '/srv/eval']],
    ['kubectl', ['tar'], ['--context', 'c', '--namespace', 'ml', '--pod', 'p']],
    ['tar', ['kubectl'], ['--context', 'c', '--namespace', 'ml', '--pod', 'p']],
  ]
  for (const [tool, present, args] of missing) {
    test(`a missing local ${tool} ends with exit code 3 naming what to install`, async () => {
      const bin = await pathWith(present)
      const result = await runScript(SCRIPT, args, { ...process.env, PATH: bin })
      assert.equal(result.code, 3, result.stderr)
      assert.match(result.stderr, new RegExp(`\\[error\\] ${tool} not found on this machine`))
      assert.match(result.stderr, new RegExp(`${tool}: Install ${tool === 'ssh' ? 'the OpenSSH client' : tool}`))
    })
  }

  test('a tar that is not GNU tar (macOS bsdtar) ends with exit code 3 naming GNU tar', async () => {
    const bin = await pathWith(['kubectl'])
    await writeFile(path.join(bin, 'tar'), '#!/bin/sh\necho "bsdtar 3.6.2 - libarchive 3.6.2"\n', { mode: 0o755 })
    const result = await runScript(SCRIPT, ['--context', 'c', '--namespace', 'ml', '--pod', 'p'], { ...process.env, PATH: bin })
    assert.equal(result.code, 3, result.stderr)
    assert.match(result.stderr, /GNU tar not found on this machine .*brew install gnu-tar/)
  })

  const bad: Array<[string, string[], RegExp]> = [
    ['relative --remote-dir', ['--host', 'gpu', '--remote-dir', 'eval'], /--remote-dir "eval" is a relative path/],
    ['/ as --remote-dir', ['--host', 'gpu', '--remote-dir', '/'], /--remote-dir \/ is a system directory/],
    ['~ in --remote-dir', ['--host', 'gpu', '--remote-dir', '~/eval'], /--remote-dir "~\/eval" starts with ~/],
    ['metacharacters in --host', ['--host', 'gpu;reboot', '--remote-dir', '/srv/eval'], /--host "gpu;reboot" is not a host name/],
    ['an option as --host', ['--host=-oProxyCommand=x', '--remote-dir', '/srv/eval'], /--host "-oProxyCommand=x" is not a host name/],
    ['empty --host', ['--host', '', '--remote-dir', '/srv/eval'], /--host needs a value/],
    ['--host without a value', ['--remote-dir', '/srv/eval', '--host'], /--host needs a value/],
    ['no --remote-dir', ['--host', 'gpu'], /--remote-dir is required/],
    ['both targets', ['--host', 'gpu', '--pod', 'p'], /either --host .* or --pod/],
    ['no target', [], /No target/],
    [
      '--remote-dir with a pod',
      ['--context', 'c', '--namespace', 'ml', '--pod', 'p', '--remote-dir', '/x'],
      /--remote-dir does not apply to a pod; a pod takes --workdir/,
    ],
    ['bad pod name', ['--context', 'c', '--namespace', 'ml', '--pod', 'Eval_0'], /--pod "Eval_0" is not a valid pod name/],
    ['bad size', ['--host', 'gpu', '--remote-dir', '/srv/eval', '--max-file-size', 'lots'], /--max-file-size "lots" is not a size/],
    ['a stray argument', ['--host', 'gpu', 'extra'], /Unexpected argument: extra/],
    ['a repeated flag', ['--host', 'a', '--host', 'b', '--remote-dir', '/srv/x'], /--host was given 2 times/],
    [
      'bad --ssh-option',
      ['--host', 'gpu', '--remote-dir', '/srv/eval', '--ssh-option', "Port=22'; id"],
      /--ssh-option .* is not an ssh option/,
    ],
  ]
  for (const [name, args, message] of bad) {
    test(`bad input (${name}) ends with exit code 2 before any connection`, async () => {
      const result = await runScript(SCRIPT, args, { ...process.env, PATH: await pathWith([]) })
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, message)
    })
  }
})
