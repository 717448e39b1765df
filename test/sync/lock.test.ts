import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdir, stat } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { harness, makeProject, remoteDir, runScript, sshFlags, startScript, type StartedScript } from '../support/harness.ts'

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

// The holder tells the target every 15 s that it is alive, and the target frees the lock after 60 s
// without a word (a laptop asleep, a link that died silently). GRE_LOCK_HEARTBEAT_MS=1000 makes that
// every 1 s and 4 s here; the rule is the same.
test('a runner that beats keeps the lock past the silence limit; one that falls silent loses it then', async () => {
  const env = { ...process.env, GRE_LOCK_HEARTBEAT_MS: '1000' }
  const dir = remoteDir('lock')
  const holder = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../fixtures/plumbing/hold-lock.ts', import.meta.url)), dir],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let waiter: StartedScript | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on('data', (chunk: Buffer) => (chunk.toString().includes('held') ? resolve() : undefined))
      holder.on('close', (code) => reject(new Error(`the holder ended (${code}) before taking the lock`)))
    })
    const project = await makeProject({ 'app.py': 'print(1)\n' }, { git: true })
    waiter = await startScript('remote_eval/sync_code.ts', [...sshFlags(), '--remote-dir', dir, '--project-dir', project], env)
    let finished = false
    void waiter.result.then(() => (finished = true))
    await waiter.waitFor(/^\[sync\] waiting for the lock on /)
    // Two and a half silence limits while the holder beats: the lock stays where it is.
    await new Promise((r) => setTimeout(r, 10_000))
    assert.equal(finished, false, 'the waiting runner got the lock while its holder was alive')
    // The holder falls silent (stopped, its connection still open): the target frees the lock.
    holder.kill('SIGSTOP')
    // Freed after one silence limit (4 s); 20 s is room for a loaded machine, far short of 60 s.
    const deadline = new Promise<null>((resolve) => setTimeout(() => resolve(null), 20_000).unref())
    const result = await Promise.race([waiter.result, deadline])
    assert.ok(result, 'the target did not free the lock within 20 s after its holder fell silent')
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stderr, /^\[done\] code synced to /m)
  } finally {
    waiter?.kill('SIGKILL')
    if (holder.exitCode === null && holder.signalCode === null) {
      const ended = new Promise((resolve) => holder.on('close', resolve))
      holder.kill('SIGCONT')
      holder.kill('SIGTERM')
      await ended
    }
  }
})
