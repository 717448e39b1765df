// Small text helpers every layer uses.

/** The most useful line of a failure's stderr. */
export function lastLine(lines: readonly string[]): string {
  return (
    lines
      .filter((l) => l.trim())
      .at(-1)
      ?.trim() ?? 'no message'
  )
}

/** The UTC timestamp format of the Python tools: 2026-11-28T10:16:32Z. */
export function utcNow(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z')
}
