import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readdir, readlink, rm, symlink } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { writeHistoryPage } from '../../lib/eval/history.ts'
import { checkHistoryPage } from '../support/chromium.ts'
import { SCRIPTS, startOnPty, lastLines } from '../support/harness.ts'

// The README's third quick-start command, as a user runs it: on a terminal, in colour. Two runs:
// the second ends with the closing summary, what changed since the first, and the history page.
test('make demo runs the example eval twice over SSH: metrics, deltas in colour, closing summary, history page', async (t) => {
  const reports = path.join(path.dirname(SCRIPTS), 'examples/guardrails-mini/reports/evaluations')
  const before = new Set(await readdir(reports).catch(() => []))
  const latestBefore = await readlink(path.join(reports, 'latest')).catch(() => null)
  const env = { ...process.env }
  delete env.NO_COLOR
  const demo = await startOnPty(['make', 'demo'], env)
  const { code, output } = await demo.result
  const created = (await readdir(reports)).filter((d) => !before.has(d) && !['latest', 'index.html'].includes(d))
  // The demo's reports go again; the page and the link are put back as they were.
  t.after(async () => {
    for (const dir of created) await rm(path.join(reports, dir), { recursive: true })
    await rm(path.join(reports, 'latest'), { force: true })
    if (latestBefore) await symlink(latestBefore, path.join(reports, 'latest'))
    if (before.has('index.html')) await writeHistoryPage(reports)
    else await rm(path.join(reports, 'index.html'), { force: true })
  })
  assert.equal(code, 0, lastLines(output))
  // The runner's lines reach the terminal through the demo, their prefixes coloured ([done] green).
  const ESC = String.fromCharCode(27)
  const plain = output.replaceAll(new RegExp(`${ESC}\\[\\d+m`, 'g'), '').replaceAll('\r', '')
  assert.ok(output.includes(`${ESC}[32m[done]${ESC}[39m span_detection`), lastLines(output))
  assert.match(plain, /^\[done\] task\s+scope\s+dataset\s+label\s+metric family\s+precision\s+recall\s+f1$/m)
  assert.match(plain, /^\[done\] span_detection\s+label\s+PHONE\s+per_label_char\s+1\.0\s+1\.0\s+1\.0$/m)
  const runDirs = [...plain.matchAll(/"local_run_dir": "([^"]+)"/g)].map((m) => m[1]!)
  assert.equal(runDirs.length, 2, plain)
  assert.deepEqual(created.sort(), runDirs.map((d) => path.basename(d)).sort())
  // The second run: what changed since the first (a drop in red), then the page, then the summary.
  const second = plain.slice(plain.indexOf('[demo] a second run'))
  assert.match(second, new RegExp(`^\\[done\\] against ${path.basename(runDirs[0]!)} \\(`, 'm'))
  assert.match(second, /^\[done\] span_detection label EMAIL per_label_char\s+1\.0000\s+=\s+0\.\d{4}\s+-0\.\d{4}/m)
  assert.ok(/\[31m-0\.\d{4}/.test(output), 'a drop is red on the terminal')
  const page = /^\[done\] history of the (\d+) local run\(s\): (file:\S+)$/m.exec(second)
  assert.ok(page, second)
  assert.match(second, /^\[done\] [\d.]+ s in all: preflight .*, run .*, fetch [\d.]+ s\n/m)
  // The page in headless Chromium: no errors, every local run, one f1 point per run of the suite.
  const file = fileURLToPath(page[2]!)
  assert.ok(existsSync(file))
  const shown = await checkHistoryPage(file)
  t.diagnostic(`screenshot of the demo's history page: ${shown.screenshot}`)
  assert.equal(shown.runs, Number(page[1]))
  assert.ok(shown.runs >= 2)
  assert.equal(shown.points.get('guardrails_ru/fast/span_detection'), shown.runs)
})
