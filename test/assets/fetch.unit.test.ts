import assert from 'node:assert/strict'
import { test } from 'node:test'
import { progressText } from '../../lib/assets/fetch.ts'

// What a download's progress line says.

test('progress: bytes of the total, rate and time left; without a total, bytes and rate', () => {
  assert.equal(progressText({ bytes: 1024 * 1024, total: 4 * 1024 * 1024 }, 2), '1.0 MiB of 4.0 MiB (25 %) at 512 KiB/s, about 6 s left')
  assert.equal(progressText({ bytes: 2048, total: null }, 1), '2.0 KiB at 2.0 KiB/s')
})
