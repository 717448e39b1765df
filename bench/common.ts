// What the benchmarks share: the repository root, the median, the bash runner's excludes.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** The median of some timings (the upper one of an even count). */
export const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

/** The bash runner's excludes, as its rsync line has them. */
export const BASH_EXCLUDES = [
  '.git/',
  '.env*',
  '.venv/',
  '.eval_cache/',
  '.models/',
  '.datasets/',
  'reports/',
  'baselines/',
  '__pycache__/',
  '.pytest_cache/',
]
