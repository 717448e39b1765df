import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { RemotePrerequisiteError, UsageError } from '../cli/errors.ts'
import { silentLogger, type Logger } from '../log.ts'
import type { PushReport, Transport } from '../transport/types.ts'
import { formatBytes } from '../units.ts'
import { DEFAULT_LIMITS, checkSizes, type SizeLimits } from './guard.ts'
import { decideOwnership, inspectRemoteDir, ownerMarker } from './remote-dir.ts'
import { selectFiles } from './select.ts'
import { fingerprint, formatState, parseState, planTransfer } from './state.ts'

// Code sync: select (git's rules + the exclude list), guard sizes, look at the target once, then
// send only what changed, delete only what we pushed before, and record what the target now holds.

export interface SyncOptions {
  transport: Transport
  projectDir: string
  /** Absolute, already validated (validateRemoteDir). */
  remoteDir: string
  /** The flag that named remoteDir, for messages (--remote-dir, --workdir). */
  remoteDirFlag?: string
  limits?: SizeLimits
  /** Sync into a non-empty directory this tool did not create (--adopt-remote-dir). */
  adopt?: boolean
  /** Ignore the stamp and compare every file with the target's state (--full-sync). */
  full?: boolean
  logger?: Logger
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
  bytesSent: number
}

/** Pushes the project's code to remoteDir on the transport's target. */
export async function syncProject(options: SyncOptions): Promise<SyncReport> {
  const { transport, remoteDir } = options
  const flag = options.remoteDirFlag ?? '--remote-dir'
  const logger = options.logger ?? silentLogger

  const selection = await selectFiles(options.projectDir)
  if (selection.files.length === 0) {
    throw new UsageError(`Nothing to sync: no files selected in ${selection.root}. Run from the eval repo or pass --project-dir.`)
  }
  const totalBytes = selection.files.reduce((sum, f) => sum + f.size, 0)
  logger.step(
    'sync',
    `${selection.files.length} files (${formatBytes(totalBytes)}) selected ${selection.source === 'git' ? "by git's rules" : 'from the directory'}` +
      (selection.excluded.length ? `; ${selection.excluded.length} excluded (${selection.excluded.slice(0, 3).join(', ')}${selection.excluded.length > 3 ? ', ...' : ''})` : ''),
  )
  checkSizes(selection.files, options.limits ?? DEFAULT_LIMITS)

  const stamp = fingerprint(selection.files, remoteDir)
  const facts = await inspectRemoteDir(transport, remoteDir, options.full ? '' : stamp)
  const { claim } = decideOwnership(facts, remoteDir, flag, options.adopt ?? false, transport.target)
  const report: SyncReport = {
    remoteDir, source: selection.source, files: selection.files.length, totalBytes,
    unchanged: false, claimed: claim, method: null, filesSent: 0, filesRemoved: 0, bytesSent: 0,
  }
  if (facts.owned && facts.stampMatches) {
    logger.step('sync', `${remoteDir} on ${transport.target} is up to date; nothing sent`)
    return { ...report, unchanged: true }
  }

  const useRsync = transport.kind === 'ssh' && facts.tools.rsync
  if (!useRsync && !facts.tools.tar) {
    throw new RemotePrerequisiteError(`${transport.target} has neither rsync nor tar; install one of them there (tar: apt-get install tar).`)
  }
  const plan = await planTransfer({
    root: selection.root,
    files: selection.files,
    previous: parseState(facts.state),
    compareContent: !useRsync,
  })
  const stage = await mkdtemp(path.join(tmpdir(), 'gre-sync-'))
  try {
    const stateFile = path.join(stage, 'sync-state')
    await writeFile(stateFile, formatState(plan.next))
    const pushed = await transport.push({
      localRoot: selection.root,
      remoteDir,
      send: plan.send,
      remove: plan.remove,
      claimMarker: claim ? ownerMarker(selection.root) : null,
      stateFile,
      stamp,
      remoteTools: { rsync: facts.tools.rsync, gzip: facts.tools.gzip },
    })
    logger.step(
      'sync',
      `${claim ? 'claimed ' + remoteDir + '; ' : ''}sent ${pushed.filesSent} changed file(s), removed ${pushed.filesRemoved} ` +
        `(${pushed.method}, ${formatBytes(pushed.bytesSent)} sent)`,
    )
    return { ...report, method: pushed.method, filesSent: pushed.filesSent, filesRemoved: pushed.filesRemoved, bytesSent: pushed.bytesSent }
  } finally {
    await rm(stage, { recursive: true, force: true })
  }
}
