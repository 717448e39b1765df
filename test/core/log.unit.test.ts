import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PassThrough } from 'node:stream'
import { createLogger, redact } from '../../lib/core/log.ts'

// What the local side hides in every line it prints (and in the stdout JSON).

test('URL credentials are hidden, whatever the secrets', () => {
  assert.equal(
    redact('HF_ENDPOINT=https://me:p%40ss-word@mirror.local/hf and git+ssh://git:x@h/r', []),
    'HF_ENDPOINT=https://***@mirror.local/hf and git+ssh://***@h/r',
  )
  assert.equal(redact('https://mirror.local/hf user@example.org', []), 'https://mirror.local/hf user@example.org')
})

test('a secret cut by a line break is hidden on both sides, from 8 characters on', () => {
  const token = 'hf_abcdefghijklmnopqrstuvwxyz'
  assert.equal(redact(`token ${token.slice(0, 10)}\n${token.slice(10)} next`, [token]), 'token ***\n*** next')
  assert.equal(redact(`short ${token.slice(0, 7)}\n`, [token]), `short ${token.slice(0, 7)}\n`)
  assert.equal(redact(`whole ${token} here`, [token]), 'whole *** here')
})

test('on a terminal, live lines stay below the others and are redrawn after each line; elsewhere there are none', () => {
  let written = ''
  const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 40 })
  tty.on('data', (chunk: Buffer) => (written += chunk.toString()))
  const logger = createLogger({ stream: tty, color: false })
  logger.live!('a', 'models', 'org/a: 1.0 MiB of 3.0 MiB (33 %) and a long tail that is cut')
  logger.step('models', 'org/b: checking')
  logger.live!('a', 'models', null)
  logger.step('done', 'x')
  const ESC = String.fromCharCode(27)
  assert.equal(
    written,
    `[models] org/a: 1.0 MiB of 3.0 MiB (3\n` +
      `${ESC}[1A${ESC}[J[models] org/b: checking\n[models] org/a: 1.0 MiB of 3.0 MiB (3\n` +
      `${ESC}[1A${ESC}[J` +
      `[done] x\n`,
  )
  assert.equal(createLogger({ stream: new PassThrough() }).live, undefined)
})
