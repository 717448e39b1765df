import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { describe, test } from 'node:test'
import { startProcess } from '../../lib/process.ts'
import { SCRIPTS, harness, makeProject, remoteDir, sshFlags } from '../support/harness.ts'
import { startCountingProxy } from '../support/tcp-proxy.ts'

// Ctrl-C while connecting or while pushing: the runner exits with 130 and leaves no SSH connection
// behind. A slow link (a proxy that holds every chunk 30 ms) makes both moments reliable to hit.

async function interruptAfter(trigger: RegExp) {
  const proxy = await startCountingProxy(harness().sshd.port, { delayMs: 30 })
  const project = await makeProject({ 'big.bin': randomBytes(4 * 1024 * 1024), 'app.py': 'x' })
  const stderr: string[] = []
  let interrupted = false
  const runner = startProcess(
    path.join(SCRIPTS, 'remote_eval/sync_code.ts'),
    [...sshFlags([`Port=${proxy.port}`]), '--remote-dir', remoteDir('interrupt'), '--project-dir', project],
    {
      cwd: path.dirname(SCRIPTS),
      onStderrLine: (line) => {
        stderr.push(line)
        if (!interrupted && trigger.test(line)) {
          interrupted = true
          setTimeout(() => runner.kill('SIGINT'), 200)
        }
      },
    },
  )
  const result = await runner.result
  for (let i = 0; i < 150 && proxy.active > 0; i++) await new Promise((r) => setTimeout(r, 20))
  await proxy.close()
  return { result, stderr: stderr.join('\n'), proxy }
}

describe('Ctrl-C', () => {
  test('while the connection opens: exit 130, and no master is left connected', async () => {
    const { result, stderr, proxy } = await interruptAfter(/^\[sync\] \d+ files/)
    assert.equal(result.exitCode, 130, stderr)
    assert.doesNotMatch(stderr, /\[ssh\] connected/)
    assert.match(stderr, /^\[error\] Interrupted \(Ctrl-C\): cleaning up/m)
    assert.equal(proxy.active, 0, 'the half-open master connection is closed')
  })

  test('while files are sent: exit 130, and the master connection is closed', async () => {
    const { result, stderr, proxy } = await interruptAfter(/^\[ssh\] connected/)
    assert.equal(result.exitCode, 130, stderr)
    assert.match(stderr, /^\[error\] Interrupted \(Ctrl-C\): cleaning up/m)
    assert.equal(proxy.connections, 1)
    assert.equal(proxy.active, 0, 'the master connection is closed')
  })
})
