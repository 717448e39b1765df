import assert from 'node:assert/strict'
import { readdir, rm } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { SCRIPTS, startOnPty } from '../support/harness.ts'

// The README's third quick-start command, as a user runs it: on a terminal, in colour.
test('make demo runs the example eval over SSH and ends with the metrics table, in colour on a terminal', async () => {
  const reports = path.join(path.dirname(SCRIPTS), 'examples/guardrails-mini/reports/evaluations')
  const before = new Set(await readdir(reports).catch(() => []))
  const env = { ...process.env }
  delete env.NO_COLOR
  const demo = await startOnPty(['make', 'demo'], env)
  const { code, output } = await demo.result
  assert.equal(code, 0, output)
  // The runner's lines reach the terminal through the demo, their prefixes coloured ([done] green).
  const ESC = String.fromCharCode(27)
  const plain = output.replaceAll(new RegExp(`${ESC}\\[\\d+m`, 'g'), '').replaceAll('\r', '')
  assert.ok(output.includes(`${ESC}[32m[done]${ESC}[39m span_detection`), output)
  assert.match(plain, /^\[done\] task\s+scope\s+dataset\s+label\s+metric family\s+precision\s+recall\s+f1$/m)
  assert.match(plain, /^\[done\] span_detection\s+label\s+PHONE\s+per_label_char\s+1\.0\s+1\.0\s+1\.0$/m)
  const localRunDir = /"local_run_dir": "([^"]+)"/.exec(plain)?.[1]
  assert.ok(localRunDir, plain)
  const created = (await readdir(reports)).filter((d) => !before.has(d) && d !== 'latest')
  assert.deepEqual(created, [path.basename(localRunDir)])
  await rm(localRunDir, { recursive: true })
})
