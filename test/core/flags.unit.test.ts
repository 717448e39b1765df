import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFlags, wholeNumberFlag, type FlagSpec } from '../../lib/core/flags.ts'

// Flag parsing without a target: whole numbers are plain decimal digits in range, nothing else.

const SPECS: FlagSpec[] = [{ name: 'jobs', kind: 'string', value: 'N', description: 'n' }]
const jobs = (text?: string) =>
  wholeNumberFlag(parseFlags(text === undefined ? [] : [`--jobs=${text}`], SPECS), 'jobs', { min: 1, max: 32, unit: 'jobs', example: 4 })

test('whole numbers: plain digits in range are taken; hex, exponents, signs, fractions, blanks and out-of-range values are refused', () => {
  assert.equal(jobs(), undefined)
  assert.equal(jobs('1'), 1)
  assert.equal(jobs('32'), 32)
  assert.equal(jobs('007'), 7)
  for (const bad of ['0x10', '1e1', '+4', '-1', '4.0', '4.5', ' 4', '0', '33', '99999999999', 'Infinity', 'NaN']) {
    assert.throws(
      () => jobs(bad),
      new RegExp(
        `^UsageError: --jobs ${JSON.stringify(bad).replace(/[.+*?()[\]]/g, '\\$&')} is not a whole number of jobs from 1 to 32 \\(plain digits\\), e\\.g\\. --jobs 4\\.$`,
      ),
      bad,
    )
  }
})

const RUNNER: FlagSpec[] = [
  { name: 'host', kind: 'string', value: 'HOST', description: 'h' },
  { name: 'ssh-option', kind: 'list', value: 'K=V', description: 'o' },
  { name: 'dry-run', kind: 'boolean', description: 'd' },
  { name: 'no-wait', kind: 'boolean', description: 'w' },
  { name: 'max-file-size', kind: 'string', value: 'SIZE', description: 's', default: '50M' },
]

test('values: --name value and --name=value alike; lists repeat; defaults fill in; booleans false when absent', () => {
  assert.deepEqual(parseFlags(['--host', 'gpu', '--ssh-option=Port=2222', '--ssh-option', 'User=me', '--dry-run'], RUNNER), {
    host: 'gpu',
    'ssh-option': ['Port=2222', 'User=me'],
    'dry-run': true,
    'no-wait': false,
    'max-file-size': '50M',
  })
  assert.deepEqual(parseFlags([], RUNNER), {
    host: undefined,
    'ssh-option': [],
    'dry-run': false,
    'no-wait': false,
    'max-file-size': '50M',
  })
})

test('--no-X: a declared flag of its own is true when given, and --X, which it would negate, is unknown', () => {
  assert.equal(parseFlags(['--no-wait'], RUNNER)['no-wait'], true)
  assert.throws(() => parseFlags(['--wait'], RUNNER), /^UsageWithHelpError: Unknown arg: --wait$/)
  assert.throws(() => parseFlags(['--wait=1'], RUNNER), /^UsageWithHelpError: Unknown arg: --wait$/)
  // For any other boolean, --no-X says X is off: the default, as in every minimist-based CLI.
  assert.equal(parseFlags(['--no-dry-run'], RUNNER)['dry-run'], false)
  assert.equal(parseFlags(['--dry-run', '--no-dry-run'], RUNNER)['dry-run'], false)
})

test('mistakes are usage errors that say what to write', () => {
  assert.throws(() => parseFlags(['--dry-run=yes'], RUNNER), /^UsageError: --dry-run takes no value: write --dry-run alone\.$/)
  assert.throws(() => parseFlags(['--host'], RUNNER), /^UsageError: --host needs a value \(HOST\); it was empty or missing\.$/)
  assert.throws(() => parseFlags(['--host='], RUNNER), /needs a value/)
  assert.throws(() => parseFlags(['--host', 'a', '--host', 'b'], RUNNER), /^UsageError: --host was given 2 times; give it once\.$/)
  assert.throws(() => parseFlags(['--suites', 'x'], RUNNER), /^UsageWithHelpError: Unknown arg: --suites$/)
  assert.throws(
    () => parseFlags(['gpu-box'], RUNNER),
    /^UsageWithHelpError: Unexpected argument: gpu-box \(flags take the form --name value\)$/,
  )
})
