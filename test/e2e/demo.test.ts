import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { SCRIPTS, runMake } from '../support/harness.ts'

// The README's third quick-start command, as a user runs it.
test('make demo runs the example eval over SSH and ends with the metrics table', async () => {
  const reports = path.join(path.dirname(SCRIPTS), 'examples/guardrails-mini/reports/evaluations')
  const before = new Set(await readdir(reports).catch(() => []))
  const result = await runMake('demo', {})
  assert.equal(result.code, 0, result.stderr)
  assert.match(result.stderr, /^\[done\] task\s+scope\s+dataset\s+label\s+metric family\s+precision\s+recall\s+f1$/m)
  assert.match(result.stderr, /^\[done\] span_detection\s+label\s+PHONE\s+exact_canonical\s+1\.0\s+1\.0\s+1\.0$/m)
  const out = JSON.parse(result.stdout)
  const created = (await readdir(reports)).filter((d) => !before.has(d))
  assert.deepEqual(created, [path.basename(out.local_run_dir)])
  await rm(out.local_run_dir, { recursive: true })
})
