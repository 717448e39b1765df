import { lstat, readdir } from 'node:fs/promises'
import path from 'node:path'
import { $ } from 'zx'
import { isExcluded } from './excludes.ts'

// Which files a sync sends. Inside a git work tree git decides (tracked plus untracked files that
// .gitignore does not ignore, so negations and nested patterns behave exactly as in git); the
// exclude list then removes what must never ship. Outside git, the exclude list alone.

export interface FileEntry {
  /** Relative to the project directory, with `/` separators. */
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
}

/** Lists the files to sync from projectDir, sorted by path. */
export async function selectFiles(projectDir: string): Promise<Selection> {
  const root = path.resolve(projectDir)
  const gitPaths = await listWithGit(root)
  const candidates = gitPaths ?? (await walk(root))
  const excluded: string[] = []
  const files: FileEntry[] = []
  for (const rel of [...new Set(candidates)].sort()) {
    if (isExcluded(rel)) {
      excluded.push(rel)
      continue
    }
    const entry = await describe(root, rel)
    if (entry) files.push(entry)
  }
  return { root, files, source: gitPaths ? 'git' : 'walk', excluded }
}

/** git's own listing, or null when projectDir is not inside a work tree (or git is absent). */
async function listWithGit(root: string): Promise<string[] | null> {
  const inside = await $({ cwd: root, quiet: true, nothrow: true })`git rev-parse --is-inside-work-tree`.catch(
    () => null,
  )
  if (!inside || inside.exitCode !== 0 || inside.stdout.trim() !== 'true') return null
  const listed = await $({ cwd: root, quiet: true, nothrow: true })`git ls-files -co --exclude-standard -z`
  if (listed.exitCode !== 0) {
    throw new Error(`git ls-files failed in ${root}: ${listed.stderr.trim()}`)
  }
  return listed.stdout.split('\0').filter(Boolean)
}

/** Every file and symlink under root, not descending into excluded directories. */
async function walk(root: string, rel = ''): Promise<string[]> {
  const found: string[] = []
  const entries = await readdir(path.join(root, rel), { withFileTypes: true })
  for (const entry of entries) {
    const child = rel ? `${rel}/${entry.name}` : entry.name
    if (entry.isDirectory()) {
      if (!isExcluded(child, true)) found.push(...(await walk(root, child)))
    } else if (entry.isFile() || entry.isSymbolicLink()) {
      found.push(child)
    }
  }
  return found
}

/** lstat facts for one candidate; null for what cannot be sent (deleted, a directory, a socket). */
async function describe(root: string, rel: string): Promise<FileEntry | null> {
  const stat = await lstat(path.join(root, rel)).catch(() => null)
  if (!stat || !(stat.isFile() || stat.isSymbolicLink())) return null
  return { path: rel, size: stat.size, mtimeMs: Math.floor(stat.mtimeMs), mode: stat.mode, isSymlink: stat.isSymbolicLink() }
}
