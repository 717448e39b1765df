import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { LocalTransport } from '../../lib/transport/local.ts'
import type { Transport } from '../../lib/transport/types.ts'
import { harness, makePod, openTestPod, openTestSsh, unique } from '../support/harness.ts'

// Arguments reach the target byte for byte over every transport, and nothing in them runs: the
// login shell (zsh for the SSH test user) never parses them.

const canary = (name: string) => `/tmp/${unique(`gre-canary-${name}`)}`
const canaries = [canary('subst'), canary('backtick'), canary('semicolon'), canary('newline')]
const NASTY = [
  'plain',
  'with spaces  and\ttab',
  "single'quote",
  'double"quote',
  `$(touch ${canaries[0]})`,
  `\`touch ${canaries[1]}\``,
  `; touch ${canaries[2]}`,
  `line1\ntouch ${canaries[3]}\nline3`,
  '*',
  '~',
  '$HOME',
  "'\\''",
  '',
  '-n',
  '--',
  'üñïçødé ☃',
  '!history',
]

/** Prints each argument followed by NUL, so the test can split them back exactly. */
const ECHO_ARGS = `printf '%s\\0' "$#" "$@"`

async function assertRoundTrip(transport: Transport) {
  const result = await transport.run(ECHO_ARGS, NASTY)
  assert.equal(result.exitCode, 0, result.stderrTail.join('\n'))
  const [count, ...args] = result.stdout.split('\0').slice(0, -1)
  assert.equal(Number(count), NASTY.length)
  assert.deepEqual(args, NASTY)
  for (const file of canaries) assert.equal(existsSync(file), false, `${file} was created: an argument was executed`)
}

describe('arguments reach the target byte for byte', () => {
  test('local bash', async () => {
    await assertRoundTrip(new LocalTransport())
  })

  describe('ssh to a user whose login shell is zsh', () => {
    let ssh: Awaited<ReturnType<typeof openTestSsh>>
    before(async () => (ssh = await openTestSsh()))
    after(() => ssh.close())

    test('the login shell is zsh, and it read its startup file', async () => {
      // zsh execs the last command of -c itself, so bash's parent is sshd; $SHELL names the login shell.
      const result = await ssh.run('printf "%s\\n" "${SHELL##*/}"')
      assert.equal(result.stdout.trim(), 'zsh')
      assert.ok(result.stderrTail.includes('zshenv of the test user was read'), result.stderrTail.join('\n'))
    })

    test('every argument arrives intact and none runs', async () => {
      await assertRoundTrip(ssh)
      assert.equal(harness().sshd.user, (await ssh.run('id -un')).stdout.trim())
    })

    test('environment values travel on stdin, not argv', async () => {
      const secret = 'hf_' + unique('secret')
      const result = await ssh.run('printf %s "$TOKEN_FOR_TEST"; ps -eo args | grep -c -- "$TOKEN_FOR_TEST" || true', [], {
        env: { TOKEN_FOR_TEST: secret },
      })
      assert.ok(result.stdout.startsWith(secret))
      // Only the grep itself holds the value in its argv.
      assert.equal(result.stdout.slice(secret.length).trim(), '1')
    })
  })

  test('kubectl exec into a pod', async () => {
    const pod = await makePod()
    await assertRoundTrip(await openTestPod(pod))
  })
})
