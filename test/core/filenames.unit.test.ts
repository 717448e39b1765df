import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { nameFromBytes, nameFromText, nulList, showName } from '../../lib/core/filenames.ts'
import { formatState, parseState } from '../../lib/sync/state.ts'

// Byte-string names (lib/core/filenames.ts) and the sync state that stores them.

describe('byte-string file names', () => {
  test('showName: UTF-8 where valid, \\xNN where not, control characters escaped', () => {
    const cases: Array<[string, string]> = [
      ['odd/secret\xff.log', 'odd/secret\\xff.log'],
      [nameFromText('ünï/ok.py'), 'ünï/ok.py'],
      [nameFromText('日本/語.py'), '日本/語.py'],
      ['caf\xe9.py', 'caf\\xe9.py'],
      ['over\xc0\x80long', 'over\\xc0\\x80long'], // an overlong NUL
      ['sur\xed\xa0\x80', 'sur\\xed\\xa0\\x80'], // a UTF-16 surrogate
      ['cut\xe6\x97', 'cut\\xe6\\x97'], // a sequence cut short
      ['new\nline\ttab\x1b[31m', 'new\\nline\\ttab\\u001b[31m'],
      [nameFromText('ls\u2028ep'), 'ls\\u2028ep'],
      ['plain/back\\slash.py', 'plain/back\\slash.py'],
    ]
    for (const [name, shown] of cases) assert.equal(showName(name), shown, JSON.stringify(name))
  })

  test('text typed by a user becomes the bytes the shell gave us; lists are NUL-terminated bytes', () => {
    assert.equal(nameFromText('é'), '\xc3\xa9')
    assert.deepEqual(nulList(['a\xff', 'b']), Buffer.from([0x61, 0xff, 0, 0x62, 0]))
    assert.equal(nameFromBytes(Buffer.from([0x63, 0xe9])), 'c\xe9')
  })
})

describe('sync state', () => {
  const entry = (path: string) => ({ path, size: 1, mtimeMs: 2, mode: 0o100644, sha256: null })

  test('byte names round-trip through the state text', () => {
    const names = ['odd/secret\xff.py', nameFromText('ünï/ok.py'), 'we\nird']
    const parsed = parseState(formatState(names.map(entry)))
    assert.deepEqual([...parsed.keys()].sort(), [...names].sort())
  })

  test("version 1's text names are read as their UTF-8 bytes; names that had lost bytes (U+FFFD) are dropped", () => {
    const v1 = [
      JSON.stringify({ format: 'remote-eval-sync-state', version: 1 }),
      JSON.stringify(['ünï/ok.py', 1, 2, 0o100644, null]),
      JSON.stringify(['odd/secret\ufffd.log', 1, 2, 0o100644, null]),
      JSON.stringify(['plain.py', 1, 2, 0o100644, null]),
    ].join('\n')
    assert.deepEqual([...parseState(v1).keys()].sort(), ['plain.py', '\xc3\xbcn\xc3\xaf/ok.py'].sort())
  })

  test('a version-2 state with a char that no byte string has, or an unsafe path, keeps nothing of it', () => {
    const text = [
      JSON.stringify({ format: 'remote-eval-sync-state', version: 2 }),
      JSON.stringify(['日本.py', 1, 2, 0o100644, null]),
      JSON.stringify(['../up.py', 1, 2, 0o100644, null]),
      JSON.stringify(['ok.py', 1, 2, 0o100644, null]),
    ].join('\n')
    assert.deepEqual([...parseState(text).keys()], ['ok.py'])
  })
})
