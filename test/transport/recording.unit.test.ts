import assert from 'node:assert/strict'
import { test } from 'node:test'
import { calledFunction, pushRoundTrip, runRoundTrip, tripSummary } from '../../lib/transport/recording.ts'
import { callFunction, frameScript } from '../../lib/transport/script.ts'

// A round trip as the transport sends it, and the one line a dry run prints for it.

test('a run: the framed text bash -s reads, the function it calls, its stdin described', () => {
  const script = callFunction('hello() { echo "$1"; }', 'hello')
  const trip = runRoundTrip(script, ["it's"], { env: { A: '1' }, stdin: 'four' })
  assert.deepEqual(trip, {
    kind: 'run',
    fn: 'hello',
    command: 'hello',
    args: ["it's"],
    script: frameScript(script, ["it's"], { A: '1' }),
    stdin: '4 bytes',
    in_lock_session: false,
  })
  assert.equal(tripSummary(trip), `hello 'it'\\''s' (stdin: 4 bytes)`)
  const held = runRoundTrip(script, ['x'], { session: { call: () => Promise.reject(new Error('not sent')) } })
  assert.equal(tripSummary(held), "(in the lock's session) hello x")
  assert.equal(calledFunction('rm -f -- "$1/x"'), null)
  const inline = runRoundTrip('rm -f -- "$1/manifest.json"', ['/m'])
  assert.equal(tripSummary(inline), `bash -c 'rm -f -- "$1/manifest.json"' /m`)
})

test('a push: its plan, names shown as bytes escaped; long lines are cut', () => {
  const push = pushRoundTrip({
    localRoot: '/p',
    remoteDir: '/srv/g',
    send: ['a.py', 'b\xff.py'],
    remove: [{ path: 'old.py', stateLine: '[]' }],
    claimMarker: null,
    state: '',
    stamp: 's',
    method: 'tar',
    compress: true,
    unselected: null,
  })
  assert.deepEqual(push.kind === 'push' && push.send, ['a.py', 'b\\xff.py'])
  assert.equal(tripSummary(push), 'push by tar: 2 file(s) to send, 1 to delete in /srv/g')
  const long = tripSummary(runRoundTrip(callFunction('f() { :; }', 'f'), ['x'.repeat(500)]))
  assert.equal(long.length, 240)
  assert.ok(long.endsWith('...'))
})
