import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { TransportError } from '../../lib/core/errors.ts'
import { LocalTransport } from '../../lib/transport/local.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { makePod, makeProject, openTestPod } from '../support/harness.ts'

// A tar push whose remote side gives up before reading the stream must end in an error, promptly:
// neither the local tar nor the runner may be left waiting on a pipe nobody reads.

async function pushThatFailsEarly(transport: Transport, remoteDir: string) {
  const project = await makeProject({ 'big.bin': randomBytes(3 * 1024 * 1024), 'a.py': 'x' })
  const started = Date.now()
  const outcome = await Promise.race([
    transport
      .push({
        localRoot: project,
        remoteDir,
        send: ['big.bin', 'a.py'],
        remove: [],
        claimMarker: null,
        state: '{}\n',
        stamp: 's',
        method: 'tar',
        compress: false,
        unselected: null,
      })
      .then(
        () => 'succeeded',
        (error: unknown) => error,
      ),
    new Promise((resolve) => setTimeout(() => resolve('hung'), 15_000)),
  ])
  return { outcome, seconds: (Date.now() - started) / 1000 }
}

describe('a tar push whose target fails before reading the stream', () => {
  test('local: ends with an error, not a hang', async () => {
    const { outcome, seconds } = await pushThatFailsEarly(new LocalTransport(), '/proc/gre-cannot-exist/dir')
    assert.ok(outcome instanceof TransportError, String(outcome))
    assert.match((outcome as Error).message, /Applying the push in \/proc\/gre-cannot-exist\/dir .* failed/)
    assert.ok(seconds < 10, `${seconds} s`)
  })

  test('kubectl: ends with an error, not a hang', async () => {
    const { outcome } = await pushThatFailsEarly(await openTestPod(await makePod()), '/proc/gre-cannot-exist/dir')
    assert.ok(outcome instanceof TransportError, String(outcome))
  })
})
