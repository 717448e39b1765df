import { existsSync, lstatSync, readdirSync, type Stats } from 'node:fs'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { LocalPrerequisiteError } from '../core/errors.ts'
import { nameFromBytes, pathUnder } from '../core/filenames.ts'
import { spawnProcess } from '../core/process.ts'
import { isExcluded } from '../core/excludes.ts'

// Which files a sync sends. Inside a git work tree git decides (tracked plus untracked files that
// .gitignore does not ignore, so negations and nested patterns behave exactly as in git); the
// exclude list then removes what must never ship. Outside git, the exclude list alone. Paths are
// byte strings (lib/core/filenames.ts) from the listing on: a name that is not UTF-8 is still its name.

export interface FileEntry {
  /** Relative to the project directory, with `/` separators; a byte string (lib/core/filenames.ts). */
  path: string
  size: number
  mtimeMs: number
  /** Full lstat mode (type and permission bits). */
  mode: number
  isSymlink: boolean
}

export interface Selection {
  root: string
  files: FileEntry[]
  /** How the candidates were listed. */
  source: 'git' | 'walk'
  /** Candidates dropped by the exclude list (e.g. a tracked .env). */
  excluded: string[]
  /**
   * Which project this is, the same on every clone: the repository's first commit(s) and the
   * project's path inside it; outside git, the directory's name.
   */
  projectId: string
}

/** Lists the files to sync from projectDir, sorted by path. */
export async function selectFiles(projectDir: string): Promise<Selection> {
  const root = path.resolve(projectDir)
  const [gitPaths, projectId] = await Promise.all([listWithGit(root), identify(root)])
  const candidates = gitPaths ?? (await walk(root))
  const excluded: string[] = []
  const kept: string[] = []
  for (const rel of [...new Set(candidates)].sort()) (isExcluded(rel) ? excluded : kept).push(rel)
  const files = kept.map((rel) => describe(root, rel)).filter((entry): entry is FileEntry => entry !== null)
  return { root, files, source: gitPaths ? 'git' : 'walk', excluded, projectId }
}

/** The top of the git work tree holding dir, judged without git (a .git entry here or above). */
function gitTopLevel(dir: string): string | null {
  for (let at = dir; ; at = path.dirname(at)) {
    if (existsSync(path.join(at, '.git'))) return at
    if (path.dirname(at) === at) return null
  }
}

async function identify(root: string): Promise<string> {
  const top = gitTopLevel(root)
  if (!top) return `dir:${path.basename(root)}`
  const first = await spawnProcess('git', ['rev-list', '--max-parents=0', 'HEAD'], { cwd: root }).catch(() => null)
  const commits = first?.exitCode === 0 ? first.stdout.split('\n').filter(Boolean).sort().join(',') : 'no-commits'
  return `git:${commits}:${path.relative(top, root).split(path.sep).join('/')}`
}

/**
 * git's own listing, or null outside a work tree. Never falls back to a plain walk inside one:
 * that would ship what .gitignore keeps out (secrets, data).
 */
async function listWithGit(root: string): Promise<string[] | null> {
  const listed = await spawnProcess('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, stdoutEncoding: 'latin1' }).catch(
    () => null,
  )
  if (!listed) {
    if (!gitTopLevel(root)) return null
    throw new LocalPrerequisiteError(
      `${root} is in a git work tree, but git is not installed; without it .gitignore cannot be honoured. Install git (sudo apt-get install git, or brew install git).`,
    )
  }
  if (listed.exitCode !== 0) {
    if (listed.stderrTail.some((line) => /not a git repository/i.test(line))) return null
    throw new LocalPrerequisiteError(
      `git could not list the files of ${root}: ${listed.stderrTail.filter(Boolean).join(' ')} Fix what git says, then run again.`,
    )
  }
  return listed.stdout.split('\0').filter(Boolean)
}

/** Every file and symlink under root, not descending into excluded directories. */
async function walk(root: string, rel = ''): Promise<string[]> {
  const found: string[] = []
  const entries = await readdir(pathUnder(root, rel), { withFileTypes: true, encoding: 'buffer' })
  for (const entry of entries) {
    const name = nameFromBytes(entry.name)
    const child = rel ? `${rel}/${name}` : name
    if (entry.isDirectory()) {
      if (!isExcluded(child, true)) found.push(...(await walk(root, child)))
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      found.push(child)
    }
  }
  return found
}

/**
 * lstat facts for one candidate; null for what cannot be sent (deleted, a directory, a socket).
 * Synchronous on purpose: thousands of cached lstat calls take milliseconds this way, and ten
 * times longer through the thread pool.
 */
function describe(root: string, rel: string): FileEntry | null {
  let stat: Stats | undefined
  try {
    stat = lstatSync(pathUnder(root, rel))
  } catch {
    return null // gone since git listed it, or a parent turned into a file (ENOENT, ENOTDIR)
  }
  if (!stat || !(stat.isFile() || stat.isSymbolicLink())) return null
  return { path: rel, size: stat.size, mtimeMs: Math.floor(stat.mtimeMs), mode: stat.mode, isSymlink: stat.isSymbolicLink() }
}

/**
 * Paths under the selection's root that exist but are not selected and that the exclude list does
 * not already cover (what git ignores, nested repositories, sockets), with a directory given once,
 * as `dir/`, when nothing under it is selected. With the exclude list, it tells a whole-tree
 * transfer exactly what to skip.
 */
export function listUnselected(selection: Selection): string[] {
  const selected = new Set(selection.files.map((f) => f.path))
  const holdsSelected = new Set<string>()
  for (const file of selected) {
    for (let at = file.indexOf('/'); at >= 0; at = file.indexOf('/', at + 1)) holdsSelected.add(file.slice(0, at))
  }
  const unselected: string[] = []
  // Synchronous for the same reason as describe(): hundreds of small directory reads.
  const visit = (rel: string): void => {
    for (const entry of readdirSync(pathUnder(selection.root, rel), { withFileTypes: true, encoding: 'buffer' })) {
      const name = nameFromBytes(entry.name)
      const child = rel ? `${rel}/${name}` : name
      const isDir = entry.isDirectory()
      if (isExcluded(child, isDir)) continue
      if (isDir) {
        if (holdsSelected.has(child)) visit(child)
        else unselected.push(`${child}/`)
      } else if (!selected.has(child)) {
        unselected.push(child)
      }
    }
  }
  visit('')
  return unselected.sort()
}
