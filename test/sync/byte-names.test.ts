import assert from 'node:assert/strict'
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { describe, test, before, after } from 'node:test'
import { $ } from 'zx'
import { nameFromBytes, pathUnder } from '../../lib/core/filenames.ts'
import { selectFiles } from '../../lib/sync/select.ts'
import { syncProject } from '../../lib/sync/sync.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { makePod, makeProject, openTestPod, openTestSsh, remoteDir, type TestPod } from '../support/harness.ts'

// File names are bytes: names that are not valid UTF-8 (and names that look like options, hold a
// newline, a backslash or rsync wildcards) travel exactly, through every push method, and an
// ignored or credential file with such a name stays home. The probe's case: a gitignored
// `odd/secret\xff.log` shipped, and the list and tar pushes skipped a tracked `\xff` name.

/** Names as byte strings (one char per byte), the form lib/core/filenames.ts gives them. */
const TRACKED = [
  'odd/tracked\xff.py', // not UTF-8
  'caf\xe9.py', // latin-1, not UTF-8
  nameFromBytes(Buffer.from('ünï/ok.py')), // valid UTF-8
  'we\nird\\name.py',
  '-rf.py',
  '--owner=evil.py',
  'star*[x]?.py',
]
const IGNORED = 'odd/secret\xff.log'
const CREDENTIAL = 'keys/id_rsa\xff'
const PADDING = 260

async function write(root: string, name: string, content: string | Buffer): Promise<void> {
  const full = pathUnder(root, name)
  await mkdir(pathUnder(root, name.split('/').slice(0, -1).join('/')), { recursive: true })
  await writeFile(full, content)
}

/** Every file under dir, as byte strings, sorted; our own .remote-eval/ left out. */
async function treeBytes(dir: string, rel = ''): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(pathUnder(dir, rel), { withFileTypes: true, encoding: 'buffer' })) {
    const child = rel ? `${rel}/${nameFromBytes(entry.name)}` : nameFromBytes(entry.name)
    if (child === '.remote-eval') continue
    if (entry.isDirectory()) found.push(...(await treeBytes(dir, child)))
    else found.push(child)
  }
  return found.sort()
}

async function byteNamedProject(git: boolean): Promise<string> {
  const padding: Record<string, string> = { '.gitignore': '*.log\n' }
  for (let i = 0; i < PADDING; i++) padding[`pkg/mod_${i}.py`] = `value = ${i}\n`
  const project = await makeProject(padding)
  for (const name of TRACKED) await write(project, name, `content of ${name}\n`)
  await write(project, IGNORED, 'must stay home\n')
  await write(project, CREDENTIAL, 'a key file by its name\n')
  if (git) await $({ cwd: project, quiet: true })`git init -q && git add -A && git -c user.email=t@e -c user.name=t commit -q -m init`
  return project
}

const expectedTree = (tracked = TRACKED) =>
  ['.gitignore', ...tracked, ...Array.from({ length: PADDING }, (_, i) => `pkg/mod_${i}.py`)].sort()

describe('file names are bytes', () => {
  test('the selection holds the exact bytes, in git and outside it; the ignored and the credential names stay out', async () => {
    for (const git of [true, false]) {
      const project = await byteNamedProject(git)
      const selection = await selectFiles(project)
      const names = selection.files.map((f) => f.path)
      // Outside git the .log is not ignored (no git rules), so it is selected; in git it is not.
      assert.deepEqual(names, git ? expectedTree() : [...expectedTree(), IGNORED].sort(), `git=${git}`)
      assert.ok(selection.excluded.includes(CREDENTIAL), `git=${git}: ${selection.excluded.join(' ')}`)
      for (const file of selection.files) assert.ok((await lstat(pathUnder(project, file.path))).isFile())
    }
  })

  describe('over ssh, every method', () => {
    let ssh: Transport
    let project: string
    const dir = remoteDir('bytes')
    before(async () => {
      ssh = await openTestSsh()
      project = await byteNamedProject(true)
    })
    after(() => ssh.close())

    test('rsync-tree (a first push): the tree arrives byte for byte; the ignored \\xff name is skipped', async () => {
      const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
      assert.equal(report.method, 'rsync-tree')
      assert.deepEqual(await treeBytes(dir), expectedTree())
      for (const name of TRACKED) assert.equal(await readFile(pathUnder(dir, name), 'utf8'), `content of ${name}\n`)
    })

    test('rsync-list: many changed files and a renamed non-UTF-8 file; the old name is deleted', async () => {
      for (let i = 0; i < 120; i++) await writeFile(pathUnder(project, `pkg/mod_${i}.py`), `value = ${i} # changed\n`)
      await rename(pathUnder(project, 'caf\xe9.py'), pathUnder(project, 'caf\xe9\xe9.py'))
      const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
      assert.equal(report.method, 'rsync-list')
      assert.equal(report.filesRemoved, 1)
      const tracked = TRACKED.map((n) => (n === 'caf\xe9.py' ? 'caf\xe9\xe9.py' : n))
      assert.deepEqual(await treeBytes(dir), expectedTree(tracked))
      assert.equal(await readFile(pathUnder(dir, 'pkg/mod_7.py'), 'utf8'), 'value = 7 # changed\n')
    })

    test('tar (a few changes): a changed \\xff file and a deleted option-like name', async () => {
      await writeFile(pathUnder(project, 'odd/tracked\xff.py'), 'changed\n')
      await rm(pathUnder(project, '--owner=evil.py'))
      const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
      assert.equal(report.method, 'tar')
      assert.equal(report.filesSent, 1)
      assert.equal(report.filesRemoved, 1)
      assert.equal(await readFile(pathUnder(dir, 'odd/tracked\xff.py'), 'utf8'), 'changed\n')
      const tracked = TRACKED.filter((n) => n !== '--owner=evil.py').map((n) => (n === 'caf\xe9.py' ? 'caf\xe9\xe9.py' : n))
      assert.deepEqual(await treeBytes(dir), expectedTree(tracked))
      const again = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
      assert.equal(again.unchanged, true, 'the state read back holds the same byte names')
    })
  })

  describe('into a pod (tar over kubectl exec)', () => {
    let pod: TestPod
    let kube: Transport
    before(async () => {
      pod = await makePod()
      kube = await openTestPod(pod)
    })

    test('the tree arrives byte for byte; a deleted \\xff name is deleted there', async () => {
      const project = await byteNamedProject(true)
      const hostDir = `${pod.workdir()}/guardrails`
      const first = await syncProject({ transport: kube, projectDir: project, remoteDir: '/workdir/guardrails' })
      assert.equal(first.method, 'tar')
      assert.deepEqual(await treeBytes(hostDir), expectedTree())
      await rm(pathUnder(project, 'odd/tracked\xff.py'))
      const second = await syncProject({ transport: kube, projectDir: project, remoteDir: '/workdir/guardrails' })
      assert.equal(second.filesRemoved, 1)
      assert.deepEqual(await treeBytes(hostDir), expectedTree(TRACKED.filter((n) => n !== 'odd/tracked\xff.py')))
    })
  })
})
