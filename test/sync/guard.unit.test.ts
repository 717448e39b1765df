import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { UsageError } from '../../lib/core/errors.ts'
import { checkSizes } from '../../lib/sync/guard.ts'
import type { FileEntry } from '../../lib/sync/select.ts'
import { formatBytes, parseSize } from '../../lib/core/units.ts'

const MiB = 1024 ** 2
const file = (path: string, size: number): FileEntry => ({ path, size, mtimeMs: 0, mode: 0o100644, isSymlink: false })

describe('large-file guard', () => {
  test('refuses files over the per-file limit, largest first, and names the flag', () => {
    const files = [file('app.py', 1000), file('model.safetensors', 300 * MiB), file('data.parquet', 80 * MiB)]
    assert.throws(
      () => checkSizes(files, { maxFileBytes: 50 * MiB, maxTotalBytes: 10_000 * MiB }),
      (error: unknown) => {
        assert.ok(error instanceof UsageError)
        assert.equal(error.exitCode, 2)
        const lines = error.message.split('\n')
        assert.match(lines[0]!, /2 file\(s\) over the 50\.0 MiB per-file limit/)
        assert.match(lines[1]!, /300 MiB\s+model\.safetensors/)
        assert.match(lines[2]!, /80\.0 MiB\s+data\.parquet/)
        assert.ok(!error.message.includes('app.py'))
        assert.match(error.message, /--max-file-size 300M/)
        return true
      },
    )
  })

  test('refuses a total over the limit and lists the largest files', () => {
    const files = Array.from({ length: 30 }, (_, i) => file(`chunk${String(i).padStart(2, '0')}.bin`, (i + 1) * MiB))
    assert.throws(
      () => checkSizes(files, { maxFileBytes: 50 * MiB, maxTotalBytes: 100 * MiB }),
      (error: unknown) => {
        assert.ok(error instanceof UsageError)
        assert.match(error.message, /totals 465 MiB in 30 files, over the 100 MiB limit/)
        assert.match(error.message, /30\.0 MiB\s+chunk29\.bin/)
        assert.match(error.message, /--max-total-size 470M/)
        return true
      },
    )
  })

  test('passes a selection within both limits', () => {
    assert.doesNotThrow(() => checkSizes([file('a', 10 * MiB), file('b', 10 * MiB)], { maxFileBytes: 10 * MiB, maxTotalBytes: 20 * MiB }))
  })

  test('sizes parse as people write them', () => {
    assert.equal(parseSize('50M'), 50 * MiB)
    assert.equal(parseSize('1.5G'), 1.5 * 1024 * MiB)
    assert.equal(parseSize('200k'), 200 * 1024)
    assert.equal(parseSize('2GiB'), 2 * 1024 * MiB)
    assert.equal(parseSize('123'), 123)
    assert.equal(parseSize('lots'), null)
    assert.equal(parseSize('-5M'), null)
    assert.equal(formatBytes(1536), '1.5 KiB')
  })
})
