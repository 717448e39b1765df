import assert from 'node:assert/strict'
import { access, chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
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
    for (let i = d * perDir; i < Math.min(count, (d + 1) * perDir); i++)
      writes.push(writeFile(path.join(sub, `a_fairly_long_generated_file_name_${i}.py`), `x = ${i}\n`))
    await Promise.all(writes)
  }
  return dir
}

async function countFiles(dir: string): Promise<number> {
  let n = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile() && !entry.parentPath.includes('.remote-eval')) n++
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

describe('deletions the target refuses', () => {
  // The state follows what the target did: a file it could not delete stays recorded, the push
  // leaves no stamp, and the next push tries again; the user is told why.
  for (const method of ['tar', 'rsync-list'] as const) {
    test(`${method}: a file in a read-only directory there stays recorded and is deleted once it can be`, async () => {
      const project = await mkdtemp(path.join(tmpdir(), 'gre-kept-'))
      await mkdir(path.join(project, 'locked'))
      await writeFile(path.join(project, 'locked/old.py'), 'old\n')
      await writeFile(path.join(project, 'keep.py'), 'kept\n')
      // More than 100 changed files make the push go through rsync.
      const padding = method === 'rsync-list' ? 120 : 0
      const writePadding = async (round: number) => {
        for (let i = 0; i < padding; i++) await writeFile(path.join(project, `pad_${i}.py`), `x = ${round}\n`)
      }
      await writePadding(0)
      const dir = remoteDir('kept')
      const sync = () => runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project])
      assert.equal((await sync()).code, 0)
      await chmod(path.join(dir, 'locked'), 0o555)
      await rm(path.join(project, 'locked'), { recursive: true })
      await writePadding(1)
      const refused = await sync()
      assert.equal(refused.code, 0, refused.stderr)
      const report = JSON.parse(refused.stdout) as { files_removed: number; files_kept: number; method: string }
      assert.deepEqual([report.method, report.files_removed, report.files_kept], [method, 0, 1])
      assert.match(refused.stderr, /1 file\(s\) this tool pushed before could not be deleted .*Permission denied.*next push tries again/)
      assert.ok(await exists(path.join(dir, 'locked/old.py')))
      // No stamp: the next push is not "up to date", and it tries again.
      const again = await sync()
      assert.equal(JSON.parse(again.stdout).files_kept, 1, again.stderr)
      await chmod(path.join(dir, 'locked'), 0o755)
      const fixed = await sync()
      assert.deepEqual([JSON.parse(fixed.stdout).files_removed, JSON.parse(fixed.stdout).files_kept], [1, 0], fixed.stderr)
      assert.equal(await exists(path.join(dir, 'locked/old.py')), false)
      assert.match((await sync()).stderr, /is up to date; nothing sent/)
      await rm(project, { recursive: true, force: true })
    })
  }
})

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  )
