import { UsageError } from '../core/errors.ts'
import { stringFlag, type FlagSpec, type FlagValues } from '../core/flags.ts'
import { parseSize } from '../core/units.ts'
import { DEFAULT_LIMITS, type SizeLimits } from './guard.ts'

// The flags of every script that syncs code, and the size limits they set.

export const SYNC_FLAGS: readonly FlagSpec[] = [
  { name: 'project-dir', kind: 'string', value: 'DIR', description: 'the eval repo to sync (default: the current directory)' },
  { name: 'max-file-size', kind: 'string', value: 'SIZE', description: 'refuse to sync any file larger than this', default: '50M' },
  { name: 'max-total-size', kind: 'string', value: 'SIZE', description: 'refuse to sync more than this in total', default: '500M' },
  { name: 'adopt-remote-dir', kind: 'boolean', description: 'sync into a non-empty directory this tool did not create' },
  {
    name: 'full-sync',
    kind: 'boolean',
    description:
      'repair a remote edited by hand: compare the content really there with the local files and restore what differs or is missing',
  },
  {
    name: 'allow-secret',
    kind: 'list',
    value: 'PATH',
    description: "send this file although it holds a secret's value or a private key (relative to the project)",
  },
  {
    name: 'no-wait',
    kind: 'boolean',
    description:
      'when another runner is syncing into the same directory (or, for an eval, downloading into its models or datasets directory), fail at once (exit 12) instead of waiting',
  },
]

/** Reads the size limits; a bad size is a UsageError naming its flag. */
export function sizeLimitsFrom(flags: FlagValues): SizeLimits {
  const read = (name: string, fallback: number) => {
    const text = stringFlag(flags, name)
    if (text === undefined) return fallback
    const bytes = parseSize(text)
    if (bytes === null || bytes <= 0) throw new UsageError(`--${name} ${JSON.stringify(text)} is not a size. Write e.g. 50M, 2G or 500k.`)
    return bytes
  }
  return {
    maxFileBytes: read('max-file-size', DEFAULT_LIMITS.maxFileBytes),
    maxTotalBytes: read('max-total-size', DEFAULT_LIMITS.maxTotalBytes),
  }
}
