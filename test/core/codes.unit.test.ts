import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { test } from 'node:test'
import { EXIT_CODES, ExitCode, exitCodesHelp } from '../../lib/core/errors.ts'
import { RemoteStatus, STATUS_VARS, statusVariable, type RemoteStatusName } from '../../lib/core/remote-status.ts'
import { ADOPT_USAGE } from '../../lib/cli/adopt.ts'
import { DATASETS_USAGE, MODELS_USAGE } from '../../lib/cli/assets.ts'
import { SYNC_USAGE } from '../../lib/cli/sync.ts'
import { K8S_EVAL_USAGE, SSH_EVAL_USAGE } from '../../lib/eval/options.ts'

// Each set of codes is one table: the exit codes (with the help texts and the README made from or
// checked against it) and the statuses our bash functions end with.

const LIB = new URL('../../lib/', import.meta.url)
const codesIn = (help: string) => [...help.slice(help.indexOf('Exit codes:')).matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]))

test('ExitCode is the table; a help lists the codes asked for, in order, with their meaning', () => {
  assert.deepEqual(ExitCode, Object.fromEntries(Object.entries(EXIT_CODES).map(([name, [code]]) => [name, code])))
  assert.equal(exitCodesHelp(['transport', 'ok']), `Exit codes:\n  0    ${EXIT_CODES.ok[1]}\n  5    ${EXIT_CODES.transport[1]}`)
})

test("each script's --help lists the codes it can return and no others", () => {
  const all = Object.values(EXIT_CODES).map(([code]) => code)
  assert.deepEqual(codesIn(SSH_EVAL_USAGE), all)
  assert.deepEqual(codesIn(K8S_EVAL_USAGE), all)
  assert.deepEqual(codesIn(SYNC_USAGE), [0, 2, 3, 4, 5, 12, 130])
  assert.deepEqual(codesIn(MODELS_USAGE), [0, 2, 3, 4, 5, 10, 12, 130])
  assert.deepEqual(codesIn(DATASETS_USAGE), [0, 2, 3, 4, 5, 11, 12, 130])
  assert.deepEqual(codesIn(ADOPT_USAGE), [0, 2, 130])
})

test("the README's and docs/REMOTE_EVAL.md's exit code tables hold exactly the table's codes", () => {
  for (const doc of ['../../README.md', '../../docs/REMOTE_EVAL.md']) {
    const text = readFileSync(new URL(doc, import.meta.url), 'utf8')
    const section = text.slice(text.indexOf('## Exit codes'), text.indexOf('\n## ', text.indexOf('## Exit codes') + 1))
    const codes = [...section.matchAll(/^\| ([\d /]+) \|/gm)].flatMap((m) => m[1]!.split('/').map((c) => Number(c.trim())))
    assert.deepEqual(
      codes,
      Object.values(EXIT_CODES).map(([code]) => code),
      doc,
    )
  }
})

test('the bash libraries end with named statuses only, each one of the table, each number once', () => {
  const numbers = Object.values(RemoteStatus)
  assert.equal(new Set(numbers).size, numbers.length, 'one meaning per number')
  assert.ok(numbers.every((n) => n > 64 && n < 126))
  const known = new Set((Object.keys(RemoteStatus) as RemoteStatusName[]).map(statusVariable))
  for (const folder of readdirSync(LIB)) {
    for (const file of readdirSync(new URL(`${folder}/`, LIB)).filter((f) => f.endsWith('.sh'))) {
      const text = readFileSync(new URL(`${folder}/${file}`, LIB), 'utf8')
      assert.deepEqual(text.match(/\b(return|exit) ([3-9]|[1-9]\d+)\b/g), null, `${folder}/${file} ends with a raw number`)
      for (const [, name] of text.matchAll(/\$\{?(status_\w+)/g))
        assert.ok(known.has(name!), `${folder}/${file}: ${name} is not in RemoteStatus`)
    }
  }
  assert.match(STATUS_VARS, /^status_bad_path=65 status_no_directory=66 /)
})
