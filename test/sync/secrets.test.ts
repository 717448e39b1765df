import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, test } from 'node:test'
import { $ } from 'zx'
import { listTree, makeProject, remoteDir, runScript, sshFlags } from '../support/harness.ts'

// Credentials stay home: the deny-list (whatever git says of a file) and the content check of the
// files a push is about to send, over the real sshd.

const SYNC = 'remote_eval/sync_code.ts'
const TOKEN = 'hf_local_token_never_leaves_1234'

/** The credential files a hostile-input probe got onto the target before (issue "nothing leaks"). */
const CREDENTIAL_FILES = [
  '.git-credentials',
  '.aws/credentials',
  'credentials.json',
  'id_ecdsa',
  'server.key',
  '.ssh/config',
  '.pypirc',
  '.kube/config',
  '.docker/config.json',
  '.htpasswd',
  'service-account.json',
  'secrets.yaml',
  'terraform.tfstate',
]

describe('credentials stay home', () => {
  test('credential files never ship: at the root, in an untracked folder, committed with git add -f', async () => {
    const files: Record<string, string> = { 'app.py': 'print(1)\n', '.gitignore': CREDENTIAL_FILES.join('\n') + '\n' }
    for (const file of CREDENTIAL_FILES) {
      files[file] = 'root copy\n'
      files[`untracked/${file}`] = 'untracked copy\n'
    }
    const project = await makeProject(files, { git: true })
    // Committed in spite of .gitignore, in a folder of its own.
    for (const file of CREDENTIAL_FILES) {
      await $({
        cwd: project,
        quiet: true,
      })`mkdir -p ${path.dirname(`forced/${file}`)} && echo forced > ${`forced/${file}`} && git add -f ${`forced/${file}`}`
    }
    await $({ cwd: project, quiet: true })`git -c user.email=t@e -c user.name=t commit -qm forced`
    const dir = remoteDir('creds')
    const result = await runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project])
    assert.equal(result.code, 0, result.stderr)
    const shipped = (await listTree(dir)).filter((f) => !f.startsWith('.remote-eval/'))
    assert.deepEqual(shipped, ['.gitignore', 'app.py'])
  })

  test("a file holding a local secret's value, or a private key, is refused by name; --allow-secret lets one through", async () => {
    const project = await makeProject(
      {
        'app.py': 'print(1)\n',
        'config.py': `TOKEN = "${TOKEN}"\n`,
        'notes/deploy.txt': 'key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
        'settings.py': 'DB = "postgres://u:from-dotenv-secret-77@db/x"\n',
        '.env.local': 'DB_PASSWORD=from-dotenv-secret-77\n',
      },
      { git: true },
    )
    const dir = remoteDir('secrets')
    const env = { ...process.env, HF_TOKEN: TOKEN }
    const refused = await runScript(SYNC, [...sshFlags(), '--remote-dir', dir, '--project-dir', project], env)
    assert.equal(refused.code, 2, refused.stderr)
    assert.match(refused.stderr, /Not pushing: 3 file\(s\) would take a secret to the target/)
    assert.match(refused.stderr, /config\.py: holds the value of a secret of this machine/)
    assert.match(refused.stderr, /settings\.py: holds the value of a secret of this machine/)
    assert.match(refused.stderr, /notes\/deploy\.txt: holds a private key/)
    assert.ok(!refused.stderr.includes(TOKEN), 'the value itself is never shown')
    assert.ok(!existsSync(path.join(dir, 'app.py')), 'nothing was sent')

    await writeFile(path.join(project, 'config.py'), 'TOKEN = None\n')
    await writeFile(path.join(project, 'settings.py'), 'DB = None\n')
    const allowed = await runScript(
      SYNC,
      [...sshFlags(), '--remote-dir', dir, '--project-dir', project, '--allow-secret', 'notes/deploy.txt'],
      env,
    )
    assert.equal(allowed.code, 0, allowed.stderr)
    assert.ok(existsSync(path.join(dir, 'notes/deploy.txt')))
  })
})
