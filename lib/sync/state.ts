import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readlink } from 'node:fs/promises'
import { isByteString, nameFromText, pathUnder } from '../core/filenames.ts'
import { isExcluded } from '../core/excludes.ts'
import type { FileEntry } from './select.ts'

// What the target holds after a push, recorded on the target itself (.remote-eval/sync-state), so
// that any machine can push next: which paths we put there (the only ones we ever delete), and
// their size, mtime, mode and content hash (so unchanged files are not sent again). Paths are byte
// strings (lib/core/filenames.ts); version 1 held them decoded as UTF-8 text.

export interface StateEntry {
  path: string
  size: number
  mtimeMs: number
  mode: number
  /** Content hash; null when the push that wrote the entry did not need one (rsync compares itself). */
  sha256: string | null
}

const HEADER = { format: 'remote-eval-sync-state', version: 2 }

/** One file's line of the state: `[path, size, mtimeMs, mode, sha256]`. */
export const stateLine = (e: StateEntry): string => JSON.stringify([e.path, e.size, e.mtimeMs, e.mode, e.sha256])

/** JSON lines: a header, then one stateLine per file, sorted by path. */
export function formatState(entries: readonly StateEntry[]): string {
  const lines = [JSON.stringify(HEADER)]
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) lines.push(stateLine(e))
  return lines.join('\n') + '\n'
}

/**
 * The new state as tree_state_from (lib/transport/tree.sh) reads it: a change of `previous`, the
 * target's state text, when that is a state of this version ("@@change N", the N lines to drop, the
 * lines to add: a few lines for a few changed files, where the whole state of a large tree is tens
 * of KB); else the whole state.
 */
export function stateUpdate(previous: string | undefined, entries: readonly StateEntry[]): string {
  const next = formatState(entries)
  const [head, ...rows] = (previous ?? '').split('\n').filter(Boolean)
  if (head !== JSON.stringify(HEADER)) return next
  const [, ...wanted] = next.split('\n').filter(Boolean)
  const had = new Set(rows)
  const keep = new Set(wanted)
  const drop = [...new Set(rows.filter((row) => !keep.has(row)))]
  return [`@@change ${drop.length}`, ...drop, ...wanted.filter((row) => !had.has(row))].map((line) => `${line}\n`).join('')
}

/** Reads a state file's text; anything unreadable counts as "nothing known" (everything is sent). */
export function parseState(text: string | undefined): Map<string, StateEntry> {
  const state = new Map<string, StateEntry>()
  if (!text) return state
  const [head, ...rows] = text.split('\n').filter(Boolean)
  try {
    const header = JSON.parse(head ?? '') as { format: string; version: number }
    if (header.format !== HEADER.format || (header.version !== HEADER.version && header.version !== 1)) return state
    for (const row of rows) {
      const [name, size, mtimeMs, mode, sha256] = JSON.parse(row) as [string, number, number, number, string | null]
      if (typeof name !== 'string') continue
      // Version 1's text names are the UTF-8 bytes they were decoded from, except where decoding
      // had already failed (U+FFFD): such a name never matched a file, so it is no path of ours.
      const p = header.version === 1 ? (name.includes('\ufffd') ? '' : nameFromText(name)) : name
      if (isByteString(p) && isPlainRelative(p)) state.set(p, { path: p, size, mtimeMs, mode, sha256 })
    }
  } catch {
    return new Map()
  }
  return state
}

/** A relative path with no empty, `.` or `..` component: the only kind we ever write or delete. */
export function isPlainRelative(p: string): boolean {
  return p !== '' && !p.startsWith('/') && p.split('/').every((part) => part !== '' && part !== '.' && part !== '..')
}

/**
 * Fingerprint of a selection: changes when any selected path, size, mtime or mode changes, or the
 * target directory does. Equal to the target's stamp means there is nothing to push.
 */
export function fingerprint(files: readonly FileEntry[], remoteDir: string): string {
  const hash = createHash('sha256')
  hash.update(JSON.stringify([HEADER, remoteDir]))
  for (const f of files) hash.update(`\n${JSON.stringify([f.path, f.size, f.mtimeMs, f.mode])}`)
  return hash.digest('hex')
}

/** sha256 of a file's content, or of a symlink's target text. */
export async function hashFile(root: string, entry: FileEntry): Promise<string> {
  const full = pathUnder(root, entry.path)
  const hash = createHash('sha256')
  if (entry.isSymlink) return hash.update(await readlink(full, { encoding: 'buffer' })).digest('hex')
  for await (const chunk of createReadStream(full)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** A path to delete on the target, with its line of the state, kept there should it stay. */
export interface Removal {
  path: string
  stateLine: string
}

export interface TransferPlan {
  send: string[]
  remove: Removal[]
  next: StateEntry[]
}

/**
 * Compares the selection with the target's state. A file is sent when it is new, or its size or
 * mode changed, or its mtime changed and (with `compareContent`) its content hash did too.
 * Without `compareContent` (rsync, which compares by itself) an mtime change is enough.
 * Paths we pushed before that are gone locally are removed, unless the exclude list covers them;
 * each goes with its state line, which the target keeps in the new state if it cannot delete it.
 */
export async function planTransfer(options: {
  root: string
  files: readonly FileEntry[]
  previous: ReadonlyMap<string, StateEntry>
  compareContent: boolean
}): Promise<TransferPlan> {
  const { root, files, previous, compareContent } = options
  const send: string[] = []
  const next: StateEntry[] = []
  for (const file of files) {
    const before = previous.get(file.path)
    const unchangedStat = before && before.size === file.size && before.mode === file.mode
    let sha256: string | null = null
    let changed = true
    if (unchangedStat && before.mtimeMs === file.mtimeMs) {
      changed = false
      sha256 = before.sha256
    } else if (compareContent) {
      sha256 = await hashFile(root, file)
      changed = !(unchangedStat && before.sha256 === sha256)
    }
    if (changed) send.push(file.path)
    next.push({ path: file.path, size: file.size, mtimeMs: file.mtimeMs, mode: file.mode, sha256 })
  }
  const selected = new Set(files.map((f) => f.path))
  const remove = [...previous.values()]
    .filter((e) => !selected.has(e.path) && !isExcluded(e.path))
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((e) => ({ path: e.path, stateLine: stateLine(e) }))
  return { send, remove, next }
}
