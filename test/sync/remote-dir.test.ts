import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { UsageError } from '../../lib/core/errors.ts'
import { validateRemoteDir } from '../../lib/core/remote-path.ts'
import { syncProject } from '../../lib/sync/sync.ts'
import type { SshTransport } from '../../lib/transport/ssh.ts'
import { harness, listTree, makeProject, openTestSsh, remoteDir } from '../support/harness.ts'

describe('remote directory paths', () => {
  const refused: Array<[string, RegExp]> = [
    ['/', /system directory/],
    ['//', /system directory/],
    ['/home', /system directory/],
    ['/tmp/', /system directory/],
    ['~', /starts with ~/],
    ['~/guardrails', /starts with ~.*\/home\/you\/guardrails/],
    ['guardrails', /relative path/],
    ['./eval', /relative path/],
    ['', /empty/],
    ['/srv/a/../../etc', /\. or \.\. components/],
    ['/srv/eval;rm -rf ~', /not allowed/],
    ['/srv/$(whoami)', /not allowed/],
    ['/srv/eval dir', /not allowed/],
    ['/srv/`id`', /not allowed/],
    ['/srv/eval\nx', /not allowed/],
  ]
  for (const [dir, message] of refused) {
    test(`refuses ${JSON.stringify(dir)}`, () => {
      assert.throws(
        () => validateRemoteDir(dir, '--remote-dir'),
        (e: unknown) => e instanceof UsageError && message.test(e.message) && e.message.includes('--remote-dir'),
      )
    })
  }
  test('normalizes a good path', () => assert.equal(validateRemoteDir('/home/me//guardrails/', '--remote-dir'), '/home/me/guardrails'))
})

describe('the ownership marker rule, over ssh', () => {
  let ssh: SshTransport
  let project: string
  before(async () => {
    ssh = await openTestSsh()
    project = await makeProject({ 'app.py': 'print(1)\n', 'README.md': 'r' }, { git: true })
  })
  after(() => ssh.close())

  /** Creates files on the target as the test user would have. */
  async function prepare(dir: string, files: Record<string, string>) {
    const { user } = harness().sshd
    for (const [rel, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
      await writeFile(path.join(dir, rel), content)
    }
    await $`chown -R ${user}: ${dir}`.quiet()
  }
  const snapshot = async (dir: string) => (await $`cd ${dir} && find . -printf '%P %s %T@ %m\n' | sort`.quiet()).stdout

  test("a directory holding somebody else's files is refused, and left byte for byte as it was", async () => {
    const dir = remoteDir('foreign')
    await prepare(dir, { 'notes.txt': 'mine', 'src/old.py': 'old', '.env.eval': 'HF_TOKEN=x' })
    const before = await snapshot(dir)
    await assert.rejects(
      syncProject({ transport: ssh, projectDir: project, remoteDir: dir }),
      (e: unknown) =>
        e instanceof UsageError &&
        /already holds files this tool did not put there: notes\.txt, src\//.test(e.message) &&
        /--adopt-remote-dir/.test(e.message),
    )
    assert.equal(await snapshot(dir), before)
  })

  test('a directory with only paths a sync never touches becomes ours, and they stay', async () => {
    const dir = remoteDir('untouched')
    await prepare(dir, { '.env.eval': 'HF_TOKEN=secret', '.venv/bin/python': 'py', 'reports/evaluations/r1/report.json': '{}' })
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.claimed, true)
    assert.deepEqual(await listTree(dir), [
      '.env.eval',
      '.remote-eval/owner',
      '.remote-eval/sync-stamp',
      '.remote-eval/sync-state',
      '.venv/bin/python',
      'README.md',
      'app.py',
      'reports/evaluations/r1/report.json',
    ])
  })

  test('--adopt-remote-dir syncs into a foreign directory and deletes nothing of it', async () => {
    const dir = remoteDir('adopt')
    await prepare(dir, { 'notes.txt': 'mine', 'app.py': 'their version' })
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir, adopt: true })
    assert.equal(report.claimed, true)
    assert.ok((await listTree(dir)).includes('notes.txt'))
    assert.equal((await $`cat ${path.join(dir, 'app.py')}`.quiet()).stdout, 'print(1)\n')
  })

  test("the remote user's home is refused, also through a symlink", async () => {
    const { home, user } = harness().sshd
    await assert.rejects(syncProject({ transport: ssh, projectDir: project, remoteDir: home }), /is the home directory/)
    const link = remoteDir('link-to-home')
    await symlink(home, link)
    await $`chown -h ${user}: ${link}`.quiet()
    await assert.rejects(syncProject({ transport: ssh, projectDir: project, remoteDir: link }), /is the home directory/)
  })

  test("a directory holding another project's push is refused; --adopt-remote-dir replaces it", async () => {
    const dir = remoteDir('two-projects')
    await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    const other = await makeProject({ 'other.py': 'x' }, { git: true })
    const before = await snapshot(dir)
    await assert.rejects(
      syncProject({ transport: ssh, projectDir: other, remoteDir: dir }),
      (e: unknown) =>
        e instanceof UsageError && /holds code pushed from another project .* would delete that project's files/.test(e.message),
    )
    assert.equal(await snapshot(dir), before, 'nothing touched')
    // A subdirectory of the same repository is another project too (its push would delete the rest).
    const repo = await makeProject({ 'svc/a.py': 'a', 'lib/b.py': 'b' }, { git: true })
    const whole = remoteDir('whole-repo')
    await syncProject({ transport: ssh, projectDir: repo, remoteDir: whole })
    await assert.rejects(
      syncProject({ transport: ssh, projectDir: path.join(repo, 'svc'), remoteDir: whole }),
      /holds code pushed from another project/,
    )
    const replaced = await syncProject({ transport: ssh, projectDir: other, remoteDir: dir, adopt: true })
    assert.equal(replaced.filesRemoved, 2)
    assert.deepEqual(
      (await listTree(dir)).filter((f) => !f.startsWith('.remote-eval/')),
      ['other.py'],
    )
  })

  test('a directory the remote user cannot write is refused before anything is sent', async () => {
    await assert.rejects(
      syncProject({ transport: ssh, projectDir: project, remoteDir: '/opt/not-yours' }),
      /cannot be created by the login user/,
    )
  })
})
