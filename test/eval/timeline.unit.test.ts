import assert from 'node:assert/strict'
import { test } from 'node:test'
import { RunTimeline } from '../../lib/eval/timeline.ts'

// The closing summary: each step's time from the previous step's end, and what it skipped.

test('each step takes the time since the one before; skipped steps say why; the total counts from the start', () => {
  const timeline = new RunTimeline()
  const t0 = performance.now()
  timeline.end('preflight', t0 + 400)
  timeline.end('sync', t0 + 450)
  timeline.skip('sync', 'unchanged tree')
  timeline.end('run', t0 + 10_450)
  const { timings, skipped } = timeline.json(t0 + 10_500)
  assert.deepEqual(timings, { preflight: 0.4, sync: 0.05, run: 10, total: 10.5 })
  assert.deepEqual(skipped, { sync: 'unchanged tree' })
  assert.equal(timeline.line(t0 + 10_500), '10.5 s in all: preflight 0.4 s, sync 0.1 s (skipped: unchanged tree), run 10.0 s')
})
