import { hostname } from 'node:os'
import { RemotePrerequisiteError, UsageError } from '../core/errors.ts'
import { LAYOUT_VARS } from '../core/layout.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'
import { isExcluded } from '../core/excludes.ts'
import { isSystemDir } from '../core/remote-path.ts'

// Which remote directories a sync may write to, and delete from. A directory becomes ours (a marker
// file in it) when it is missing, empty, or holds only paths a sync never touches (a .env.eval the
// user created, .venv/, reports/). Anything else is somebody's work and is refused unless the user
// says --adopt-remote-dir. Deletions only ever remove files an earlier push put there.

export interface RemoteDirFacts {
  home: string
  kind: 'missing' | 'dir' | 'notdir'
  /** Physical path, symlinks resolved (only when it exists). */
  real: string | null
  writable: boolean
  owned: boolean
  /** The owner marker's project_id, when it has one. */
  ownerProject: string | null
  /** The directory was missing, and the inspection created and claimed it. */
  claimed: boolean
  stampMatches: boolean
  /** The state file's text, when owned and the stamp differs. */
  state: string | undefined
  /** Top-level names (directories end in /) of a directory that is not ours yet. */
  entries: string[]
  /** Every user may write it (/tmp, /var/tmp, /dev/shm, resolved). */
  worldWritable: boolean
  tools: { rsync: boolean; gzip: boolean; tar: boolean }
}

export const INSPECT_LIBRARY = loadBashLibrary(new URL('./remote-dir.sh', import.meta.url))
export const INSPECT_SCRIPT = callFunction(INSPECT_LIBRARY, 'inspect_remote_dir', LAYOUT_VARS)

/** inspect_remote_dir's arguments; the marker's own JSON spelling of the project lets the script match it. */
export function inspectionArgs(dir: string, stamp: string, claim: { marker?: string; projectId?: string } = {}): string[] {
  const { marker = '', projectId = '' } = claim
  return [dir, stamp, marker, projectId ? `"project_id":${JSON.stringify(projectId)}` : '']
}

/** Reads inspect_remote_dir's NUL-terminated records (other records in the same output are ignored). */
export function parseInspection(stdout: string): RemoteDirFacts {
  const facts: RemoteDirFacts = {
    home: '',
    kind: 'missing',
    real: null,
    writable: false,
    owned: false,
    ownerProject: null,
    claimed: false,
    stampMatches: false,
    state: undefined,
    entries: [],
    worldWritable: false,
    tools: { rsync: false, gzip: false, tar: false },
  }
  for (const record of stdout.split('\0')) {
    const eq = record.indexOf('=')
    if (eq < 0) continue
    const key = record.slice(0, eq)
    const value = record.slice(eq + 1)
    if (key === 'home') facts.home = value
    else if (key === 'kind') facts.kind = value as RemoteDirFacts['kind']
    else if (key === 'real') facts.real = value
    else if (key === 'writable') facts.writable = true
    else if (key === 'owned') facts.owned = true
    else if (key === 'owner') facts.ownerProject = projectIdOf(value)
    else if (key === 'claimed') facts.claimed = true
    else if (key === 'stamp') facts.stampMatches = true
    else if (key === 'state') facts.state = value
    else if (key === 'entry') facts.entries.push(value)
    else if (key === 'more') facts.entries.push('...')
    else if (key === 'worldwritable') facts.worldWritable = true
    else if (key === 'rsync' || key === 'gzip' || key === 'tar') facts.tools[key] = true
  }
  return facts
}

/**
 * One round trip: what is at `dir` on the target, and whether its stamp equals `stamp`. A missing
 * directory is created and claimed with `marker` when one is given; a stale stamp of this
 * project's push is removed (see remote-dir.sh).
 */
export async function inspectRemoteDir(
  transport: Transport,
  dir: string,
  options: { stamp: string; marker?: string; projectId?: string },
): Promise<RemoteDirFacts> {
  return inspectionAnswer(await transport.run(INSPECT_SCRIPT, inspectionArgs(dir, options.stamp, options)), dir, transport.target)
}

/** The facts of an inspection's output, or the error saying what the target lacks. */
export function inspectionAnswer(
  result: { exitCode: number; stdout: string; stderrTail: readonly string[] },
  dir: string,
  target: string,
): RemoteDirFacts {
  if (result.exitCode !== 0) {
    throw new RemotePrerequisiteError(
      `Could not inspect ${dir} on ${target} (exit ${result.exitCode}): ${lastLine(result.stderrTail)}. The target needs bash and coreutils.`,
    )
  }
  return parseInspection(result.stdout)
}

/**
 * Applies the ownership rule; throws a UsageError (nothing has been touched yet) when the directory
 * must not be synced into. Returns whether this push must still write the marker.
 */
export function decideOwnership(
  facts: RemoteDirFacts,
  dir: string,
  options: { flag: string; adopt: boolean; target: string; projectId: string },
): { claim: boolean } {
  const { flag, adopt, target } = options
  if (facts.kind === 'notdir') throw new UsageError(`${flag} ${dir} exists on ${target} but is not a directory. Choose another path.`)
  const real = facts.real ?? dir
  const through = real !== dir ? ` (${dir} resolves to ${real} there)` : ''
  if (real === '/' || (facts.home && real === facts.home)) {
    throw new UsageError(
      `${flag} ${dir} is ${real === '/' ? 'the root directory' : 'the home directory'} on ${target}${through}. ` +
        `Use a directory of its own, e.g. ${flag} ${facts.home || '/home/you'}/guardrails.`,
    )
  }
  if (isSystemDir(real)) {
    throw new UsageError(
      `${flag} ${dir} is the system directory ${real} on ${target}${through}; syncing there could delete files. Use a directory of its own, e.g. ${flag} ${facts.home || '/home/you'}/guardrails.`,
    )
  }
  if (facts.worldWritable) {
    throw new UsageError(
      `${flag} ${dir} is writable by every user on ${target}${through}, as /tmp is: anyone could plant files there. ` +
        `Use a directory of your own (under it is fine), e.g. ${flag} ${real}/${facts.home ? facts.home.split('/').at(-1) : 'you'}-guardrails.`,
    )
  }
  if (!facts.writable) {
    throw new UsageError(
      `${flag} ${dir} ${facts.kind === 'missing' ? 'cannot be created' : 'is not writable'} by the login user on ${target}. ` +
        `Choose a directory that user can write, e.g. under ${facts.home || 'its home'}.`,
    )
  }
  if (facts.claimed) return { claim: false }
  if (facts.owned) {
    if (!facts.ownerProject || facts.ownerProject === options.projectId || adopt) return { claim: facts.ownerProject !== options.projectId }
    throw new UsageError(
      `${flag} ${dir} on ${target} holds code pushed from another project (${facts.ownerProject}); pushing this one ` +
        `(${options.projectId}) there would delete that project's files. Use another ${flag}, or pass --adopt-remote-dir to replace it.`,
    )
  }
  const foreign = facts.entries.filter((e) => e === '...' || !isExcluded(e.replace(/\/$/, ''), e.endsWith('/')))
  if (foreign.length === 0 || adopt) return { claim: true }
  throw new UsageError(
    `${flag} ${dir} on ${target} already holds files this tool did not put there: ${foreign.slice(0, 8).join(', ')}` +
      `${foreign.length > 8 ? ', ...' : ''}. Point ${flag} at a new or empty directory, or pass --adopt-remote-dir ` +
      'to sync into it anyway (same-named files are overwritten; nothing else there is deleted).',
  )
}

function projectIdOf(marker: string): string | null {
  try {
    const id = (JSON.parse(marker) as { project_id?: unknown }).project_id
    return typeof id === 'string' ? id : null
  } catch {
    return null
  }
}

/** The owner marker's content (one line of JSON): who claimed the directory, for which project, when. */
export function ownerMarker(projectDir: string, projectId: string): string {
  return JSON.stringify({
    tool: 'guardrails-remote-eval',
    project_id: projectId,
    claimed_at: new Date().toISOString(),
    from_host: hostname(),
    project: projectDir,
  })
}
