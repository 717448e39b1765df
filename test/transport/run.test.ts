import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { TransportError } from '../../lib/core/errors.ts'
import { LocalTransport } from '../../lib/transport/local.ts'
import type { SshTransport } from '../../lib/transport/ssh.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { makePod, openTestPod, openTestSsh } from '../support/harness.ts'

// run(): exit codes, live stderr, data after the script, big arguments, timeouts; the same
// behaviour over every transport.

function behavesLikeATarget(name: string, open: () => Promise<Transport>) {
  describe(name, () => {
    let target: Transport
    before(async () => (target = await open()))
    after(() => target.close())

    test("returns the script's exit code and stdout", async () => {
      const result = await target.run('echo out; echo err >&2; exit 7')
      assert.equal(result.exitCode, 7)
      assert.equal(result.stdout, 'out\n')
      assert.equal(result.stderrTail.at(-1), 'err')
    })

    test('streams stderr line by line while the script runs', async () => {
      const seen: Array<[string, number]> = []
      const started = Date.now()
      await target.run('echo first >&2; sleep 1; echo second >&2', [], { onStderrLine: (line) => seen.push([line, Date.now() - started]) })
      const lines = seen.filter(([l]) => l === 'first' || l === 'second')
      assert.deepEqual(
        lines.map(([l]) => l),
        ['first', 'second'],
      )
      assert.ok(lines[1]![1] - lines[0]![1] >= 800, `first arrived ${lines[0]![1]} ms, second ${lines[1]![1]} ms after start`)
    })

    test('data after the script reaches the command that reads stdin', async () => {
      const payload = randomBytes(300_000).toString('base64')
      const result = await target.run('wc -c; head -c 10', [], { stdin: payload })
      assert.equal(result.stdout, `${payload.length}\n`)
    })

    test('a script with no data sees an empty stdin', async () => {
      assert.equal((await target.run('cat | wc -c')).stdout.trim(), '0')
    })

    test('a megabyte-sized argument arrives whole', async () => {
      const big = 'x'.repeat(1024 * 1024)
      assert.equal((await target.run('printf %s "$1" | wc -c', [big])).stdout.trim(), String(big.length))
    })

    test('gives up after the timeout with a transport error', async () => {
      await assert.rejects(
        target.run('sleep 10', [], { timeoutMs: 500 }),
        (e: unknown) => e instanceof TransportError && /no answer within 1 s/.test(e.message),
      )
    })
  })
}

behavesLikeATarget('local', async () => new LocalTransport())
behavesLikeATarget('ssh', () => openTestSsh())
behavesLikeATarget('kubectl', async () => openTestPod(await makePod()))

describe('ssh connection loss', () => {
  let ssh: SshTransport
  before(async () => (ssh = await openTestSsh()))

  test('a session whose master goes away ends in a transport error naming the host', async () => {
    const outcome = ssh.run('sleep 5').then(
      () => null,
      (error: unknown) => error,
    )
    await new Promise((r) => setTimeout(r, 300))
    await ssh.close()
    const error = await outcome
    assert.ok(error instanceof TransportError, String(error))
    assert.match(error.message, /^Lost the connection to gr-test: /)
    assert.doesNotMatch(error.message, /zshenv/, "the remote's own stderr is not taken for ssh's message")
  })
})
