import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { remoteDir, runScript, sshFlags } from '../support/harness.ts'

// Deleting many files locally, then syncing: the list of removals travels as data after the script
// (not in it), whatever its size, and the push completes every time. The tar path is the one that
// used to break: a push with deletions only goes through it.

const SYNC = 'remote_eval/sync_code.ts'

/** A plain directory (no git: the selection is a walk) with `count` files under long names. */
async function manyFiles(count: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gre-many-'))
  await writeFile(path.join(dir, 'keep.py'), 'print("kept")\n')
  const perDir = 1000
  for (let d = 0; d * perDir < count; d++) {
    const sub = path.join(dir, `generated_module_directory_number_${String(d).padStart(4, '0')}`)
    await mkdir(sub, { recursive: true })
    const writes: Promise<void>[] = []
    for (let i = d * perDir; i < Math.min(count, (d + 1) * perDir); i++) writes.push(writeFile(path.join(sub, `a_fairly_long_generated_file_name_${i}.py`), `x = ${i}\n`))
    await Promise.all(writes)
  }
  return dir
}

async function countFiles(dir: string): Promise<number> {
  let n = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile() && !entry.parentPath.includes('.remote-eval')) n++
  return n
}

describe('big deletions', () => {
  for (const count of [15_000, 100_000]) {
    test(`${count.toLocaleString('en')} files deleted locally: one push deletes them all, and says so`, { timeout: 600_000 }, async () => {
      const project = await manyFiles(count)
      const dir = remoteDir('bigdel')
      const limits = ['--max-total-size', '2G']
      const first = await runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project, ...limits])
      assert.equal(first.code, 0, first.stderr)
      assert.equal(await countFiles(dir), count + 1)
      for (const entry of await readdir(project)) if (entry !== 'keep.py') await rm(path.join(project, entry), { recursive: true })
      const second = await runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project, ...limits])
      assert.equal(second.code, 0, second.stderr)
      assert.match(second.stderr, new RegExp(`removed ${count} \\(tar, `))
      assert.equal(JSON.parse(second.stdout).files_removed, count)
      assert.equal(await countFiles(dir), 1)
      // And the next push has nothing to do: the state matches what is there.
      const third = await runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project, ...limits])
      assert.equal(third.code, 0, third.stderr)
      assert.match(third.stderr, /is up to date; nothing sent/)
      await rm(project, { recursive: true, force: true })
    })
  }
})
