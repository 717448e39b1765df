import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import type { FileEntry } from '../../lib/sync/select.ts'
import { fingerprint, formatState, parseState, planTransfer, stateLine, stateUpdate, type StateEntry } from '../../lib/sync/state.ts'

// Sync planning without a target: what a push sends and deletes, from the selection and the state
// the target recorded.

const file = (p: string, size = 3, mtimeMs = 1000, mode = 0o100644): FileEntry => ({ path: p, size, mtimeMs, mode, isSymlink: false })
const entry = (f: FileEntry, sha256: string | null = null): StateEntry => ({
  path: f.path,
  size: f.size,
  mtimeMs: f.mtimeMs,
  mode: f.mode,
  sha256,
})

test('the state round-trips, sorted by path bytes; a foreign or broken state is "nothing known"', () => {
  const entries = [entry(file('b.py')), entry(file('a/x.py'), 'ab'), entry(file('\xff.py'))]
  const text = formatState(entries)
  assert.deepEqual(
    text.split('\n').slice(1, -1),
    ['a/x.py', 'b.py', '\xff.py'].map((p) => stateLine(entries.find((e) => e.path === p)!)),
  )
  assert.deepEqual(
    [...parseState(text).values()],
    [...entries].sort((a, b) => (a.path < b.path ? -1 : 1)),
  )
  assert.equal(parseState('{"format":"other","version":2}\n["a",1,1,1,null]\n').size, 0)
  assert.equal(parseState('not json').size, 0)
  assert.equal(parseState(undefined).size, 0)
  // Paths that are not plain relative ones are never ours to delete.
  assert.deepEqual(
    [
      ...parseState(
        '{"format":"remote-eval-sync-state","version":2}\n["../x",1,1,1,null]\n["/etc/passwd",1,1,1,null]\n["ok",1,1,1,null]\n',
      ).keys(),
    ],
    ['ok'],
  )
})

test('a version-1 state: text names are read as their UTF-8 bytes; names already broken (U+FFFD) are dropped', () => {
  const v1 = '{"format":"remote-eval-sync-state","version":1}\n["é.py",1,1,1,null]\n["bad\ufffd.py",1,1,1,null]\n'
  assert.deepEqual([...parseState(v1).keys()], [Buffer.from('é.py').toString('latin1')])
})

test('first push sends everything; an unchanged one nothing; mtime alone sends by rsync but not by hash', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'gre-plan-'))
  await writeFile(path.join(root, 'a.py'), 'one')
  await writeFile(path.join(root, 'b.py'), 'two')
  const files = [file('a.py'), file('b.py')]
  const first = await planTransfer({ root, files, previous: new Map(), compareContent: true })
  assert.deepEqual(first.send, ['a.py', 'b.py'])
  assert.deepEqual(first.remove, [])
  const previous = new Map(first.next.map((e) => [e.path, e]))
  assert.deepEqual((await planTransfer({ root, files, previous, compareContent: true })).send, [])
  const touched = [file('a.py', 3, 2000), file('b.py')]
  assert.deepEqual(
    (await planTransfer({ root, files: touched, previous, compareContent: false })).send,
    ['a.py'],
    'rsync: mtime is a change',
  )
  assert.deepEqual((await planTransfer({ root, files: touched, previous, compareContent: true })).send, [], 'tar: same content, not sent')
  await writeFile(path.join(root, 'a.py'), 'new')
  assert.deepEqual((await planTransfer({ root, files: touched, previous, compareContent: true })).send, ['a.py'], 'same size, new content')
  assert.deepEqual(
    (await planTransfer({ root, files: [file('a.py', 3, 1000, 0o100755), file('b.py')], previous, compareContent: true })).send,
    ['a.py'],
    'mode',
  )
})

test('deletes only what it pushed before and the exclude list does not cover, each with its state line', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'gre-plan-'))
  const gone = entry(file('old.py'), 'aa')
  const previous = new Map([gone, entry(file('.env.eval')), entry(file('reports/evaluations/r/report.json'))].map((e) => [e.path, e]))
  const plan = await planTransfer({ root, files: [], previous, compareContent: false })
  assert.deepEqual(plan.remove, [{ path: 'old.py', stateLine: stateLine(gone) }])
})

test('the fingerprint changes with any path, size, mtime or mode, and with the remote directory', () => {
  const files = [file('a.py')]
  const base = fingerprint(files, '/srv/a')
  for (const other of [[file('b.py')], [file('a.py', 4)], [file('a.py', 3, 1)], [file('a.py', 3, 1000, 0o100755)]])
    assert.notEqual(fingerprint(other, '/srv/a'), base)
  assert.notEqual(fingerprint(files, '/srv/b'), base)
  assert.equal(fingerprint([file('a.py')], '/srv/a'), base)
})

describe('the state as a change', () => {
  const entry = (p: string, size: number) => ({ path: p, size, mtimeMs: 1, mode: 0o644, sha256: null })
  test('lines to drop and to add against the target state; whole when that state is of another version or unknown', () => {
    const before = formatState([entry('a', 1), entry('b', 2), entry('c', 3)])
    const after = [entry('a', 1), entry('b', 20), entry('d', 4)]
    const drop = [stateLine(entry('b', 2)), stateLine(entry('c', 3))]
    const add = [stateLine(entry('b', 20)), stateLine(entry('d', 4))]
    assert.equal(stateUpdate(before, after), `@@change 2\n${drop.join('\n')}\n${add.join('\n')}\n`)
    assert.equal(stateUpdate(undefined, after), formatState(after), 'unknown: the state as it is')
    assert.equal(stateUpdate('{"format":"remote-eval-sync-state","version":1}\n["a",1,1,420,null]\n', after), formatState(after))
  })
})
