import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { runCli } from '../../lib/cli/main.ts'
import { RemoteEvalError, TransportError } from '../../lib/core/errors.ts'
import { STANDARD_FLAGS } from '../../lib/core/flags.ts'

// The one reporter: a failure's message, then its fix on a line of its own, and the exit code;
// --version.

async function stderrOf(fail: () => never): Promise<{ lines: string[]; code: number | undefined }> {
  const lines: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  const before = process.exitCode
  process.stderr.write = ((chunk: string) => lines.push(...String(chunk).split('\n').filter(Boolean)) > 0) as typeof process.stderr.write
  try {
    await runCli({ help: 'Usage: x', flags: [], run: async () => fail() }, [])
    return { lines, code: process.exitCode as number | undefined }
  } finally {
    process.stderr.write = write
    process.exitCode = before
  }
}

test('the fix is carried apart and printed on its own line, after the message', async () => {
  const { lines, code } = await stderrOf(() => {
    throw new RemoteEvalError('The models on ssh h are not complete.', 10, { hint: 'download them there, then run again' })
  })
  assert.deepEqual(lines, ['[error] The models on ssh h are not complete.', '[error] Fix: download them there, then run again'])
  assert.equal(code, 10)
})

test('a failure without a fix is its message alone; the cause is kept', async () => {
  const cause = new Error('ECONNRESET')
  const error = new TransportError('Lost ssh h.', { cause })
  assert.equal(error.cause, cause)
  assert.equal(error.hint, undefined)
  const { lines, code } = await stderrOf(() => {
    throw error
  })
  assert.deepEqual(lines, ['[error] Lost ssh h.'])
  assert.equal(code, 5)
})

test('--version prints the version of package.json; a bug report names it', async () => {
  const out: string[] = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write
  try {
    await runCli({ help: 'Usage: x', flags: STANDARD_FLAGS, run: async () => undefined }, ['--version'])
  } finally {
    process.stdout.write = write
  }
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  assert.deepEqual(out, [`guardrails-remote-eval ${version}\n`])
  const { lines, code } = await stderrOf(() => {
    throw new TypeError('x is undefined')
  })
  assert.match(
    lines[0]!,
    new RegExp(`^\\[error\\] Unexpected failure \\(a bug in guardrails-remote-eval ${version.replaceAll('.', '\\.')}; please report it`),
  )
  assert.equal(code, 1)
})
