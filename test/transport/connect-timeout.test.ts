import assert from 'node:assert/strict'
import { createServer, type Socket } from 'node:net'
import { test } from 'node:test'
import { makeProject, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// A host that takes the connection and never answers (packets dropped past a firewall, a hung
// sshd): the runner says where it connects, and gives up after --connect-timeout, naming it.
test('a host that never answers: "connecting to" first, then exit 5 after --connect-timeout, which the error names', async () => {
  const held: Socket[] = []
  const silent = createServer((socket) => void held.push(socket))
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const port = (silent.address() as { port: number }).port
  try {
    const project = await makeProject({ 'app.py': 'print(1)\n' }, { git: true })
    const args = [...sshFlags([`Port=${port}`]), '--remote-dir', remoteDir('silent'), '--project-dir', project, '--connect-timeout', '2']
    const result = await runScript('remote_eval/sync_code.ts', args, process.env, { timeoutMs: 60_000 })
    assert.equal(result.code, 5, result.stderr)
    const lines = result.stderr.split('\n')
    const connecting = lines.findIndex((l) => /^\[ssh\] connecting to gr-test \(giving up after 2 s: --connect-timeout\)\.\.\.$/.test(l))
    const failed = lines.findIndex((l) => /^\[error\] Cannot connect to gr-test: .*timed out.*longer --connect-timeout/.test(l))
    assert.ok(connecting >= 0 && failed > connecting, result.stderr)
    assert.ok(held.length > 0, 'the connection reached the silent host')
  } finally {
    for (const socket of held) socket.destroy()
    silent.close()
  }
})

test('--connect-timeout takes whole seconds only', async () => {
  const result = await runScript('remote_eval/sync_code.ts', [...sshFlags(), '--remote-dir', remoteDir('t'), '--connect-timeout', '2s'])
  assert.equal(result.code, 2, result.stderr)
  assert.match(result.stderr, /--connect-timeout "2s" is not a whole number of seconds from 1 to 3600/)
})
