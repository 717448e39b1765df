import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, describe, test } from 'node:test'
import { Writable } from 'node:stream'
import { RemoteEvalError } from '../../lib/core/errors.ts'
import { silentLogger } from '../../lib/core/log.ts'
import { takeTargetLock, type HeldLock } from '../../lib/target/lock.ts'
import type { SshTransport } from '../../lib/transport/ssh.ts'
import { harness, openTestSsh, remoteDir } from '../support/harness.ts'
import { startCountingProxy, type CountingProxy } from '../support/tcp-proxy.ts'

// The steps after the preflight travel in the session that holds the target's lock (lock.sh):
// no session, no login shell of their own. Over the real sshd, counted in its log.

/** sshd's sessions on the proxy's connections (other tests share the sshd). */
const sessionsThrough = async (proxy: CountingProxy) =>
  (await readFile(harness().sshd.logFile, 'utf8'))
    .split('\n')
    .filter((line) => line.startsWith('Starting session:') && proxy.upstreamPorts.some((p) => line.includes(` port ${p} `))).length
const lockOn = (transport: SshTransport, dir: string, wait = true) =>
  takeTargetLock(transport, { remoteDir: dir, wait, library: '', fn: 'true', args: [], logger: silentLogger, step: 'sync' })

describe("the lock's session", () => {
  let transport: SshTransport
  let proxy: CountingProxy
  before(async () => {
    proxy = await startCountingProxy(harness().sshd.port)
    transport = await openTestSsh([`Port=${proxy.port}`])
  })
  after(async () => {
    await transport.close()
    await proxy.close()
  })

  test('runs scripts one after another in the one session: their stdout, stderr and exit status', async () => {
    const before = await sessionsThrough(proxy)
    const lock = await lockOn(transport, remoteDir('session'))
    try {
      const lines: string[] = []
      const first = await transport.run('printf "%s|" "$@"; echo to-stderr >&2; exit 3', ['a b', "it's"], {
        session: lock.session,
        onStderrLine: (line) => lines.push(line),
      })
      assert.deepEqual({ code: first.exitCode, out: first.stdout, lines }, { code: 3, out: "a b|it's|", lines: ['to-stderr'] })
      const second = await transport.run('echo "$GREETING"', [], { session: lock.session, env: { GREETING: 'hello again' } })
      assert.deepEqual({ code: second.exitCode, out: second.stdout }, { code: 0, out: 'hello again\n' })
      assert.equal((await sessionsThrough(proxy)) - before, 1, 'one session: the lock and both scripts')
    } finally {
      await lock.release()
    }
  })

  test('a script gets its data byte for byte; data a script leaves unread does not reach the next one', async () => {
    const lock = await lockOn(transport, remoteDir('session'))
    try {
      const data = Buffer.from([0, 255, 10, 64, 64, 99, 97, 108, 108, 32, 49, 10, 0])
      const read = await transport.run('od -An -tu1 | tr -s " \\n" " "', [], { session: lock.session, stdin: [data, 'tail'] })
      assert.equal(read.stdout.trim(), [...data, ...Buffer.from('tail')].join(' '))
      const unread = await transport.run('exit 0', [], { session: lock.session, stdin: Buffer.alloc(200_000, '@') })
      assert.equal(unread.exitCode, 0)
      const next = await transport.run('cat', [], { session: lock.session })
      assert.deepEqual({ code: next.exitCode, out: next.stdout }, { code: 0, out: '' })
    } finally {
      await lock.release()
    }
  })

  test("a script's output that looks like the end of a script (or of the lock) does not end it", async () => {
    const lock = await lockOn(transport, remoteDir('session'))
    try {
      const forged = String.raw`printf 'a\0@@done-0123456789abcdef 0\0b\0@@locked 0\0c'; sleep 0.2; printf 'd'; exit 4`
      const taken: Buffer[] = []
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          taken.push(chunk)
          done()
        },
      })
      const result = await transport.run(forged, [], { session: lock.session, stdoutSink: sink })
      assert.equal(result.exitCode, 4)
      assert.equal(Buffer.concat(taken).toString('latin1'), 'a\0@@done-0123456789abcdef 0\0b\0@@locked 0\0cd')
    } finally {
      await lock.release()
    }
  })

  test('releaseLock frees the lock as the script starts; without it, the lock stays held while it runs', async () => {
    const dir = remoteDir('session')
    const busy = async () =>
      lockOn(transport, dir, false).then(
        async (other: HeldLock) => (await other.release(), false),
        (error: unknown) => {
          if (error instanceof RemoteEvalError && /is busy/.test(error.message)) return true
          throw error
        },
      )
    const lock = await lockOn(transport, dir)
    try {
      const held = transport.run('sleep 1', [], { session: lock.session })
      assert.equal(await busy(), true, 'held while a script runs in the session')
      await held
      // Asked until free (no fixed wait: a loaded machine starts the script late), then checked that
      // the script still runs: freed as it started, not as it ended.
      let ended = false
      const freed = transport.run('sleep 5', [], { session: lock.session, releaseLock: true }).finally(() => (ended = true))
      let free = false
      for (let i = 0; i < 50 && !free; i++) free = !(await busy())
      assert.equal(free, true, 'freed by the releasing script')
      assert.equal(ended, false, 'free while the releasing script runs')
      assert.equal((await freed).exitCode, 0)
    } finally {
      await lock.release()
    }
  })

  test('a script aborted with the signal ends with the session (killed), and the session takes no more', async () => {
    const lock = await lockOn(transport, remoteDir('session'))
    const abort = new AbortController()
    const running = transport.run('echo started >&2; sleep 30', [], {
      session: lock.session,
      signal: abort.signal,
      onStderrLine: (line) => (line === 'started' ? abort.abort() : undefined),
    })
    // ssh, sent SIGTERM, exits 255: the transport's "lost the connection", as for a session of its own.
    await assert.rejects(running, /Lost the connection to gr-test/)
    await lock.release()
    await assert.rejects(transport.run('true', [], { session: lock.session }), /after its release/)
  })
})
