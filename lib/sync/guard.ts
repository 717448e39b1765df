import { UsageError } from '../core/errors.ts'
import { showName } from '../core/filenames.ts'
import { formatBytes } from '../core/units.ts'
import type { FileEntry } from './select.ts'

// The large-file guard: models, datasets and stray archives never go over a slow link by accident.
// It runs on the local selection, before anything is sent.

export interface SizeLimits {
  /** Largest single file, in bytes (--max-file-size). */
  maxFileBytes: number
  /** Largest total, in bytes (--max-total-size). */
  maxTotalBytes: number
}

export const DEFAULT_LIMITS: SizeLimits = { maxFileBytes: 50 * 1024 ** 2, maxTotalBytes: 500 * 1024 ** 2 }

const SHOWN = 10

/** Throws a UsageError that lists the largest offenders when a file or the total is over its limit. */
export function checkSizes(files: readonly FileEntry[], limits: SizeLimits = DEFAULT_LIMITS): void {
  const bySize = [...files].sort((a, b) => b.size - a.size)
  const listing = (entries: FileEntry[]) => entries.map((f) => `  ${formatBytes(f.size).padStart(10)}  ${showName(f.path)}`).join('\n')
  const advice = 'Models and datasets are never synced: move such files out of the project directory or add them to .gitignore.'

  const tooBig = bySize.filter((f) => f.size > limits.maxFileBytes)
  if (tooBig.length) {
    const more = tooBig.length > SHOWN ? `\n  ... and ${tooBig.length - SHOWN} more` : ''
    throw new UsageError(
      `Refusing to sync: ${tooBig.length} file(s) over the ${formatBytes(limits.maxFileBytes)} per-file limit:\n` +
        `${listing(tooBig.slice(0, SHOWN))}${more}\n${advice}\n` +
        `To send them anyway, raise the limit: --max-file-size ${suggest(tooBig[0]!.size)}`,
    )
  }
  const total = files.reduce((sum, f) => sum + f.size, 0)
  if (total > limits.maxTotalBytes) {
    throw new UsageError(
      `Refusing to sync: the selection totals ${formatBytes(total)} in ${files.length} files, ` +
        `over the ${formatBytes(limits.maxTotalBytes)} limit. Largest files:\n${listing(bySize.slice(0, SHOWN))}\n` +
        `${advice}\nTo send it anyway, raise the limit: --max-total-size ${suggest(total)}`,
    )
  }
}

/** A round limit above n, in the flag's own syntax. */
function suggest(bytes: number): string {
  const mib = Math.ceil(bytes / 1024 ** 2)
  return mib >= 1024 ? `${Math.ceil(mib / 1024)}G` : `${Math.ceil(mib / 10) * 10}M`
}
