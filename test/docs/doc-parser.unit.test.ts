import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { groupBlocks, groupScript, parseDocBlocks } from '../support/doc-blocks.ts'

// The doc test's own parts: a marker mistake must fail the doc test rather than hide a block, and
// an expected exit code must be checked, not just tolerated.

const DOC = [
  '# Title',
  '## Run',
  '```sh',
  'X=1',
  '```',
  '',
  '<!-- doc-test: continue -->',
  '```bash',
  'echo "$X"',
  '```',
  '- a list item:',
  '',
  '  <!-- doc-test: expect-exit 3 -->',
  '  ```sh',
  '  exit 3',
  '  ```',
  '<!-- doc-test: skip: needs a real cluster -->',
  '```console',
  '$ kubectl get pods \\',
  '    -n ml',
  'NAME    READY',
  '```',
  '```text',
  'not a command',
  '```',
  '<!-- doc-test: skip: -->',
  '```sh',
  'true',
  '```',
  '<!-- doc-test: expect exit 2 -->',
  '',
  'Some text in between drops the marker above.',
  '```sh',
  'true',
  '```',
].join('\n')

const bash = (script: string) => spawnSync('bash', ['-euo', 'pipefail', '-c', script], { encoding: 'utf8' })

test('blocks, their lines, sections and markers', () => {
  const blocks = parseDocBlocks(DOC)
  assert.deepEqual(
    blocks.map((b) => [b.line, b.lang, b.section, b.script, b.skip, b.expectExit, b.continues]),
    [
      [3, 'sh', 'Run', 'X=1', undefined, 0, false],
      [8, 'bash', 'Run', 'echo "$X"', undefined, 0, true],
      [14, 'sh', 'Run', 'exit 3', undefined, 3, false],
      [18, 'console', 'Run', 'kubectl get pods \\\n    -n ml', 'needs a real cluster', 0, false],
      [27, 'sh', 'Run', 'true', '', 0, false],
      [33, 'sh', 'Run', 'true', undefined, 0, false],
    ],
  )
  assert.match(blocks[4]!.problems.join(), /a skip marker needs a reason/)
  assert.deepEqual(blocks[5]!.problems, [], 'a marker separated by text does not apply')
})

test('an unknown marker is a problem, not ignored', () => {
  const [block] = parseDocBlocks('<!-- doc-test: expect exit 2 -->\n```sh\ntrue\n```\n')
  assert.match(block!.problems.join(), /unknown doc-test marker "expect exit 2"/)
})

test('continue joins blocks into one bash, so variables carry over', () => {
  const groups = groupBlocks('DOC.md', parseDocBlocks(DOC))
  assert.deepEqual(
    groups.map((g) => g.name),
    ['DOC.md:3+8', 'DOC.md:14', 'DOC.md:18', 'DOC.md:27', 'DOC.md:33'],
  )
  const run = bash(groupScript(groups[0]!))
  assert.equal(run.status, 0)
  assert.equal(run.stdout, '1\n')
})

test('an expected exit code passes only when the block ends with it', () => {
  const [expected] = groupBlocks('DOC.md', parseDocBlocks('<!-- doc-test: expect-exit 3 -->\n```sh\nfalse || exit 3\necho after\n```\n'))
  assert.equal(bash(groupScript(expected!)).status, 0)
  const [other] = groupBlocks('DOC.md', parseDocBlocks('<!-- doc-test: expect-exit 3 -->\n```sh\ntrue\n```\n'))
  const run = bash(groupScript(other!))
  assert.equal(run.status, 1)
  assert.match(run.stderr, /the block at line 2 ended with exit 0, expected 3/)
})

test('a failing command fails the block (bash -e, pipefail)', () => {
  const [group] = groupBlocks('DOC.md', parseDocBlocks('```sh\nfalse | cat\necho never\n```\n'))
  const run = bash(groupScript(group!))
  assert.notEqual(run.status, 0)
  assert.equal(run.stdout, '')
})
