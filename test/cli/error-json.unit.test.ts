import assert from 'node:assert/strict'
import { test } from 'node:test'
import { errorJson } from '../../lib/cli/main.ts'
import { TransportError } from '../../lib/core/errors.ts'

// A failure as the stdout JSON carries it (`error`): message, fix, exit code and what it means.

test('a failure the user can act on: its message, its fix apart, its exit code and meaning', () => {
  const error = new TransportError('Lost the connection to gpu-a', { hint: 'run 20261203-1 may have started there: see --list' })
  assert.deepEqual(errorJson(error), {
    message: 'Lost the connection to gpu-a',
    hint: 'run 20261203-1 may have started there: see --list',
    exit_code: 5,
    meaning: 'the connection or transport failed',
  })
})

test('a bug: said to be one, with no fix to offer', () => {
  const json = errorJson(new TypeError('x is undefined'))
  assert.match(json.message, /^Unexpected failure \(a bug in .*\): x is undefined$/)
  assert.equal(json.hint, null)
  assert.equal(typeof json.exit_code, 'number')
})
