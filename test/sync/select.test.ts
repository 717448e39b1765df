import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { LocalPrerequisiteError } from '../../lib/core/errors.ts'
import { selectFiles } from '../../lib/sync/select.ts'
import { makeProject } from '../support/harness.ts'

const paths = async (dir: string) => (await selectFiles(dir)).files.map((f) => f.path)

describe('file selection', () => {
  test("inside git, git's rules decide: negations, anchored and nested patterns", async () => {
    const project = await makeProject(
      {
        '.gitignore': ['logs/*', '!logs/keep.txt', '/data/', '*.log', 'scratch/', ''].join('\n'),
        'app/main.py': 'print()',
        'logs/keep.txt': 'keep',
        'logs/drop.txt': 'drop',
        'data/big.parquet': 'root data: ignored by /data/',
        'src/data/schema.json': 'nested data/: not matched by /data/',
        'src/scratch/tmp.txt': 'ignored by scratch/ at any depth',
        'run.log': 'ignored',
      },
      { git: true },
    )
    await writeFile(path.join(project, 'untracked_new.py'), 'x = 1') // untracked, not ignored: ships
    const selected = await paths(project)
    assert.deepEqual(selected, ['.gitignore', 'app/main.py', 'logs/keep.txt', 'src/data/schema.json', 'untracked_new.py'])
    const gitSays = (await $({ cwd: project, quiet: true })`git ls-files -co --exclude-standard`).stdout.split('\n').filter(Boolean).sort()
    assert.deepEqual(selected, gitSays)
  })

  test('.env files never ship, even when someone committed them', async () => {
    const project = await makeProject(
      { 'app.py': 'a', '.env': 'HF_TOKEN=x', '.env.eval': 'HF_TOKEN=y', '.env.local': 'z', 'cfg/.env': 'w' },
      { git: true },
    )
    const tracked = (await $({ cwd: project, quiet: true })`git ls-files`).stdout
    assert.match(tracked, /^\.env\.eval$/m)
    const selection = await selectFiles(project)
    assert.deepEqual(
      selection.files.map((f) => f.path),
      ['app.py'],
    )
    assert.deepEqual(selection.excluded.sort(), ['.env', '.env.eval', '.env.local', 'cfg/.env'])
  })

  test('a tracked file deleted from the work tree is not selected', async () => {
    const project = await makeProject({ 'a.py': 'a', 'b.py': 'b' }, { git: true })
    await rm(path.join(project, 'b.py'))
    assert.deepEqual(await paths(project), ['a.py'])
  })

  test('outside git, the exclude list alone', async () => {
    const project = await makeProject({
      'a.py': 'a',
      '.venv/bin/python': 'p',
      'reports/r.json': '{}',
      'pkg/__pycache__/x.pyc': '',
      'logs/x.log': 'l',
    })
    const selection = await selectFiles(project)
    assert.equal(selection.source, 'walk')
    assert.deepEqual(
      selection.files.map((f) => f.path),
      ['a.py', 'logs/x.log'],
    )
  })

  test('a project in a subdirectory of a repository selects only its own files, relative to itself', async () => {
    const repo = await makeProject(
      { 'other/x.py': 'x', 'evalrepo/app.py': 'a', 'evalrepo/.gitignore': 'out/\n', 'evalrepo/out/o': 'o' },
      { git: true },
    )
    assert.deepEqual(await paths(path.join(repo, 'evalrepo')), ['.gitignore', 'app.py'])
  })
})

describe('file selection without git', () => {
  test('inside a git work tree, a missing git is an error (exit 3), never a walk that ships ignored files', async () => {
    const project = await makeProject({ '.gitignore': 'secret.key\n', 'app.py': 'a', 'secret.key': 'k' }, { git: true })
    const saved = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      await assert.rejects(
        selectFiles(project),
        (e: unknown) => e instanceof LocalPrerequisiteError && /git is not installed/.test((e as Error).message),
      )
    } finally {
      process.env.PATH = saved
    }
  })
})
