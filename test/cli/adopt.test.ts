import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { readFile, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { spawnProcess } from '../../lib/core/process.ts'
import { SCRIPTS, harness, listTree, makeProject, remoteDir, runScript } from '../support/harness.ts'

// scripts/adopt.ts on a scratch repo shaped like the real eval repo (its own Makefile with sync,
// download-models and check-models, its bash runners under scripts/remote_eval/), then our make
// targets used from that repo's Makefile.

const REAL_MAKEFILE = `.PHONY: sync download-models download-datasets check-models

MODELS_DIR ?= ./.models
DATASETS_DIR ?= ./.datasets
POLICY_PATH ?= ./configs/policy.yaml

sync:
\t@echo "their sync: uv sync --extra dev --extra eval"

download-models:
\t@echo "their download-models into $(MODELS_DIR)"

check-models:
\t@test -f "$(MODELS_DIR)/manifest.json" || (echo "Model bundle not found at $(MODELS_DIR)" && exit 1)
`

async function realShapedRepo(): Promise<string> {
  return makeProject(
    {
      'pyproject.toml':
        '[project]\nname = "guardrails-service"\nversion = "0.1.0"\n\n[project.optional-dependencies]\neval = []\ncuda = []\n',
      Makefile: REAL_MAKEFILE,
      '.gitignore': '.venv/\n.env*\n',
      'scripts/remote_eval/ssh_eval.sh': '#!/usr/bin/env bash\necho the bash runner\n',
      'scripts/remote_eval/k8s_eval.sh': '#!/usr/bin/env bash\necho the bash runner\n',
      'configs/policy.yaml': 'recognizer_definitions: {}\n',
      'configs/eval/suites.yaml': 'suites:\n  guardrails_ru:\n    datasets: [a]\ndatasets:\n  a:\n    hf_id: org/a\n',
      'app/__init__.py': '',
    },
    { git: true },
  )
}

const make = async (cwd: string, args: string[]) => {
  const lines: string[] = []
  const result = await spawnProcess('make', ['-s', ...args], { cwd, onStderrLine: (line) => lines.push(line) })
  return { code: result.exitCode, stdout: result.stdout, stderr: lines.join('\n') }
}

describe('adopting the tool into an eval repo', () => {
  test('copies the tool, includes remote-eval.mk, ignores node_modules/, touches nothing of the repo; a second run does nothing', async () => {
    const repo = await realShapedRepo()
    const before = await readFile(path.join(repo, 'scripts/remote_eval/ssh_eval.sh'), 'utf8')
    const result = await runScript('adopt.ts', ['--into', repo])
    assert.equal(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    for (const file of [
      'scripts/remote_eval/ssh_eval.ts',
      'scripts/remote_eval/k8s_eval.ts',
      'scripts/download_models.ts',
      'lib/eval/pipeline.ts',
      'lib/target/envfile.sh',
      'bin/launch.mjs',
      'bin/build.mjs',
      'bin/bundles.mjs',
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'remote-eval.mk',
    ]) {
      assert.ok(out.copied.includes(file), file)
      assert.ok(existsSync(path.join(repo, file)), file)
    }
    assert.ok(
      !out.copied.some((f: string) => f.startsWith('test/') || f.startsWith('examples/') || f === 'scripts/adopt.ts'),
      'no tests, examples or the adopter itself',
    )
    assert.equal(await readFile(path.join(repo, 'scripts/remote_eval/ssh_eval.sh'), 'utf8'), before, 'the bash runners stay as they were')
    const makefile = await readFile(path.join(repo, 'Makefile'), 'utf8')
    assert.ok(makefile.startsWith(REAL_MAKEFILE), 'the repo Makefile is kept, only added to')
    assert.match(makefile, /^include remote-eval\.mk$/m)
    assert.match(await readFile(path.join(repo, '.gitignore'), 'utf8'), /^node_modules\/\n\.remote-eval\/$/m)

    const again = await runScript('adopt.ts', ['--into', repo])
    assert.equal(again.code, 0, again.stderr)
    assert.deepEqual(JSON.parse(again.stdout).copied, [])
    assert.match(again.stderr, /already has this version of the tool: nothing to do/)
    assert.equal((await readFile(path.join(repo, 'Makefile'), 'utf8')).match(/include remote-eval\.mk/g)?.length, 1)
  })

  test('a file of the repo that differs is listed and nothing is written, unless --overwrite', async () => {
    const repo = await realShapedRepo()
    await writeFile(path.join(repo, 'tsconfig.json'), '{"theirs": true}\n')
    const before = await listTree(repo)
    const refused = await runScript('adopt.ts', ['--into', repo])
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(refused.stderr, /1 file\(s\) of .* differ from this tool's and would be overwritten:\n.*tsconfig\.json/)
    assert.match(refused.stderr, /pass --overwrite/)
    assert.deepEqual(await listTree(repo), before, 'nothing written')
    const forced = await runScript('adopt.ts', ['--into', repo, '--overwrite'])
    assert.equal(forced.code, 0, forced.stderr)
    assert.deepEqual(JSON.parse(forced.stdout).overwritten, ['tsconfig.json'])
  })

  test('not an eval repo: exit 2, nothing written', async () => {
    const dir = await makeProject({ 'README.md': 'x\n' })
    const result = await runScript('adopt.ts', ['--into', dir])
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /has no pyproject\.toml/)
    assert.deepEqual(await listTree(dir), ['README.md'])
  })

  test("from the repo's Makefile: its own targets keep their meaning, ours push that repo and check its assets", async () => {
    const repo = await realShapedRepo()
    assert.equal((await runScript('adopt.ts', ['--into', repo])).code, 0)
    // npm ci in the repo would install the same packages as here, then run "prepare": the build.
    await symlink(path.join(path.dirname(SCRIPTS), 'node_modules'), path.join(repo, 'node_modules'))
    const built = await spawnProcess('npm', ['run', '--silent', 'prepare'], { cwd: repo })
    assert.equal(built.exitCode, 0, built.stderrTail.join('\n'))
    for (const bundle of ['remote_eval.ssh_eval.mjs', 'remote_eval.sync_code.mjs', 'download_models.mjs'])
      assert.ok(existsSync(path.join(repo, '.remote-eval/build', bundle)), bundle)
    assert.ok(!existsSync(path.join(repo, '.remote-eval/build/adopt.mjs')), 'the adopter is not shipped, so not built')
    assert.equal(
      (await spawnProcess('git', ['status', '--porcelain', '--', '.remote-eval'], { cwd: repo })).stdout,
      '',
      'bundles are ignored',
    )
    const theirs = await make(repo, ['sync'])
    assert.equal(theirs.code, 0, theirs.stderr)
    assert.equal(theirs.stdout.trim(), 'their sync: uv sync --extra dev --extra eval')
    assert.doesNotMatch(theirs.stderr, /overriding recipe|ignoring old recipe/)
    assert.equal((await make(repo, ['download-models'])).stdout.trim(), 'their download-models into ./.models')

    const { sshd } = harness()
    const dir = remoteDir('adopted')
    const pushed = await make(repo, [
      'remote-sync',
      `HOST=${sshd.alias}`,
      `REMOTE_DIR=${dir}`,
      `SSH_CONFIG=${sshd.configFile}`,
      'SSH_OPTIONS=ConnectTimeout=10 ServerAliveInterval=5',
    ])
    assert.equal(pushed.code, 0, pushed.stderr)
    assert.ok(
      existsSync(path.join(dir, 'pyproject.toml')) && existsSync(path.join(dir, 'scripts/remote_eval/ssh_eval.sh')),
      'the eval repo was pushed',
    )
    assert.match(await readFile(path.join(dir, 'pyproject.toml'), 'utf8'), /guardrails-service/)
    assert.ok(!existsSync(path.join(dir, 'node_modules')), 'node_modules never travels')
    assert.ok(!existsSync(path.join(dir, '.remote-eval/build')), 'nor do the bundles')

    const checked = await make(repo, ['assets-check-models'])
    assert.equal(checked.code, 2, checked.stderr)
    assert.match(checked.stderr, /models in .*\/\.models: the directory does not exist/)
    assert.match(checked.stderr, /\] Error 10$/m)
  })
})
