import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { $ } from 'zx'
import { layOutExampleAssets } from '../../examples/demo-assets.ts'
import { datasetsCacheEnv } from '../../lib/assets/prepare.ts'

// The example eval repo keeps the real one's contract for a suite split in shards: the eval on a
// --dataset subset, the merger (app.tools.merge_eval_reports --out OUT a.json b.json) and the
// compare module (app.eval.compare --base --new --out DIR). Shards merged give the counts of the
// whole suite run at once; run here with the system python3, as the demo does.

const EXAMPLE = fileURLToPath(new URL('../../examples/guardrails-mini', import.meta.url))
const HUB_REPOS = fileURLToPath(new URL('../../examples/hub-repos', import.meta.url))

describe('the example eval in shards, merged and compared', () => {
  let scratch: string
  let env: NodeJS.ProcessEnv
  const python = (args: string[], extraEnv: Record<string, string> = {}) =>
    $({ cwd: EXAMPLE, env: { ...env, ...extraEnv }, quiet: true, nothrow: true })`python3 -m ${args}`
  /** Runs the eval on the datasets given (all of the suite without), returns its report.json. */
  const evaluate = async (name: string, datasets: string[], extraEnv: Record<string, string> = {}) => {
    const out = path.join(scratch, name)
    const args = ['app.eval.cli', '--suite', 'guardrails_ru', '--split', 'fast', '--offline', '--output-dir', out]
    const run = await python([...args, ...datasets.flatMap((d) => ['--dataset', d])], extraEnv)
    assert.equal(run.exitCode, 0, run.stderr)
    const reportJson = JSON.parse(run.stdout).report_json as string
    return { path: reportJson, report: JSON.parse(await readFile(reportJson, 'utf8')) }
  }

  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'gre-shards-'))
    const [models, datasets] = [path.join(scratch, 'models'), path.join(scratch, 'datasets')]
    await layOutExampleAssets(HUB_REPOS, models, datasets, 'guardrails_ru', ['fast'])
    env = { ...process.env, ...datasetsCacheEnv(datasets), GR_MODEL_DIR: models, PYTHONDONTWRITEBYTECODE: '1' }
  })
  after(() => rm(scratch, { recursive: true, force: true }))

  test('two shards merged give the counts of one whole run, label by label; compare writes diff.json and diff.md', async () => {
    const whole = await evaluate('whole', [])
    const chat = await evaluate('chat', ['ru_pii_chat'], { GR_MINI_DATASET_SECONDS: 'ru_pii_chat=1' })
    const forms = await evaluate('forms', ['ru_pii_forms'])
    // The time a dataset takes is in its report (what a plan of shards reads).
    const [chatEntry] = chat.report.tasks.span_detection.metrics.datasets
    assert.deepEqual([chatEntry.dataset_id, chatEntry.sample_count], ['ru_pii_chat', 12])
    assert.ok(chatEntry.elapsed_seconds >= 1, JSON.stringify(chatEntry))

    const out = path.join(scratch, 'merged', 'report.json')
    const merge = await python(['app.tools.merge_eval_reports', '--out', out, chat.path, forms.path])
    assert.equal(merge.exitCode, 0, merge.stderr)
    assert.equal(merge.stdout.trim(), out)
    const merged = JSON.parse(await readFile(out, 'utf8'))
    const span = merged.tasks.span_detection
    const wholeSpan = whole.report.tasks.span_detection
    assert.deepEqual(span.metrics.combined, wholeSpan.metrics.combined, 'count for count, and the scores made from them')
    assert.equal(span.sample_count, wholeSpan.sample_count)
    assert.deepEqual(
      span.metrics.datasets.map((d: { dataset_id: string }) => d.dataset_id),
      ['ru_pii_chat', 'ru_pii_forms'],
    )
    assert.deepEqual(merged.run.datasets, ['ru_pii_chat', 'ru_pii_forms'])
    assert.deepEqual(merged.run.merged_from_reports, [chat.report.run.run_id, forms.report.run.run_id])
    assert.match(merged.run.run_id, /^merged_eval_guardrails_ru_fast_\d{8}T\d{6}Z$/)

    const diffDir = path.join(scratch, 'diff')
    const compare = await python(['app.eval.compare', '--base', whole.path, '--new', out, '--out', diffDir])
    assert.equal(compare.exitCode, 0, compare.stderr)
    assert.deepEqual(JSON.parse(compare.stdout), {
      diff_dir: diffDir,
      diff_json: path.join(diffDir, 'diff.json'),
      diff_md: path.join(diffDir, 'diff.md'),
    })
    const diff = JSON.parse(await readFile(path.join(diffDir, 'diff.json'), 'utf8'))
    assert.equal(diff.headline.delta, 0)
    assert.ok(diff.span_detection.per_label_char_recall.every((item: { delta: number }) => item.delta === 0))
    assert.match(await readFile(path.join(diffDir, 'diff.md'), 'utf8'), /^- Headline \(risk-weighted char recall\) delta: `\+0\.0000`/m)
  })

  test('the merger refuses one report, and reports of other splits', async () => {
    const fast = await evaluate('one', ['ru_pii_chat'])
    const alone = await python(['app.tools.merge_eval_reports', '--out', path.join(scratch, 'x.json'), fast.path])
    assert.notEqual(alone.exitCode, 0)
    assert.match(alone.stderr, /need at least two reports to merge/)
    const other = JSON.parse(await readFile(fast.path, 'utf8'))
    other.run.split = 'full'
    const otherPath = path.join(scratch, 'other-split.json')
    await $`echo ${JSON.stringify(other)} > ${otherPath}`.quiet()
    const mixed = await python(['app.tools.merge_eval_reports', '--out', path.join(scratch, 'y.json'), fast.path, otherPath])
    assert.notEqual(mixed.exitCode, 0)
    assert.match(mixed.stderr, /split mismatch/)
  })
})
