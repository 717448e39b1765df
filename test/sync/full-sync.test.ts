import assert from 'node:assert/strict'
import { chmod, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { makePod, makeProject, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// --full-sync repairs a target someone edited by hand: it compares what is really there (content,
// not the record) and restores it. Without it, an unchanged local tree sends nothing.

const SYNC = 'remote_eval/sync_code.ts'

/** Hand edits on the target: same size and mtime (only content tells), a deletion, a lost executable bit. */
async function editByHand(dir: string): Promise<void> {
  const edited = path.join(dir, 'app/cli.py')
  const before = await stat(edited)
  await writeFile(edited, 'print("HACK")\n')
  await utimes(edited, before.atime, before.mtime)
  await rm(path.join(dir, 'app/data.py'))
  await chmod(path.join(dir, 'run.sh'), 0o644)
}

async function assertRestored(dir: string, project: string): Promise<void> {
  for (const rel of ['app/cli.py', 'app/data.py', 'run.sh'])
    assert.equal(await readFile(path.join(dir, rel), 'utf8'), await readFile(path.join(project, rel), 'utf8'), rel)
  assert.equal((await stat(path.join(dir, 'run.sh'))).mode & 0o100, 0o100, 'run.sh is executable again')
}

describe('--full-sync', () => {
  // [name, padding files, files the push sends: rsync repairs a mode in place, tar sends the file]
  const cases: Array<[string, number, number, (project: string) => Promise<{ dir: string; args: string[] }>]> = [
    [
      'over ssh by rsync (--checksum)',
      150,
      2,
      async () => {
        const dir = remoteDir('full')
        return { dir, args: [...sshFlags(), '--remote-dir', dir] }
      },
    ],
    [
      'in a pod by tar (the target hashes its copies)',
      0,
      3,
      async () => {
        const pod = await makePod()
        return {
          dir: path.join(pod.workdir(), 'guardrails'),
          args: ['--context', pod.context, '--namespace', pod.namespace, '--pod', pod.pod],
        }
      },
    ],
  ]
  for (const [name, padding, sent, target] of cases) {
    test(`${name}: hand edits stay without it, and are restored with it; nothing else is sent`, async () => {
      const files: Record<string, string> = {
        'app/cli.py': 'print("eval")\n',
        'app/data.py': 'DATA = 1\n',
        'run.sh': '#!/bin/sh\necho run\n',
      }
      for (let i = 0; i < padding; i++) files[`pkg/m${i}.py`] = `m = ${i}\n`
      const project = await makeProject(files, { git: false })
      await chmod(path.join(project, 'run.sh'), 0o755)
      const { dir, args } = await target(project)
      const sync = (extra: string[] = []) => runScript(SYNC, [...args, '--project-dir', project, ...extra])
      assert.equal((await sync()).code, 0)
      await editByHand(dir)

      const plain = await sync()
      assert.equal(JSON.parse(plain.stdout).unchanged, true, plain.stderr)
      assert.equal(await readFile(path.join(dir, 'app/cli.py'), 'utf8'), 'print("HACK")\n', 'without --full-sync nothing changes')

      const full = await sync(['--full-sync'])
      assert.equal(full.code, 0, full.stderr)
      const report = JSON.parse(full.stdout)
      assert.equal(report.method, padding ? 'rsync-list' : 'tar')
      assert.equal(report.files_sent, sent, 'only the files edited by hand')
      await assertRestored(dir, project)
      assert.equal(JSON.parse((await sync()).stdout).unchanged, true, 'and then it is up to date')
    })
  }
})
