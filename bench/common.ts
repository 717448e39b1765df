// What the benchmarks share: the repository root and the median.
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

/** The median of some timings (the upper one of an even count). */
export const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
