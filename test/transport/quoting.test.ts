import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { copyFile, mkdir, mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { harness, makeProject, remoteDir, runScript } from '../support/harness.ts'

// Local paths of any content reach ssh and rsync as one argument each, never re-parsed by a shell:
// quotes, spaces and newlines in --ssh-config and --project-dir, and a path crafted to break out of
// the rsync -e string (which once ran a local command).

const SYNC = 'remote_eval/sync_code.ts'

describe('paths with quotes, spaces and newlines', () => {
  test('an --ssh-config path crafted to inject a ProxyCommand is just a path: the push works, nothing runs', async () => {
    const scratch = await mkdtemp(path.join(tmpdir(), 'gre-quote-'))
    const pwned = path.join(scratch, 'pwned')
    const crafted = path.join(scratch, `c' -S none -oProxyCommand='touch ${pwned}`, 'it\'s a "config"\nfile')
    await mkdir(path.dirname(crafted), { recursive: true })
    await copyFile(harness().sshd.configFile, crafted)
    // Many files: the push goes through rsync, whose -e once carried the config path.
    const files: Record<string, string> = {}
    for (let i = 0; i < 300; i++) files[`src/m${i}.py`] = `x = ${i}\n`
    const project = await makeProject(files, { git: true })
    const dir = remoteDir('quote')
    const result = await runScript(SYNC, [
      '--host',
      harness().sshd.alias,
      '--ssh-config',
      crafted,
      '--remote-dir',
      dir,
      '--project-dir',
      project,
    ])
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /\(rsync-tree, /)
    assert.ok(!existsSync(pwned), 'no local command ran')
    assert.equal(await readFile(path.join(dir, 'src/m299.py'), 'utf8'), 'x = 299\n')
  })

  test('a project directory with a quote, a space and a newline in its name syncs, by rsync and by tar', async () => {
    const parent = await mkdtemp(path.join(tmpdir(), 'gre-quote-'))
    const project = path.join(parent, "the 'eval'\nrepo")
    const made = await makeProject({ 'app.py': 'print(1)\n' }, { git: true })
    await $`mv ${made} ${project}`.quiet()
    for (const count of [1, 300]) {
      for (let i = 0; i < count; i++) await $`printf 'y = %s\n' ${String(i)} > ${path.join(project, `f${count}_${i}.py`)}`.quiet()
      const dir = remoteDir('quote')
      const result = await runScript(SYNC, [
        '--host',
        harness().sshd.alias,
        '--ssh-config',
        harness().sshd.configFile,
        '--remote-dir',
        dir,
        '--project-dir',
        project,
      ])
      assert.equal(result.code, 0, result.stderr)
      assert.ok(existsSync(path.join(dir, 'app.py')) && existsSync(path.join(dir, `f${count}_${count - 1}.py`)))
    }
  })
})
