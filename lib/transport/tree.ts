import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { RemotePrerequisiteError, TransportError, type RemoteEvalError } from '../core/errors.ts'
import { nulList, pathUnder, showName } from '../core/filenames.ts'
import { LAYOUT_VARS, TOOL_DIR } from '../core/layout.ts'
import { startProcess } from '../core/process.ts'
import { tarExcludeArgs } from '../core/excludes.ts'
import { formatBytes } from '../core/units.ts'
import { gnuTar } from './prereq.ts'
import { callFunction, loadBashLibrary } from './script.ts'
import type { PullReport, PushPlan, PushReport, Transport } from './types.ts'
import { lastLine } from '../core/text.ts'
import { RemoteStatus } from '../core/remote-status.ts'

// File-tree operations on the target, as bash scripts that any transport runs. The tar variants
// need nothing but bash and tar on the target, so they serve the local and kubectl transports and
// SSH targets without rsync.

const TREE_SH = loadBashLibrary(new URL('./tree.sh', import.meta.url))
const treeScript = (fn: string) => callFunction(TREE_SH, fn, LAYOUT_VARS)

/** The removals as tree_begin reads them from stdin: NUL-terminated pairs of path (bytes) and state line. */
export const removalList = (removals: PushPlan['remove']) =>
  Buffer.concat(removals.flatMap((r) => [nulList([r.path]), Buffer.from(`${r.stateLine}\0`)]))

/** What tree_begin says it did: files really deleted, and the state lines of those it could not. */
export function removalOutcome(
  stdout: string,
  stderrTail: readonly string[],
): Pick<PushReport, 'filesRemoved' | 'filesKept' | 'keptReason'> & { keptLines: string[] } {
  const keptLines = [...stdout.matchAll(/^kept=(.*)$/gm)].map((m) => m[1]!)
  return {
    filesRemoved: Number(/^removed=(\d+)$/m.exec(stdout)?.[1] ?? 0),
    filesKept: keptLines.length,
    keptReason: keptLines.length ? (stderrTail.find((line) => /cannot remove/i.test(line))?.trim() ?? lastLine(stderrTail)) : undefined,
    keptLines,
  }
}

/** rsync push, before the transfer when it claims the directory or deletes: `dir marker list_bytes`, the removals on stdin. */
export const BEGIN_SCRIPT = treeScript('tree_begin')
/** rsync push, after the transfer: `dir stamp gzip`, the new state on stdin. */
export const COMMIT_SCRIPT = treeScript('tree_commit')
/** tar push in one round trip: `dir marker stamp gzip list_bytes`, the removals then the tar stream on stdin. */
export const TAR_APPLY_SCRIPT = treeScript('tree_apply_tar')
/** pull.sh: a directory as one stream (its listing, then a tar archive). */
export const PULL_LIBRARY = loadBashLibrary(new URL('./pull.sh', import.meta.url))
/** `dir`: its listing, then a tar archive, on stdout. */
export const LIST_AND_TAR_SCRIPT = callFunction(PULL_LIBRARY, 'tree_list_and_tar', LAYOUT_VARS)

/**
 * Pushes plan.send as one tar stream (gzip-compressed when asked), with deletions and the new
 * state, in one round trip. The state rides in the stream under a one-off name that no exclude
 * rule matches, renamed into the tool's directory inside the archive.
 */
export async function tarPush(transport: Transport, plan: PushPlan, compress: boolean): Promise<PushReport> {
  const stage = await mkdtemp(path.join(tmpdir(), 'gre-push-'))
  try {
    const staged = `remote-eval-state-${randomBytes(8).toString('hex')}`
    await writeFile(path.join(stage, staged), plan.state)
    const tarArgs = ['-c', '-f', '-', ...(compress ? ['-z'] : []), ...tarExcludeArgs(), '--no-recursion']
    tarArgs.push(`--transform=s,^${staged}$,${TOOL_DIR}/incoming-state,`)
    tarArgs.push('-C', plan.localRoot, '--null', '-T', '-', '-C', stage, staged)
    const producer = startProcess(await gnuTar(), tarArgs, {
      input: [nulList(withParentDirs(plan.send))],
      stdout: 'stream',
      env: { ...process.env, COPYFILE_DISABLE: '1' },
    })
    const removals = removalList(plan.remove)
    const args = [plan.remoteDir, plan.claimMarker ?? '', plan.stamp, compress ? '1' : '0', String(removals.length)]
    // A small archive travels in the session holding the lock; a larger one streams in its own.
    const head = plan.session ? await readUpTo(producer.stdout, SESSION_ARCHIVE_MAX) : null
    const applying = head?.ended
      ? transport.run(TAR_APPLY_SCRIPT, args, { stdin: [removals, head.data], session: plan.session })
      : transport.run(TAR_APPLY_SCRIPT, args, { stdin: [removals, ...(head ? [head.data] : []), producer.stdout] })
    // Whichever side fails first, the other must not be left waiting on a pipe.
    applying.catch(() => producer.kill('SIGKILL'))
    const [applied, packed] = await Promise.allSettled([applying, producer.result])
    if (applied.status === 'rejected') throw applied.reason
    if (packed.status === 'rejected')
      throw new TransportError(`Cannot run tar on this machine: ${(packed.reason as Error).message}`, { cause: packed.reason })
    const [result, local] = [applied.value, packed.value]
    if (result.exitCode === 0 && local.exitCode !== 0) {
      throw new TransportError(`Local tar failed while packing files: ${local.stderrTail.join(' ') || 'no message'}`)
    }
    if (result.exitCode !== 0) {
      throw await pushFailure(transport, plan.remoteDir, {
        what: `Applying the push in ${plan.remoteDir} on ${transport.target} failed`,
        exitCode: result.exitCode,
        stderrTail: result.stderrTail,
      })
    }
    const { filesRemoved, filesKept, keptReason } = removalOutcome(result.stdout, result.stderrTail)
    return { method: 'tar', filesSent: plan.send.length, filesRemoved, filesKept, keptReason, bytesSent: result.bytesSent }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}

/** Up to this many bytes of archive travel in the lock's session (read whole before they go). */
const SESSION_ARCHIVE_MAX = 8 * 1024 ** 2

/** The stream's first bytes, past `max` or to its end (then `ended`); the rest stays unread in it. */
function readUpTo(stream: Readable, max: number): Promise<{ data: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (ended: boolean) => {
      stream.off('data', onData).off('end', onEnd).off('error', reject)
      stream.pause()
      resolve({ data: Buffer.concat(chunks), ended })
    }
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      if (size > max) finish(false)
    }
    const onEnd = () => finish(true)
    stream.on('data', onData).once('end', onEnd).once('error', reject)
  })
}

/**
 * The paths with every parent directory listed before them. With directory entries in the stream,
 * tar replaces a directory that became a symlink on the target instead of writing through it.
 */
export function withParentDirs(paths: readonly string[]): string[] {
  const dirs = new Set<string>()
  for (const p of paths) for (let at = p.indexOf('/'); at >= 0; at = p.indexOf('/', at + 1)) dirs.add(p.slice(0, at))
  return [...[...dirs].sort(), ...paths]
}

/** "size path" records (NUL-terminated, names as byte strings): the files a pull must bring. */
function parseListing(listing: Buffer): Map<string, number> {
  const files = new Map<string, number>()
  for (const record of listing.toString('latin1').split('\0').filter(Boolean)) {
    const space = record.indexOf(' ')
    files.set(record.slice(space + 1), Number(record.slice(0, space)))
  }
  return files
}

/**
 * A sink for tree_list_and_tar's stdout: keeps the listing ahead of the archive (its length, a
 * newline, the records) and passes the archive on to `archive`.
 */
function listingThenArchive(archive: Writable): { sink: Writable; listing: () => Buffer | null } {
  let head = Buffer.alloc(0)
  let length: number | null = null
  let listing: Buffer | null = null
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (listing) return archive.write(chunk) ? done() : archive.once('drain', done)
      head = Buffer.concat([head, chunk])
      if (length === null && head.includes(10)) {
        length = Number(head.subarray(0, head.indexOf(10)).toString('latin1'))
        head = head.subarray(head.indexOf(10) + 1)
      }
      if (length === null || head.length < length) return done()
      listing = head.subarray(0, length)
      const rest = head.subarray(length)
      return rest.length && !archive.write(rest) ? archive.once('drain', done) : done()
    },
  })
  return { sink, listing: () => listing }
}

/** Pulls remoteDir as a tar stream into localDir, in one round trip; then checks every listed file arrived whole. */
export function tarPull(transport: Transport, remoteDir: string, localDir: string): Promise<PullReport> {
  return unpackListedArchive(localDir, {
    from: { remoteDir, target: transport.target },
    feed: (sink, signal) => transport.run(LIST_AND_TAR_SCRIPT, [remoteDir], { stdoutSink: sink, signal }),
  })
}

/**
 * Unpacks into localDir a directory that already came as tree_list_and_tar streams it (pull.sh),
 * at the end of a followed run; checks it as a pull does.
 */
export function unpackReceived(received: Buffer, localDir: string, from: { remoteDir: string; target: string }): Promise<PullReport> {
  return unpackListedArchive(localDir, {
    from,
    feed: async (sink) => {
      sink.write(received)
      return { exitCode: 0, stderrTail: [] }
    },
  })
}

/**
 * tree_list_and_tar's stream, as `feed` writes it into the sink it is given, unpacked into
 * localDir by a local tar; then every listed file must be there whole.
 */
async function unpackListedArchive(
  localDir: string,
  source: {
    from: { remoteDir: string; target: string }
    feed: (sink: Writable, signal: AbortSignal) => Promise<{ exitCode: number; stderrTail: readonly string[] }>
  },
): Promise<PullReport> {
  const { remoteDir, target } = source.from
  const made = await mkdir(localDir, { recursive: true })
  const pipe = new PassThrough()
  const stop = new AbortController()
  const extractor = startProcess(await gnuTar(), ['-x', '-o', '-f', '-', '-C', localDir], { input: [pipe] })
  // A local tar that dies (or cannot start) must stop the remote one rather than leave it blocked.
  const extracted = extractor.result.then(
    (r) => (r.exitCode !== 0 && stop.abort(), r),
    (error: Error) => (stop.abort(), error),
  )
  const split = listingThenArchive(pipe)
  const result = await source.feed(split.sink, stop.signal).catch((error: unknown) => {
    extractor.kill('SIGKILL')
    throw error
  })
  // What the sink still holds for the archive goes on before the archive ends.
  await new Promise<void>((resolve) => split.sink.end(() => resolve()))
  pipe.end()
  const local = await extracted
  if (result.exitCode === RemoteStatus.noDirectory && !split.listing()) {
    // Nothing came: leave nothing here either.
    if (made) await rm(made, { recursive: true, force: true })
    throw new TransportError(`Cannot pull ${remoteDir} from ${target}: ${lastLine(result.stderrTail)}`)
  }
  if (local instanceof Error) throw new TransportError(`Cannot run tar on this machine: ${local.message}`, { cause: local })
  if (local.exitCode !== 0) throw new TransportError(`Local tar could not unpack ${remoteDir}: ${lastLine(local.stderrTail)}`)
  if (result.exitCode !== 0) {
    throw new TransportError(`Streaming ${remoteDir} from ${target} failed: ${lastLine(result.stderrTail)}`)
  }
  const listing = split.listing()
  if (!listing) throw new TransportError(`Streaming ${remoteDir} from ${target} ended before the listing of its files`)
  const expected = parseListing(listing)
  let bytes = 0
  const problems: string[] = []
  for (const [rel, size] of expected) {
    const got = await stat(pathUnder(localDir, rel)).catch(() => null)
    if (!got) problems.push(`${showName(rel)} is missing`)
    else if (got.size !== size) problems.push(`${showName(rel)} has ${got.size} bytes, expected ${size}`)
    bytes += size
  }
  if (problems.length) {
    throw new TransportError(`Pulled ${remoteDir} incompletely: ${problems.slice(0, 5).join('; ')}`)
  }
  return { files: expected.size, bytes }
}

/** The system's reasons, the most telling first (tar's "Cannot utime: Operation not permitted" on a directory comes before the file it could not write). */
const SYSTEM_REASONS = [
  /No space left on device|Disk quota exceeded/i,
  /Permission denied/i,
  /Read-only file system/i,
  /File name too long/i,
  /Operation not permitted/i,
]

/** The line that says why: the system's own reason where a line gives one (tar and rsync end with a summary that does not), else the last. */
export function tellingLine(lines: readonly string[]): string {
  for (const reason of SYSTEM_REASONS) {
    const found = lines.find((line) => reason.test(line))
    if (found) return found.trim()
  }
  return lastLine(lines)
}

/** `dir`, paths on stdin: what the target really holds of them (see tree.sh). */
export const FINGERPRINT_SCRIPT = treeScript('tree_fingerprint')

/** The regular files among `paths` as they are on the target: permission bits and sha256, by path. */
export async function remoteFingerprints(
  transport: Transport,
  remoteDir: string,
  paths: readonly string[],
): Promise<Map<string, { mode: number; sha256: string }>> {
  const result = await transport.run(FINGERPRINT_SCRIPT, [remoteDir], { stdin: nulList(paths), stdoutEncoding: 'latin1' })
  if (result.exitCode !== 0)
    throw new TransportError(`Cannot read the files of ${remoteDir} on ${transport.target}: ${tellingLine(result.stderrTail)}`)
  const [modes = '', hashes = ''] = result.stdout.split('@@hashes\0')
  const found = new Map<string, { mode: number; sha256: string }>()
  for (const record of modes.split('\0').filter(Boolean)) {
    const space = record.indexOf(' ')
    found.set(record.slice(space + 1), { mode: parseInt(record.slice(0, space), 8), sha256: '' })
  }
  for (const record of hashes.split('\0').filter(Boolean)) {
    const entry = found.get(record.slice(66))
    if (entry && record.slice(64, 66) === '  ') entry.sha256 = record.slice(0, 64)
  }
  return found
}

/** `dir`: the free bytes of its file system (of its nearest existing parent) and that parent, as "KB path". */
export const FREE_SCRIPT = treeScript('tree_free')

/**
 * The error for a push the target refused. A full disk or a directory the login user cannot write
 * is the target's to fix (exit 4), named with the system's reason, and the free space for the first.
 */
export async function pushFailure(
  transport: Transport,
  remoteDir: string,
  failed: { what: string; exitCode: number | null; stderrTail: readonly string[] },
): Promise<RemoteEvalError> {
  const { what, exitCode, stderrTail } = failed
  const line = tellingLine(stderrTail)
  if (/No space left on device|Disk quota exceeded/i.test(line)) {
    const answer = await transport.run(FREE_SCRIPT, [remoteDir]).catch(() => null)
    const [kb, ...at] = answer?.exitCode === 0 ? answer.stdout.trim().split(' ') : []
    const free = kb && /^\d+$/.test(kb) ? `; ${formatBytes(Number(kb) * 1024)} free in ${at.join(' ')} there` : ''
    return new RemotePrerequisiteError(
      `${what}: the disk is full (${line})${free}. Free some space on ${transport.target} (old runs under reports/, caches), then push again.`,
    )
  }
  if (/Permission denied|Read-only file system|Operation not permitted/i.test(line)) {
    return new RemotePrerequisiteError(
      `${what}: ${line}. Make it writable for the login user on ${transport.target} (chmod u+w, or chown), then push again.`,
    )
  }
  return new TransportError(`${what} (exit ${exitCode}): ${line}`)
}
