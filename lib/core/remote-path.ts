import { UsageError } from './errors.ts'

// Remote directories named on the command line: absolute, plain, never a system directory.

const SAFE_PATH = /^[A-Za-z0-9._/@+=,-]+$/
const SYSTEM_DIRS = new Set([
  ...[
    'bin',
    'boot',
    'dev',
    'etc',
    'home',
    'lib',
    'lib32',
    'lib64',
    'media',
    'mnt',
    'opt',
    'proc',
    'root',
    'run',
    'sbin',
    'srv',
    'sys',
    'tmp',
    'usr',
    'var',
    'workdir',
    'Users',
    'Volumes',
  ].map((d) => `/${d}`),
  '/var/tmp',
  '/dev/shm',
  '/var/lib',
  '/var/log',
  '/usr/local',
  '/private/tmp',
])

/** Whether a path (resolved on the target) is the root or a system directory. */
export const isSystemDir = (real: string) => real === '/' || SYSTEM_DIRS.has(real)

/** Linux's limits on one name and on a whole path, in bytes (ext4, xfs, btrfs, tmpfs alike). */
export const NAME_MAX = 255
export const PATH_MAX = 4096

/** Checks a remote directory given on the command line; returns it normalized (no trailing /). */
export function validateRemoteDir(dir: string, flag: string): string {
  if (dir.trim() === '')
    throw new UsageError(`${flag} is empty. Give an absolute directory on the target, e.g. ${flag} /home/you/guardrails.`)
  if (dir.startsWith('~')) {
    throw new UsageError(
      `${flag} ${JSON.stringify(dir)} starts with ~, which would be expanded on this machine, not the target. ` +
        `Write the absolute path, e.g. ${flag} /home/you/${dir.replace(/^~[^/]*\/?/, '') || 'guardrails'}.`,
    )
  }
  if (!dir.startsWith('/')) {
    throw new UsageError(`${flag} ${JSON.stringify(dir)} is a relative path. Give an absolute path, e.g. ${flag} /home/you/guardrails.`)
  }
  if (!SAFE_PATH.test(dir)) {
    throw new UsageError(
      `${flag} ${JSON.stringify(dir)} contains characters that are not allowed. Use only letters, digits and . _ - / + @ , =`,
    )
  }
  const parts = dir.split('/').filter(Boolean)
  if (parts.some((p) => p === '.' || p === '..')) {
    throw new UsageError(`${flag} ${JSON.stringify(dir)} contains . or .. components. Give the plain absolute path.`)
  }
  const long = parts.find((p) => Buffer.byteLength(p) > NAME_MAX)
  if (long !== undefined) {
    throw new UsageError(
      `${flag}: the name ${JSON.stringify(`${long.slice(0, 40)}...`)} is ${Buffer.byteLength(long)} bytes long; file systems allow ${NAME_MAX} per name. Choose a shorter directory.`,
    )
  }
  const normalized = `/${parts.join('/')}`
  if (Buffer.byteLength(normalized) > PATH_MAX - 1024) {
    throw new UsageError(
      `${flag} is ${Buffer.byteLength(normalized)} bytes long; the target's paths stop at ${PATH_MAX}, and the files under it need room. Choose a shorter directory.`,
    )
  }
  if (normalized === '/' || SYSTEM_DIRS.has(normalized)) {
    throw new UsageError(
      `${flag} ${normalized} is a system directory; syncing there could delete files. Use a directory of its own, e.g. ${flag} /home/you/guardrails.`,
    )
  }
  return normalized
}
