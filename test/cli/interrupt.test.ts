import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { describe, test } from 'node:test'
import { startProcess } from '../../lib/core/process.ts'
import { SCRIPTS, harness, makeProject, remoteDir, sshFlags } from '../support/harness.ts'
import { startCountingProxy } from '../support/tcp-proxy.ts'

// Ctrl-C while connecting or while pushing: the runner exits with 130 and leaves no SSH connection
// behind. A slow link (a proxy that holds every chunk 30 ms) makes both moments reliable to hit.

/** Runs a push of 4 MiB over the slow link; sends SIGINT once `trigger` says so. */
async function interruptWhen(trigger: { line: RegExp; bytesOnTheWire?: number }) {
  const proxy = await startCountingProxy(harness().sshd.port, { delayMs: 30 })
  const project = await makeProject({ 'big.bin': randomBytes(4 * 1024 * 1024), 'app.py': 'x' })
  const stderr: string[] = []
  let armed = false
  const runner = startProcess(
    path.join(SCRIPTS, 'remote_eval/sync_code.ts'),
    [...sshFlags([`Port=${proxy.port}`]), '--remote-dir', remoteDir('interrupt'), '--project-dir', project],
    {
      cwd: path.dirname(SCRIPTS),
      onStderrLine: (line) => {
        stderr.push(line)
        if (armed || !trigger.line.test(line)) return
        armed = true
        const bytesAtConnect = proxy.bytesUp
        const fire = () => {
          // With a byte threshold, wait for file data to be on the wire: then the push is under way.
          if (trigger.bytesOnTheWire && proxy.bytesUp - bytesAtConnect < trigger.bytesOnTheWire) return void setTimeout(fire, 20)
          runner.kill('SIGINT')
        }
        setTimeout(fire, trigger.bytesOnTheWire ? 0 : 200)
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
    const { result, stderr, proxy } = await interruptWhen({ line: /^\[sync\] \d+ files/ })
    assert.equal(result.exitCode, 130, stderr)
    assert.doesNotMatch(stderr, /\[ssh\] connected/)
    assert.match(stderr, /^\[error\] Interrupted \(Ctrl-C\): cleaning up/m)
    assert.equal(proxy.active, 0, 'the half-open master connection is closed')
  })

  test('while files are sent: exit 130, and the master connection is closed', async () => {
    const { result, stderr, proxy } = await interruptWhen({ line: /^\[ssh\] connected/, bytesOnTheWire: 256 * 1024 })
    assert.equal(result.exitCode, 130, stderr)
    assert.match(stderr, /^\[error\] Interrupted \(Ctrl-C\): cleaning up/m)
    assert.doesNotMatch(stderr, /\[sync\] .*sent \d+ changed file/, 'interrupted before the push completed')
    assert.equal(proxy.connections, 1)
    assert.equal(proxy.active, 0, 'the master connection is closed')
  })
})
