// Quoting for shells: once, for the target's bash, and for commands printed for people to paste.

/** POSIX single-quoting: the value becomes one word for any POSIX shell, whatever it holds. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`
}

/** One word for a shell, quoted only where it must be: for commands printed for people to paste. */
export const pasteWord = (word: string): string => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : shellQuote(word))
