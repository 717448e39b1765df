import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir, readFile, symlink } from 'node:fs/promises'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { $ } from 'zx'
import { startHub, type HubServer } from '../support/hub-server.ts'
import { EXAMPLE_HUB, copyExample, harness, remoteDir, runScript, sshFlags, writeAsTestUser } from '../support/harness.ts'

// Model and dataset directories are guarded like the remote dir: by what they are on the target
// (symlinks resolved), and --fresh-cache deletes only what this tool prepared there.

const TOKEN = 'hf_asset_dirs_token_5150'
const SSH = 'remote_eval/ssh_eval.ts'

describe('asset directories', () => {
  let hub: HubServer
  let project: string
  let dir: string
  let env: NodeJS.ProcessEnv
  const run = (extra: string[]) =>
    runScript(
      SSH,
      [
        ...sshFlags(),
        '--remote-dir',
        dir,
        '--project-dir',
        project,
        '--venv',
        harness().venv,
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'yes',
        ...extra,
      ],
      env,
    )

  before(async () => {
    hub = await startHub({ root: EXAMPLE_HUB, tokens: [TOKEN] })
    project = await copyExample()
    dir = remoteDir('assets')
    await writeAsTestUser(path.join(dir, '.env.eval'), `HF_TOKEN=${TOKEN}\n`)
    env = { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }
  })
  after(() => hub.stop())

  const home = () => harness().sshd.home
  const refusals: Array<[string, () => Promise<string[]>, RegExp]> = [
    ['the home directory', async () => ['--models-dir', home(), '--datasets-dir', `${dir}/d`], /--models-dir .* is the home directory on/],
    [
      'the home directory through a symlink',
      async () => {
        const link = `${dir}-home-link`
        if (!existsSync(link)) await symlink(home(), link)
        return ['--models-dir', `${dir}/m`, '--datasets-dir', link]
      },
      /--datasets-dir .*home-link is the home directory on .* \(it resolves to \/home\/gr-eval-test there\)/,
    ],
    [
      'one directory for both',
      async () => ['--models-dir', `${dir}/same`, '--datasets-dir', `${dir}/same`],
      /--datasets-dir .*\/same is also --models-dir/,
    ],
    [
      'the remote dir itself',
      async () => ['--models-dir', dir, '--datasets-dir', `${dir}/d`],
      /--models-dir .* is the remote directory itself/,
    ],
    [
      'a directory every user may write',
      async () => {
        await mkdir(`${dir}-open`, { recursive: true })
        await $`chmod 1777 ${`${dir}-open`}`.quiet()
        return ['--models-dir', `${dir}-open`, '--datasets-dir', `${dir}/d`]
      },
      /--models-dir .*-open is writable by every user/,
    ],
    [
      '/tmp through a symlink',
      async () => {
        const link = `${dir}-tmp-link`
        if (!existsSync(link)) await symlink('/tmp', link)
        return ['--models-dir', `${dir}/m`, '--datasets-dir', link]
      },
      /--datasets-dir .*tmp-link is a system directory on .*resolves to \/tmp/,
    ],
    [
      'a non-empty directory nobody prepared',
      async () => {
        await writeAsTestUser(`${dir}-theirs/notes.txt`, 'mine\n')
        return ['--models-dir', `${dir}-theirs`, '--datasets-dir', `${dir}/d`]
      },
      /--models-dir .*-theirs already holds files .* pass --adopt-asset-dirs/,
    ],
  ]
  for (const [name, args, message] of refusals) {
    test(`refused, exit 2, nothing of it touched: ${name}`, async () => {
      const manifestBefore = existsSync(path.join(home(), 'manifest.json'))
      const result = await run(await args())
      assert.equal(result.code, 2, result.stderr)
      assert.match(result.stderr, message)
      assert.equal(existsSync(path.join(home(), 'manifest.json')), manifestBefore)
      assert.ok(!existsSync(path.join(dir, 'reports')), 'no eval ran')
    })
  }

  test('--remote-dir /var/tmp, or a symlink to /tmp with --adopt-remote-dir: refused', async () => {
    const local = await runScript(
      SSH,
      [
        ...sshFlags(),
        '--remote-dir',
        '/var/tmp',
        '--project-dir',
        project,
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'no',
        '--models-dir',
        `${dir}/m`,
        '--datasets-dir',
        `${dir}/d`,
      ],
      env,
    )
    assert.equal(local.code, 2, local.stderr)
    assert.match(local.stderr, /--remote-dir \/var\/tmp is a system directory/)
    const link = `${dir}-remote-tmp-link`
    if (!existsSync(link)) await symlink('/tmp', link)
    const result = await runScript(
      SSH,
      [
        ...sshFlags(),
        '--remote-dir',
        link,
        '--adopt-remote-dir',
        '--project-dir',
        project,
        '--venv',
        harness().venv,
        '--runtime',
        'cpu',
        '--remote-has-internet',
        'no',
        '--models-dir',
        `${dir}/m`,
        '--datasets-dir',
        `${dir}/d`,
      ],
      env,
    )
    assert.equal(result.code, 2, result.stderr)
    assert.match(result.stderr, /is the system directory \/tmp on .*resolves to \/tmp/)
    assert.ok(!existsSync('/tmp/.remote-eval'), 'nothing was claimed in /tmp')
  })

  test("--fresh-cache deletes only what this tool prepared: another project's cache in the same directory stays", async () => {
    const assets = ['--models-dir', `${dir}/models`, '--datasets-dir', `${dir}/datasets`]
    const first = await run(assets)
    assert.equal(first.code, 0, first.stderr)
    await writeAsTestUser(`${dir}/datasets/hf_cache/other-project/data.bin`, 'theirs\n')
    await writeAsTestUser(`${dir}/datasets/hf_cache/hub/unrelated.txt`, 'theirs too\n')
    const fresh = await run([...assets, '--fresh-cache'])
    assert.equal(fresh.code, 0, fresh.stderr)
    assert.match(fresh.stderr, /--fresh-cache: removed the suite's datasets/)
    assert.match(fresh.stderr, /org\/ru-pii-chat@main\s+fetched/)
    assert.equal(await readFile(`${dir}/datasets/hf_cache/other-project/data.bin`, 'utf8'), 'theirs\n')
    assert.equal(await readFile(`${dir}/datasets/hf_cache/hub/unrelated.txt`, 'utf8'), 'theirs too\n')
  })

  test('--adopt-asset-dirs downloads into a non-empty directory, deleting nothing of it', async () => {
    await writeAsTestUser(`${dir}-adopted/notes.txt`, 'mine\n')
    const result = await run(['--models-dir', `${dir}-adopted`, '--datasets-dir', `${dir}/datasets`, '--adopt-asset-dirs'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(await readFile(`${dir}-adopted/notes.txt`, 'utf8'), 'mine\n')
    assert.ok(existsSync(`${dir}-adopted/manifest.json`))
  })
})
