import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { EXCLUDES, isExcluded, rsyncExcludeArgs, tarExcludeArgs } from '../../lib/core/excludes.ts'
import { selectFiles } from '../../lib/sync/select.ts'
import { BASH_RUNNER_EXCLUDES } from '../support/bash-runner.ts'
import { listTree, makeProject } from '../support/harness.ts'

describe('the exclude list', () => {
  test('holds every path the bash runner excluded (.venv whatever it is), plus node_modules', () => {
    const rendered = rsyncExcludeArgs().map((a) => a.replace('--exclude=', '').replace(/^\//, ''))
    for (const rule of [...BASH_RUNNER_EXCLUDES, 'node_modules'])
      assert.ok(rendered.includes(rule) || rendered.includes(rule.replace(/\/$/, '')), rule)
  })

  const cases: Array<[string, boolean, boolean]> = [
    ['.env', false, true],
    ['.env.eval', false, true],
    ['.env.local', false, true],
    ['config/.env.prod', false, true],
    ['src/app.py', false, false],
    ['.venv/lib/site.py', false, true],
    ['pkg/__pycache__/m.cpython-311.pyc', false, true],
    ['pkg/m.pyc', false, true],
    ['reports/evaluations/x.json', false, true],
    ['app/eval/reports/__init__.py', false, false],
    ['baselines/b.json', false, true],
    ['.models/x.bin', false, true],
    ['.datasets', true, true],
    ['node_modules/zx/index.js', false, true],
    ['web/node_modules/a.js', false, true],
    ['.remote-eval/owner', false, true],
    ['.git', true, true],
    ['.gitignore', false, false],
    ['envs/dev.yaml', false, false],
    ['keys/id_ed25519', false, true],
  ]
  for (const [rel, isDir, expected] of cases) {
    test(`${rel} is ${expected ? '' : 'not '}excluded`, () => assert.equal(isExcluded(rel, isDir), expected))
  }

  /** rsync and tar, given the rendered rules, must keep exactly what the selection keeps. */
  async function assertRenderingsAgree(files: Record<string, string>) {
    const project = await makeProject(files)
    const selected = (await selectFiles(project)).files.map((f) => f.path).sort()

    const viaRsync = await mkdtemp(path.join(tmpdir(), 'gre-rsync-'))
    await $`rsync -a ${rsyncExcludeArgs()} ${project + '/'} ${viaRsync + '/'}`.quiet()
    assert.deepEqual(await listTree(viaRsync), selected, 'rsync over the whole tree')

    const viaTar = await mkdtemp(path.join(tmpdir(), 'gre-tar-'))
    await $`tar -c -f - ${tarExcludeArgs()} -C ${project} . | tar -x -f - -C ${viaTar}`.quiet()
    assert.deepEqual(await listTree(viaTar), selected, 'tar over the whole tree')

    // As the tar push runs it: every file listed (-T), the rules applied again; nothing may drop out.
    const listed = await mkdtemp(path.join(tmpdir(), 'gre-tar-list-'))
    const all = (await listTree(project)).map((p) => `${p}\0`).join('')
    await $({ input: all })`tar -c -f - ${tarExcludeArgs()} --no-recursion -C ${project} --null -T - | tar -x -f - -C ${listed}`.quiet()
    assert.deepEqual(await listTree(listed), selected, 'tar over a file list')
    return selected
  }

  test('rsync and tar, given the rendered rules, leave out exactly what the selection leaves out', async () => {
    const files: Record<string, string> = {}
    for (const rel of cases.filter(([, isDir]) => !isDir).map(([rel]) => rel)) files[rel] = rel
    Object.assign(files, { '.datasets/d.parquet': 'd', '.git/HEAD': 'h', 'src/deep/.env.test': 's', 'src/ok/reports.py': 'r' })
    const selected = await assertRenderingsAgree(files)
    assert.ok(selected.includes('src/app.py') && !selected.includes('.env'))
  })

  test('files named like excluded directories are files, and ship through every rendering', async () => {
    const selected = await assertRenderingsAgree({
      reports: 'a file',
      baselines: 'a file',
      'lib/wandb': 'f',
      'x/pkg.egg-info': 'f',
      'x/.git': 'f',
    })
    assert.deepEqual(selected, ['baselines', 'lib/wandb', 'reports', 'x/.git', 'x/pkg.egg-info'])
  })

  test('node_modules and .venv stay home also as files or symlinks (a shared install, a linked venv)', async () => {
    const selected = await assertRenderingsAgree({ 'lib/node_modules': 'f', node_modules: 'f', 'x/.venv': 'f', 'app.py': 'x' })
    assert.deepEqual(selected, ['app.py'])
  })

  test('every rule says why it is there', () => {
    for (const rule of EXCLUDES) assert.ok(rule.why.length > 3, rule.glob)
  })
})
