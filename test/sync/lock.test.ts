import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { harness, makeProject, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// The target's lock lives where only the target user can reach it: ~/.remote-eval/locks, the
// directory 700 and the files 600 (in /tmp, another user once blocked runners by creating the
// predictable name first, and could read who held it).
test("the target's lock is in the target user's own directory, unreadable to others", async () => {
  const project = await makeProject({ 'app.py': 'print(1)\n' }, { git: true })
  const result = await runScript('remote_eval/sync_code.ts', [...sshFlags(), '--remote-dir', remoteDir('lock'), '--project-dir', project])
  assert.equal(result.code, 0, result.stderr)
  const dir = path.join(harness().sshd.home, '.remote-eval/locks')
  assert.equal((await stat(dir)).mode & 0o777, 0o700)
  const locks = await readdir(dir)
  assert.ok(locks.length > 0)
  for (const lock of locks) assert.equal((await stat(path.join(dir, lock))).mode & 0o777, 0o600, lock)
})
