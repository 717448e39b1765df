import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { syncProject } from '../../lib/sync/sync.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { harness, makePod, makeProject, openTestPod, openTestSsh, remoteDir } from '../support/harness.ts'

// A synced directory that someone replaced on the target by a symlink to elsewhere (shared
// storage, say) must not have files deleted or written there by the next push.

/** hostPath maps a target path to this machine's view of it; targetPath maps back. */
async function replacedBySymlink(
  transport: Transport,
  remote: string,
  hostPath: (p: string) => string,
  targetPath: (p: string) => string,
  options: { owner?: string; method: 'tar' | 'rsync-list' },
) {
  // Many files changing in the second push make it go through rsync.
  const padding = options.method === 'rsync-list' ? 150 : 0
  const pads = (round: number) => Object.fromEntries(Array.from({ length: padding }, (_, i) => [`pkg/m${i}.py`, `x = ${round}\n`]))
  const project = await makeProject({ 'app.py': 'x', 'configs/a.yaml': 'a: 1\n', 'configs/b.yaml': 'b: 1\n', ...pads(0) }, { git: true })
  await syncProject({ transport, projectDir: project, remoteDir: remote })

  const outside = await mkdtemp(path.join(path.dirname(hostPath(remote)), 'shared-'))
  await writeFile(path.join(outside, 'a.yaml'), 'precious a\n')
  await writeFile(path.join(outside, 'b.yaml'), 'precious b\n')
  await rm(hostPath(`${remote}/configs`), { recursive: true })
  await symlink(targetPath(outside), hostPath(`${remote}/configs`))
  if (options.owner) await $`chown -R -h ${options.owner}: ${outside} ${hostPath(`${remote}/configs`)}`.quiet()

  await rm(path.join(project, 'configs/a.yaml'))
  await writeFile(path.join(project, 'configs/b.yaml'), 'b: 2\n')
  for (const [rel, content] of Object.entries(pads(1))) await writeFile(path.join(project, rel), content)
  const report = await syncProject({ transport, projectDir: project, remoteDir: remote })
  assert.equal(report.method, options.method)
  assert.equal(report.filesRemoved, 0, 'the refused deletion is not counted as done')

  assert.deepEqual((await readdir(outside)).sort(), ['a.yaml', 'b.yaml'], 'nothing deleted or added out there')
  assert.equal(await readFile(path.join(outside, 'a.yaml'), 'utf8'), 'precious a\n')
  assert.equal(await readFile(path.join(outside, 'b.yaml'), 'utf8'), 'precious b\n')
  assert.equal(await readFile(hostPath(`${remote}/configs/b.yaml`), 'utf8'), 'b: 2\n', 'the push landed in a real directory')
}

describe('a synced directory replaced by a symlink on the target', () => {
  for (const method of ['tar', 'rsync-list'] as const) {
    test(`ssh (${method}): nothing is deleted or written through the link`, async () => {
      const ssh = await openTestSsh()
      try {
        await replacedBySymlink(
          ssh,
          remoteDir('symlinked'),
          (p) => p,
          (p) => p,
          { owner: harness().sshd.user, method },
        )
      } finally {
        await ssh.close()
      }
    })
  }

  test('kubectl: nothing is deleted or written through the link', async () => {
    const pod = await makePod()
    // Inside the pod /workdir is pod.workdir() on the host: map pod paths to host paths.
    const hostPath = (p: string) => path.join(pod.workdir(), p.replace(/^\/workdir\//, ''))
    const podPath = (p: string) => path.join('/workdir', path.relative(pod.workdir(), p))
    await replacedBySymlink(await openTestPod(pod), '/workdir/guardrails', hostPath, podPath, { method: 'tar' })
  })
})
