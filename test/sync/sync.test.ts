import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { appendFile, mkdir, readFile, rm, stat, utimes, writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { selectFiles } from '../../lib/sync/select.ts'
import { syncProject } from '../../lib/sync/sync.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { harness, listTree, makePod, makeProject, openTestPod, openTestSsh, podExecs, remoteDir, type TestPod } from '../support/harness.ts'
import { startCountingProxy, type CountingProxy } from '../support/tcp-proxy.ts'

// Code sync over the real sshd (through a counting TCP proxy) and into a pod on the API server double, through the real kubectl.

const BIG = 512 * 1024

/** A project with a large incompressible file, so resending it would show in the byte counts. */
async function sampleProject(): Promise<string> {
  return makeProject(
    {
      '.gitignore': 'logs/*\n!logs/keep.txt\n',
      'app/eval/cli.py': 'print("eval")\n',
      'app/eval/reports/__init__.py': '# a package named reports: code, ships\n',
      'configs/policy.yaml': 'recognizers: []\n',
      'logs/keep.txt': 'kept by a negation\n',
      'logs/drop.txt': 'ignored\n',
      'weights_stub.bin': randomBytes(BIG),
      '.env': 'HF_TOKEN=hf_local_secret\n',
      '.env.eval': 'HF_TOKEN=hf_local_secret\n',
      '.env.local': 'X=1\n',
      '.venv/bin/python': 'venv\n',
      '.models/m.bin': 'model\n',
      '.datasets/d.parquet': 'data\n',
      'reports/evaluations/old/report.json': '{}\n',
      'baselines/b.json': '{}\n',
      'app/__pycache__/cli.cpython-311.pyc': 'pyc',
      '.pytest_cache/v': 'c',
      '.eval_cache/e': 'c',
      'node_modules/zx/index.js': 'js',
    },
    { git: true },
  )
}

const EXPECTED = [
  '.gitignore',
  'app/eval/cli.py',
  'app/eval/reports/__init__.py',
  'configs/policy.yaml',
  'logs/keep.txt',
  'weights_stub.bin',
]
const withoutTool = (files: string[]) => files.filter((f) => !f.startsWith('.remote-eval/'))

/** Bumps a file's mtime without changing its content (what a git checkout does). */
const touch = (file: string) => utimes(file, new Date(), new Date(Date.now() + 5000))

describe('sync over ssh', () => {
  let proxy: CountingProxy
  let ssh: Transport
  let project: string
  let dir: string
  before(async () => {
    proxy = await startCountingProxy(harness().sshd.port)
    ssh = await openTestSsh([`Port=${proxy.port}`])
    project = await sampleProject()
    dir = remoteDir('sync')
  })
  after(async () => {
    await ssh.close()
    await proxy.close()
  })

  test('the first push sends the selection and nothing excluded (a few files: one tar round trip)', async () => {
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.method, 'tar')
    assert.equal(report.filesSent, EXPECTED.length)
    assert.deepEqual(withoutTool(await listTree(dir)), EXPECTED)
    assert.deepEqual(await readFile(path.join(dir, 'weights_stub.bin')), await readFile(path.join(project, 'weights_stub.bin')))
  })

  test('a second push of an unchanged tree sends under 64 KB on the wire (in fact under 8 KB, the benchmark goal)', async () => {
    proxy.reset()
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.unchanged, true)
    assert.ok(proxy.bytesUp < 64 * 1024, `${proxy.bytesUp} bytes sent`)
    assert.ok(proxy.bytesUp < 8 * 1024, `${proxy.bytesUp} bytes sent`)
  })

  test('after one file changes, only that file is sent', async () => {
    await appendFile(path.join(project, 'app/eval/cli.py'), 'print("changed")\n')
    await touch(path.join(project, 'weights_stub.bin'))
    proxy.reset()
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.filesSent, 1, 'the touched but unchanged file is compared by content')
    assert.ok(proxy.bytesUp < BIG / 4, `${proxy.bytesUp} bytes sent: more than one small file's worth`)
    assert.equal(await readFile(path.join(dir, 'app/eval/cli.py'), 'utf8'), 'print("eval")\nprint("changed")\n')
  })

  test('files deleted locally are deleted on the target; files the push never sent stay', async () => {
    await writeFile(path.join(dir, 'made-on-remote.txt'), 'the eval wrote this')
    await mkdir(path.join(dir, 'reports/evaluations/r9'), { recursive: true })
    await writeFile(path.join(dir, 'reports/evaluations/r9/report.json'), '{}')
    await writeFile(path.join(dir, '.env.eval'), 'HF_TOKEN=remote_only\n')
    await $`chown -R ${harness().sshd.user}: ${dir}`.quiet()
    await rm(path.join(project, 'configs'), { recursive: true })
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.filesRemoved, 1)
    const remote = await listTree(dir)
    assert.ok(!remote.includes('configs/policy.yaml'))
    assert.ok(!(await $`test -d ${path.join(dir, 'configs')}`.nothrow()).ok, 'the emptied directory is removed too')
    for (const kept of ['made-on-remote.txt', 'reports/evaluations/r9/report.json', '.env.eval']) assert.ok(remote.includes(kept), kept)
    assert.equal(await readFile(path.join(dir, '.env.eval'), 'utf8'), 'HF_TOKEN=remote_only\n')
  })

  test('a whole session (push, several scripts, pull) opens exactly one SSH connection', async () => {
    proxy.reset()
    const logBefore = (await readFile(harness().sshd.logFile, 'utf8')).length
    const session = await openTestSsh([`Port=${proxy.port}`])
    try {
      await appendFile(path.join(project, 'app/eval/cli.py'), '# again\n')
      await syncProject({ transport: session, projectDir: project, remoteDir: dir })
      for (let i = 0; i < 3; i++) assert.equal((await session.run('echo "$1"', [`script ${i}`])).stdout, `script ${i}\n`)
      const local = await mkdtemp(path.join(tmpdir(), 'gre-pull-'))
      const pulled = await session.pull(path.join(dir, 'app'), local)
      assert.equal(pulled.files, 2)
      assert.equal(await readFile(path.join(local, 'eval/cli.py'), 'utf8'), await readFile(path.join(project, 'app/eval/cli.py'), 'utf8'))
    } finally {
      await session.close()
    }
    assert.equal(proxy.connections, 1)
    const log = (await readFile(harness().sshd.logFile, 'utf8')).slice(logBefore)
    const accepted = log
      .split('\n')
      .filter((line) => proxy.upstreamPorts.some((p) => line.includes(`Connection from 127.0.0.1 port ${p} `)))
    assert.equal(accepted.length, 1, log)
  })

  test('close() ends the master connection', async () => {
    proxy.reset()
    const openBefore = proxy.active
    const session = await openTestSsh([`Port=${proxy.port}`])
    await session.run('true')
    assert.equal(proxy.active, openBefore + 1)
    await session.close()
    for (let i = 0; i < 50 && proxy.active > openBefore; i++) await new Promise((r) => setTimeout(r, 20))
    assert.equal(proxy.connections, 1)
    assert.equal(proxy.active, openBefore)
  })
})

describe('sync of a larger tree over ssh: rsync', () => {
  let ssh: Transport
  let project: string
  const dir = remoteDir('tree')
  const FILES = 320
  before(async () => {
    ssh = await openTestSsh()
    const files: Record<string, string> = {
      '.gitignore': '/data/\n*.ckpt\nbuild/\n!build/keep.me\n*.secret\nraw*/\nx\\*\n',
      // Names that are rsync wildcards: ignored ones must not ship, and must not hide others.
      'creds[prod].secret': 'ignored: must never ship',
      'raw[1]/huge.bin': 'ignored directory',
      'x*': 'ignored, a name that is a wildcard',
      'xtra.py': 'selected; an unescaped "x*" would exclude it',
      'data/train.jsonl': 'ignored by /data/',
      'src/data/schema.json': '{"nested": "kept"}',
      'src/model.ckpt': 'ignored by *.ckpt',
      'build/out.o': 'ignored',
      '.env.eval': 'HF_TOKEN=hf_never',
    }
    for (let i = 0; i < FILES; i++) files[`pkg${i % 9}/mod_${i}.py`] = `value = ${i}\n`.repeat(20)
    project = await makeProject(files, { git: true })
    await mkdir(path.join(project, 'empty_dir'))
    await mkdir(path.join(project, 'vendor/lib'), { recursive: true })
    await writeFile(path.join(project, 'vendor/lib/code.py'), 'a nested repository: git does not list its files')
    await $({ cwd: path.join(project, 'vendor/lib'), quiet: true })`git init -q`
    await writeFile(path.join(project, 'untracked.py'), 'untracked, not ignored: ships')
  })
  after(() => ssh.close())
  const expected = async () => (await selectFiles(project)).files.map((f) => f.path)

  test("a first push walks the tree with excludes and sends exactly the selection, and leaves the directory's mode alone", async () => {
    await mkdir(dir, { recursive: true })
    await $`chown ${harness().sshd.user}: ${dir} && chmod 2775 ${dir}`.quiet()
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.method, 'rsync-tree')
    const selected = await expected()
    assert.equal(report.filesSent, selected.length)
    assert.equal(selected.length, FILES + 4, selected.filter((f) => !f.startsWith('pkg')).join(' '))
    assert.ok(selected.includes('src/data/schema.json') && !selected.includes('vendor/lib/code.py'))
    assert.deepEqual(withoutTool(await listTree(dir)), selected)
    assert.ok(!(await $`test -e ${path.join(dir, 'empty_dir')}`.nothrow()).ok, 'no empty directory git would not have')
    assert.equal((await $`stat -c %a ${dir}`.quiet()).stdout.trim(), '2775', 'a shared (setgid) directory stays shared')
  })

  test('many changed files go as an rsync file list; deletions happen first', async () => {
    for (let i = 0; i < 150; i++) await appendFile(path.join(project, `pkg${i % 9}/mod_${i}.py`), '# changed\n')
    await rm(path.join(project, 'pkg0'), { recursive: true })
    await writeFile(path.join(project, 'pkg0'), 'pkg0 is a file now')
    const report = await syncProject({ transport: ssh, projectDir: project, remoteDir: dir })
    assert.equal(report.method, 'rsync-list')
    assert.ok(report.filesRemoved > 30)
    assert.deepEqual(withoutTool(await listTree(dir)), await expected())
    assert.equal(await readFile(path.join(dir, 'pkg0'), 'utf8'), 'pkg0 is a file now')
  })
})

describe('sync into a pod (real kubectl, API server double)', () => {
  let pod: TestPod
  let kube: Transport
  let project: string
  const dir = '/workdir/guardrails'
  const hostDir = () => path.join(pod.workdir(), 'guardrails')
  const execsSince = async (n: number) => (await podExecs(pod)).slice(n)

  before(async () => {
    pod = await makePod()
    kube = await openTestPod(pod)
    project = await sampleProject()
  })

  test('the first push sends the selection as one tar stream, nothing excluded', async () => {
    const report = await syncProject({ transport: kube, projectDir: project, remoteDir: dir })
    assert.equal(report.method, 'tar')
    assert.deepEqual(withoutTool(await listTree(hostDir())), EXPECTED)
    assert.deepEqual(await readFile(path.join(hostDir(), 'weights_stub.bin')), await readFile(path.join(project, 'weights_stub.bin')))
  })

  test('a second push of an unchanged tree sends no file bodies', async () => {
    const n = (await podExecs(pod)).length
    const report = await syncProject({ transport: kube, projectDir: project, remoteDir: dir })
    assert.equal(report.unchanged, true)
    const execs = await execsSince(n)
    assert.equal(execs.length, 1, 'one exec: the inspection')
    assert.ok(execs[0]!.stdinBytes < 8 * 1024, `${execs[0]!.stdinBytes} bytes`)
  })

  test('touched but unchanged files are compared by content and not sent', async () => {
    await touch(path.join(project, 'weights_stub.bin'))
    const n = (await podExecs(pod)).length
    const report = await syncProject({ transport: kube, projectDir: project, remoteDir: dir })
    assert.equal(report.filesSent, 0)
    const sent = (await execsSince(n)).reduce((sum, e) => sum + e.stdinBytes, 0)
    assert.ok(sent < BIG / 4, `${sent} bytes`)
  })

  test('after one file changes, only that file is sent', async () => {
    await appendFile(path.join(project, 'app/eval/cli.py'), 'print("changed")\n')
    const n = (await podExecs(pod)).length
    const report = await syncProject({ transport: kube, projectDir: project, remoteDir: dir })
    assert.equal(report.filesSent, 1)
    const sent = (await execsSince(n)).reduce((sum, e) => sum + e.stdinBytes, 0)
    assert.ok(sent < BIG / 4, `${sent} bytes`)
    assert.equal(await readFile(path.join(hostDir(), 'app/eval/cli.py'), 'utf8'), 'print("eval")\nprint("changed")\n')
  })

  test('deletions reach the pod; excluded and foreign files there stay', async () => {
    await writeFile(path.join(hostDir(), '.env.eval'), 'HF_TOKEN=pod_only\n')
    await writeFile(path.join(hostDir(), 'made-in-pod.txt'), 'x')
    await rm(path.join(project, 'logs/keep.txt'))
    const report = await syncProject({ transport: kube, projectDir: project, remoteDir: dir })
    assert.equal(report.filesRemoved, 1)
    const remote = await listTree(hostDir())
    assert.ok(!remote.includes('logs/keep.txt'))
    assert.ok(remote.includes('.env.eval') && remote.includes('made-in-pod.txt'))
  })

  test('pull brings a tree back, checked against its listing', async () => {
    const local = await mkdtemp(path.join(tmpdir(), 'gre-pull-'))
    const pulled = await kube.pull(`${dir}/app`, local)
    assert.equal(pulled.files, 2)
    assert.deepEqual(await listTree(local), ['eval/cli.py', 'eval/reports/__init__.py'])
  })

  test('pulling a directory that does not exist is an error, and nothing is written', async () => {
    const local = path.join(await mkdtemp(path.join(tmpdir(), 'gre-pull-')), 'dest')
    await assert.rejects(kube.pull(`${dir}/no-such-run`, local), /no such directory on the target/)
    await assert.rejects(stat(local), 'no directory was left here')
  })

  test('--container picks the container; each has its own /workdir', async () => {
    const twin = await makePod(['main', 'sidecar'])
    const side = await openTestPod(twin, 'sidecar')
    await syncProject({ transport: side, projectDir: project, remoteDir: dir })
    assert.ok((await listTree(path.join(twin.workdir('sidecar'), 'guardrails'))).includes('app/eval/cli.py'))
    assert.deepEqual(await listTree(twin.workdir('main')), [])
  })
})
