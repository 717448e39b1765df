import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { test } from 'node:test'
import { SCRIPTS, runMake } from '../support/harness.ts'

// `make help` is where a user looks first: every variable a target reads is named there.
test('make help names every variable the make targets read', async () => {
  const makefile = await readFile(path.join(path.dirname(SCRIPTS), 'remote-eval.mk'), 'utf8')
  const internal = new Set(['MAKEFILE_LIST', 'REMOTE_EVAL_HOME'])
  const read = [...new Set([...makefile.matchAll(/\$\(([A-Z][A-Z_]+)\)/g)].map((m) => m[1]!))].filter((v) => !internal.has(v))
  assert.ok(read.length >= 10, read.join(' '))
  const help = await runMake('help', {})
  assert.equal(help.code, 0, help.stderr)
  const missing = read.filter((variable) => !new RegExp(`\\b${variable}=`).test(help.stdout))
  assert.deepEqual(missing, [], `not in make help:\n${help.stdout}`)
})
