import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseFlags, wholeNumberFlag, type FlagSpec } from '../../lib/core/flags.ts'

// Flag parsing without a target: whole numbers are plain decimal digits in range, nothing else.

const SPECS: FlagSpec[] = [{ name: 'jobs', kind: 'string', value: 'N', description: 'n' }]
const jobs = (text?: string) => wholeNumberFlag(parseFlags(text === undefined ? [] : [`--jobs=${text}`], SPECS), 'jobs', { min: 1, max: 32, unit: 'jobs', example: 4 })

test('whole numbers: plain digits in range are taken; hex, exponents, signs, fractions, blanks and out-of-range values are refused', () => {
  assert.equal(jobs(), undefined)
  assert.equal(jobs('1'), 1)
  assert.equal(jobs('32'), 32)
  assert.equal(jobs('007'), 7)
  for (const bad of ['0x10', '1e1', '+4', '-1', '4.0', '4.5', ' 4', '0', '33', '99999999999', 'Infinity', 'NaN']) {
    assert.throws(() => jobs(bad), new RegExp(`^UsageError: --jobs ${JSON.stringify(bad).replace(/[.+*?()[\]]/g, '\\$&')} is not a whole number of jobs from 1 to 32 \\(plain digits\\), e\\.g\\. --jobs 4\\.$`), bad)
  }
})
