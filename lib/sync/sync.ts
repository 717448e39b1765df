import { RemotePrerequisiteError, UsageError } from '../core/errors.ts'
import { showName } from '../core/filenames.ts'
import { silentLogger, type Logger } from '../core/log.ts'
import { gnuTar } from '../transport/prereq.ts'
import { remoteFingerprints } from '../transport/tree.ts'
import type { HeldSession, PushReport, Transport } from '../transport/types.ts'
import { formatBytes } from '../core/units.ts'
import { DEFAULT_LIMITS, checkSizes, type SizeLimits } from './guard.ts'
import { takeTargetLock } from '../target/lock.ts'
import {
  INSPECT_LIBRARY,
  decideOwnership,
  inspectRemoteDir,
  inspectionAnswer,
  inspectionArgs,
  ownerMarker,
  type RemoteDirFacts,
} from './remote-dir.ts'
import { PATH_MAX } from '../core/remote-path.ts'
import { checkSecrets, secretGuardFor } from './secrets.ts'
import { listUnselected, selectFiles, type Selection } from './select.ts'
import { fingerprint, hashFile, parseState, planTransfer, stateUpdate, type TransferPlan } from './state.ts'

// Code sync: select (git's rules + the exclude list), guard sizes, look at the target once, then
// send only what changed, delete only what we pushed before, and record what the target now holds.
// The local half (prepareSync) needs no connection, so callers run it while the connection opens.

export interface PreparedSync {
  selection: Selection
  totalBytes: number
  /** The owner marker a push would write (made once: it holds the time it was made). */
  marker: string
  /** Fingerprint of the selection for this remote directory. */
  stamp: string
  remoteDir: string
}

/** Selects the files, applies the size guard and fingerprints the selection; touches no target. */
export async function prepareSync(options: {
  projectDir: string
  remoteDir: string
  limits?: SizeLimits
  logger?: Logger
}): Promise<PreparedSync> {
  const logger = options.logger ?? silentLogger
  const selection = await selectFiles(options.projectDir)
  if (selection.files.length === 0) {
    throw new UsageError(`Nothing to sync: no files selected in ${selection.root}. Run from the eval repo or pass --project-dir.`)
  }
  const totalBytes = selection.files.reduce((sum, f) => sum + f.size, 0)
  const excluded = selection.excluded
  logger.step(
    'sync',
    `${selection.files.length} files (${formatBytes(totalBytes)}) selected ${selection.source === 'git' ? "by git's rules" : 'from the directory'}` +
      (excluded.length
        ? `; ${excluded.length} excluded (${excluded.slice(0, 3).map(showName).join(', ')}${excluded.length > 3 ? ', ...' : ''})`
        : ''),
  )
  checkSizes(selection.files, options.limits ?? DEFAULT_LIMITS)
  const tooLong = selection.files.filter((f) => options.remoteDir.length + 1 + f.path.length >= PATH_MAX)
  if (tooLong.length) {
    throw new UsageError(
      `${tooLong.length} file(s) would have paths over the target's ${PATH_MAX}-byte limit under ${options.remoteDir}, e.g. ${showName(tooLong[0]!.path)}. ` +
        'Choose a shorter remote directory, or shorten those paths.',
    )
  }
  return {
    selection,
    totalBytes,
    marker: ownerMarker(selection.root, selection.projectId),
    stamp: fingerprint(selection.files, options.remoteDir),
    remoteDir: options.remoteDir,
  }
}

export interface PushOptions {
  transport: Transport
  prepared: PreparedSync
  /** The flag that named the remote directory, for messages (--remote-dir, --workdir). */
  remoteDirFlag?: string
  /** Sync into a non-empty directory this tool did not create (--adopt-remote-dir). */
  adopt?: boolean
  /** Ignore the stamp and compare every file with the target's state (--full-sync). */
  full?: boolean
  /**
   * The inspection's answer, when the caller runs it in a round trip of its own (inspectionFor);
   * a promise lets the push prepare its local work while the target answers.
   */
  facts?: RemoteDirFacts | Promise<RemoteDirFacts>
  /** The session holding the target's lock (with facts that came from it): the push's small steps travel there. */
  session?: Promise<HeldSession>
  /** Paths allowed to hold a secret's value or a private key (--allow-secret). */
  allowSecrets?: readonly string[]
  /** Decide what to send and delete, and stop there: nothing is sent (sync_code.ts --dry-run). */
  dryRun?: boolean
  logger?: Logger
}

/**
 * The inspection of a push's target directory, as arguments of inspect_remote_dir. A dry run's
 * gives no marker and no project: the look then changes nothing there (no claim, no stamp removed).
 */
export function inspectionFor(prepared: PreparedSync, full = false, dryRun = false): string[] {
  if (dryRun) return inspectionArgs(prepared.remoteDir, full ? '' : prepared.stamp)
  return inspectionArgs(prepared.remoteDir, full ? '' : prepared.stamp, {
    marker: prepared.marker,
    projectId: prepared.selection.projectId,
  })
}

export interface SyncReport {
  remoteDir: string
  source: 'git' | 'walk'
  files: number
  totalBytes: number
  /** True when the target already held exactly this selection. */
  unchanged: boolean
  claimed: boolean
  method: PushReport['method'] | null
  filesSent: number
  filesRemoved: number
  /** Files to delete that the target could not delete (kept in its state, tried again next push). */
  filesKept: number
  bytesSent: number
  /** The files sent (or, in a dry run, to send) and removed (to remove), as shown to people. */
  sent: string[]
  removed: string[]
  dryRun: boolean
}

/** Above this many changed files, and half the selection, a whole-tree transfer beats a file list. */
const WHOLE_TREE_MIN_FILES = 200
/** Up to this many changed files and bytes, one tar round trip beats rsync over SSH. */
const ONE_ROUND_TRIP_MAX_FILES = 100
const ONE_ROUND_TRIP_MAX_BYTES = 2 * 1024 ** 2

function fitsOneRoundTrip(send: readonly string[], selection: Selection): boolean {
  if (send.length > ONE_ROUND_TRIP_MAX_FILES) return false
  const sizes = new Map(selection.files.map((f) => [f.path, f.size]))
  return send.reduce((sum, p) => sum + (sizes.get(p) ?? 0), 0) <= ONE_ROUND_TRIP_MAX_BYTES
}

/** Pushes a prepared selection to its remote directory on the transport's target. */
export async function pushPrepared(options: PushOptions): Promise<SyncReport> {
  const { transport, prepared } = options
  const { selection, remoteDir, stamp } = prepared
  const logger = options.logger ?? silentLogger
  const marker = prepared.marker
  // Awaited only when something is sent; a lock that failed is reported by the facts.
  options.session?.catch(() => undefined)
  const inspecting = options.facts
    ? Promise.resolve(options.facts)
    : inspectRemoteDir(transport, remoteDir, { stamp: options.full ? '' : stamp, marker, projectId: selection.projectId })
  // While the target answers: the walk a whole-tree rsync may need (cheap next to the round trip).
  const unselected = selection.files.length > WHOLE_TREE_MIN_FILES && transport.pushesByRsync ? listUnselected(selection) : null
  const facts = await inspecting
  transport.noteRemoteTools?.(facts.tools)
  const { claim } = decideOwnership(facts, remoteDir, {
    flag: options.remoteDirFlag ?? '--remote-dir',
    adopt: options.adopt ?? false,
    target: transport.target,
    projectId: selection.projectId,
  })
  const claimed = claim || facts.claimed
  const report: SyncReport = {
    remoteDir,
    source: selection.source,
    files: selection.files.length,
    totalBytes: prepared.totalBytes,
    unchanged: false,
    claimed,
    method: null,
    filesSent: 0,
    filesRemoved: 0,
    filesKept: 0,
    bytesSent: 0,
    sent: [],
    removed: [],
    dryRun: options.dryRun === true,
  }
  if (facts.owned && facts.stampMatches) {
    logger.step('sync', `${remoteDir} on ${transport.target} is up to date; nothing sent`)
    return { ...report, unchanged: true }
  }

  const canRsync = transport.pushesByRsync && facts.tools.rsync
  if (!canRsync && !facts.tools.tar) {
    throw new RemotePrerequisiteError(
      `${transport.target} has neither rsync nor tar; install one of them there (tar: apt-get install tar).`,
    )
  }
  const previous = parseState(facts.state)
  const base = { root: selection.root, files: selection.files, previous }
  let plan = await planTransfer({ ...base, compareContent: !canRsync })
  let method: 'tar' | 'rsync' = canRsync ? 'rsync' : 'tar'
  const hasGnuTar = await gnuTar().then(
    () => true,
    () => false,
  )
  if (canRsync && facts.tools.tar && hasGnuTar && !options.full && fitsOneRoundTrip(plan.send, selection)) {
    // A few small files: one tar round trip beats rsync's extra sessions; hashes skip touched files.
    plan = await planTransfer({ ...base, compareContent: true })
    method = 'tar'
  }
  if (options.full) {
    // Compare with what the target really holds, not with the record: rsync checks every file's
    // content itself (--checksum); for tar the target hashes its copies and we send what differs.
    plan =
      method === 'rsync'
        ? { ...plan, send: selection.files.map((f) => f.path) }
        : await addTargetDifferences({ transport, remoteDir }, selection, plan)
  }
  await checkSecrets(selection.root, plan.send, secretGuardFor(selection.root, options.allowSecrets))
  const named = { sent: plan.send.map(showName), removed: plan.remove.map((r) => showName(r.path)) }
  const wholeTree = plan.send.length > WHOLE_TREE_MIN_FILES && plan.send.length * 2 > selection.files.length
  if (options.dryRun) {
    const shown = method === 'tar' ? 'tar' : wholeTree && unselected ? 'rsync-tree' : 'rsync-list'
    logger.step(
      'sync',
      `dry run: would ${claim ? `claim ${remoteDir}, ` : ''}send ${plan.send.length} file(s) and remove ${plan.remove.length} (${shown}); nothing sent`,
    )
    return { ...report, ...named, claimed: facts.claimed, method: shown, filesSent: plan.send.length, filesRemoved: plan.remove.length }
  }
  const pushed = await transport.push({
    localRoot: selection.root,
    remoteDir,
    send: plan.send,
    remove: plan.remove,
    claimMarker: claim ? marker : null,
    state: stateUpdate(facts.state, plan.next),
    stamp,
    method,
    compress: facts.tools.gzip,
    unselected: method === 'rsync' && wholeTree ? unselected : null,
    checksum: options.full === true,
    session: await options.session,
  })
  logger.step(
    'sync',
    `${claimed ? `claimed ${remoteDir}; ` : ''}sent ${pushed.filesSent} changed file(s), removed ${pushed.filesRemoved} ` +
      `(${pushed.method}, ${formatBytes(pushed.bytesSent)} sent)`,
  )
  if (pushed.filesKept) {
    logger.step(
      'warn',
      `${pushed.filesKept} file(s) this tool pushed before could not be deleted in ${remoteDir} (${pushed.keptReason ?? 'no message'}); ` +
        'they stay recorded and the next push tries again. Fix the permissions there (e.g. chmod u+w on their directory).',
    )
  }
  return {
    ...report,
    ...named,
    method: pushed.method,
    filesSent: pushed.filesSent,
    filesRemoved: pushed.filesRemoved,
    filesKept: pushed.filesKept,
    bytesSent: pushed.bytesSent,
  }
}

/**
 * The push as the CLIs make it: the target's lock taken with the inspection in one round trip (a
 * second runner waits, or with `wait: false` stops), the push under it, then the release.
 */
export async function pushLocked(options: Omit<PushOptions, 'facts'> & { wait?: boolean }): Promise<SyncReport> {
  const { transport, prepared } = options
  const locking = takeTargetLock(transport, {
    remoteDir: prepared.remoteDir,
    wait: options.wait ?? true,
    library: INSPECT_LIBRARY,
    fn: 'inspect_remote_dir',
    args: inspectionFor(prepared, options.full, options.dryRun),
    logger: options.logger ?? silentLogger,
    step: 'sync',
  })
  try {
    const facts = locking.then((lock) => inspectionAnswer(lock, prepared.remoteDir, transport.target))
    return await pushPrepared({ ...options, facts, session: locking.then((lock) => lock.session) })
  } finally {
    await (await locking.catch(() => null))?.release()
  }
}

export interface SyncOptions extends Omit<PushOptions, 'prepared' | 'facts'> {
  projectDir: string
  /** Absolute, already validated (validateRemoteDir). */
  remoteDir: string
  limits?: SizeLimits
}

/** prepareSync, then pushLocked: the whole sync, as sync_code.ts makes it, for callers that already hold a transport. */
export async function syncProject(options: SyncOptions & { wait?: boolean }): Promise<SyncReport> {
  const prepared = await prepareSync(options)
  return pushLocked({ ...options, prepared })
}

/**
 * --full-sync by tar: adds to the plan every selected file that the target holds with other content
 * or another executable bit (the mode tar sets also depends on the target's umask), or not at all
 * (symlinks are always sent: they cost nothing).
 */
async function addTargetDifferences(
  { transport, remoteDir }: { transport: Transport; remoteDir: string },
  selection: Selection,
  plan: TransferPlan,
): Promise<TransferPlan> {
  const sending = new Set(plan.send)
  const rest = selection.files.filter((f) => !sending.has(f.path))
  const onTarget = await remoteFingerprints(
    transport,
    remoteDir,
    rest.filter((f) => !f.isSymlink).map((f) => f.path),
  )
  const next = new Map(plan.next.map((entry) => [entry.path, entry]))
  const differs: string[] = []
  for (const file of rest) {
    const there = onTarget.get(file.path)
    const sha256 = file.isSymlink ? null : await hashFile(selection.root, file)
    if (!there || there.sha256 !== sha256 || (there.mode & 0o100) !== (file.mode & 0o100)) differs.push(file.path)
    const entry = next.get(file.path)
    if (entry && sha256) entry.sha256 = sha256
  }
  return { ...plan, send: [...plan.send, ...differs] }
}
