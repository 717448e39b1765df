import assert from 'node:assert/strict'
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { writeHistoryPage } from '../../lib/eval/history.ts'
import { checkHistoryPage, pageProblems } from '../support/chromium.ts'
import { writeFixtureRun, type FixtureRow } from '../support/history-fixtures.ts'

// The history page as a browser shows it (Debian's headless Chromium): it loads with no error and
// nothing to fetch, lists every run, has one f1 point per run in each chart, and shows hostile
// names as text. And the check itself: a page with a missing image or a script error fails it.

const span = (f1: string, p = f1, r = f1): FixtureRow => ['span_detection', 'combined', '', 'exact_canonical', p, r, f1]
const policy = (f1: string): FixtureRow => ['policy_action', 'policy', 'allow', 'binary', f1, f1, f1]
const HOSTILE = '<script>alert("x")</script> & <b>bold</b>'
const HOSTILE_FOLDER = 'eval_<b>"&#\xff'

/** Five runs in two suites and splits: a regression, a failed run, hostile names; latest and a foreign folder beside them. */
async function reportsDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-history-page-'))
  await writeFixtureRun(dir, 'eval_guardrails_ru_fast_20261201T100000Z_a1', { rows: [span('0.91'), policy('0.95')] })
  await writeFixtureRun(dir, 'eval_guardrails_ru_fast_20261202T100000Z_b2', {
    record: { started_at: '2026-12-02T10:00:00Z', code: { commit: 'feedfacecafebeef00000000000000000000000000', dirty: true } },
    rows: [span('0.62', '0.9', '0.47'), policy('0.93')],
  })
  await writeFixtureRun(dir, 'eval_guardrails_en_full_20261202T120000Z_c3', {
    record: { suite: 'guardrails_en', split: 'full', started_at: '2026-12-02T12:00:00Z' },
    rows: [span('0.88')],
  })
  await writeFixtureRun(dir, 'eval_guardrails_en_full_20261203T120000Z_d4', {
    record: { suite: 'guardrails_en', split: 'full', started_at: '2026-12-03T12:00:00Z', state: 'failed', exit_code: 1 },
    rows: [span('0.2')],
    report: false,
  })
  await writeFixtureRun(dir, HOSTILE_FOLDER, {
    record: { started_at: '2026-12-04T10:00:00Z', target: HOSTILE, state: HOSTILE },
    rows: [span('0.9'), [HOSTILE, 'combined', HOSTILE, 'exact_canonical', '0.5', '0.5', '0.5']],
  })
  await symlink(HOSTILE_FOLDER, path.join(dir, 'latest'))
  await mkdtemp(path.join(dir, 'eval_guardrails_ru_fast_20261205T100000Z_e5.partial-'))
  return dir
}

test('the history page loads in Chromium with no error, lists every run and has an f1 point per run', async (t) => {
  const dir = await reportsDir()
  const written = await writeHistoryPage(dir)
  assert.equal(written.runs, 5)
  const page = await checkHistoryPage(written.path, path.join(dir, 'history.png'))
  // Kept, with the page beside it, for a person to look at.
  t.diagnostic(`screenshot: ${page.screenshot}`)
  assert.equal(page.runs, 5)
  assert.deepEqual(Object.fromEntries(page.points), {
    'guardrails_ru/fast/span_detection': 3,
    'guardrails_ru/fast/policy_action': 2,
    [`guardrails_ru/fast/${HOSTILE}`]: 1,
    'guardrails_en/full/span_detection': 2,
  })
  // Shown as text: escaped in the DOM the browser built, never an element.
  assert.doesNotMatch(page.dom, /<script|<b>bold/i)
  assert.match(page.dom, /&lt;script&gt;alert\("x"\)&lt;\/script&gt; &amp; &lt;b&gt;bold&lt;\/b&gt;/)
  assert.match(page.dom, /eval_<wbr>&lt;b&gt;"&amp;#\xff/)
})

test('the check catches what a broken page does: a missing image, a script error', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-broken-page-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const page = async (name: string, body: string) => {
    const file = path.join(dir, name)
    await writeFile(file, `<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>${body}</body></html>`)
    return file
  }
  const [clean, image, script] = await Promise.all([
    page('clean.html', '<p>fine</p>'),
    page('image.html', '<img src="missing.png">'),
    page('script.html', '<script>notDefined()</script>'),
  ])
  const [cleanProblems, imageProblems, scriptProblems] = await Promise.all([pageProblems(clean), pageProblems(image), pageProblems(script)])
  assert.deepEqual(cleanProblems, [])
  assert.ok(
    imageProblems.some((p) => /missing\.png/.test(p) && /ERR_FILE_NOT_FOUND/.test(p)),
    imageProblems.join('\n'),
  )
  assert.ok(
    scriptProblems.some((p) => /uncaught exception: ReferenceError: notDefined is not defined/.test(p)),
    scriptProblems.join('\n'),
  )
  await assert.rejects(checkHistoryPage(image, path.join(dir, 'image.png')), /loaded with problems:[\s\S]*missing\.png/)
})
