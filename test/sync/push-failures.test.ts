import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { harness, makeProject, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// A push the target refuses says why, with the exit code of who must act: a full disk (with the
// free space) and a directory the login user cannot write are the target's (exit 4), a remote dir
// no file system can hold is the user's (exit 2, before anything is sent).

const SYNC = 'remote_eval/sync_code.ts'
const sync = (dir: string, project: string) => runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project])

/** A project whose push goes by tar (a few files) or by rsync (more than 100 changed files). */
async function project(method: 'tar' | 'rsync', extra: Record<string, string | Buffer> = {}) {
  const files: Record<string, string | Buffer> = { 'app/x.py': 'x = 1\n', ...extra }
  if (method === 'rsync') for (let i = 0; i < 120; i++) files[`app/m${i}.py`] = `m = ${i}\n`
  return makeProject(files, { git: true })
}

/** A 1 MiB tmpfs owned by the SSH test user, or null where this machine may not mount one. */
async function smallDisk(): Promise<string | null> {
  const dir = remoteDir('full')
  await mkdir(dir, { recursive: true })
  const mounted = await $`mount -t tmpfs -o size=1m tmpfs ${dir}`.nothrow().quiet()
  if (!mounted.ok) return null
  await $`chown ${harness().sshd.user}: ${dir}`.quiet()
  return dir
}

describe('a push the target refuses says why', () => {
  for (const method of ['tar', 'rsync'] as const) {
    test(`${method}: a full disk is exit 4, with the system's reason and the free space`, async (t) => {
      const disk = await smallDisk()
      if (!disk) return t.skip('this machine may not mount a tmpfs (mount needs CAP_SYS_ADMIN)')
      try {
        const result = await sync(path.join(disk, 'eval'), await project(method, { 'weights.bin': randomBytes(1536 * 1024) }))
        assert.equal(result.code, 4, result.stderr)
        assert.match(result.stderr, new RegExp(`\\(${method}, |${method === 'rsync' ? 'rsync with' : 'Applying the push'}`))
        assert.match(
          result.stderr,
          /the disk is full \(.*No space left on device.*\); [\d.]+ (B|KiB|MiB) free in .*\/full-[0-9a-f]+(\/eval)? there\. Free some space on ssh /,
        )
      } finally {
        await $`umount -l ${disk}`.nothrow().quiet()
      }
    })

    test(`${method}: a subdirectory the login user cannot write is exit 4, naming the permission error`, async () => {
      const source = await project(method)
      const dir = remoteDir('readonly')
      assert.equal((await sync(dir, source)).code, 0)
      // Owned by another user: the login user can neither write there nor chmod it back (as the
      // owner, rsync and tar would restore the mode and go on).
      await $`chown root: ${path.join(dir, 'app')}`.quiet()
      try {
        await writeFile(path.join(source, 'app/x.py'), 'x = 2\n')
        await writeFile(path.join(source, 'app/new.py'), 'new = 1\n')
        if (method === 'rsync') for (let i = 0; i < 120; i++) await writeFile(path.join(source, `app/m${i}.py`), `m = ${i} + 1\n`)
        const result = await sync(dir, source)
        assert.equal(result.code, 4, result.stderr)
        assert.match(
          result.stderr,
          /app\/.*Permission denied.*\. Make it writable for the login user on ssh .* \(chmod u\+w, or chown\), then push again\./,
        )
      } finally {
        await $`chown -R ${harness().sshd.user}: ${path.join(dir, 'app')}`.quiet()
      }
    })
  }

  test('a --remote-dir name longer than any file system allows is exit 2, and nothing is created', async () => {
    const dir = path.join(remoteDir('long'), 'n'.repeat(300))
    const result = await sync(dir, await project('tar'))
    assert.equal(result.code, 2, result.stderr)
    assert.match(
      result.stderr,
      /--remote-dir: the name "n{40}\.\.\." is 300 bytes long; file systems allow 255 per name\. Choose a shorter directory\./,
    )
    assert.equal(existsSync(path.dirname(dir)), false)
  })
})
