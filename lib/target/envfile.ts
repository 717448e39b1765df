import { readFileSync } from 'node:fs'
import { parse as parseDotenv } from 'dotenv'
import { loadBashLibrary } from '../transport/script.ts'

// The eval repo's .env.eval, read here as the real eval CLI reads it (lib/target/envfile.sh is the same
// reader for the target): lines stripped; blank, "#" and "=less" lines skipped; the key before the
// first "=", stripped; the value stripped, then quotes stripped from both ends; the first line of
// a key wins. An inline " # comment" stays in the value and "export " in the key, as in the CLI.

/** Python's str.strip(chars) for one set of characters. */
const stripChars = (text: string, chars: string) => {
  let start = 0
  let end = text.length
  while (start < end && chars.includes(text[start]!)) start++
  while (end > start && chars.includes(text[end - 1]!)) end--
  return text.slice(start, end)
}
const WHITE = ' \t\n\r\v\f'

/** KEY -> VALUE as the eval reads the file's text. */
export function parseEnvFile(text: string): Map<string, string> {
  const values = new Map<string, string>()
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = stripChars(raw, WHITE)
    if (!line || line.startsWith('#') || !line.includes('=')) continue
    const eq = line.indexOf('=')
    const key = stripChars(line.slice(0, eq), WHITE)
    const value = stripChars(stripChars(stripChars(line.slice(eq + 1), WHITE), "'"), '"')
    if (key && !values.has(key)) values.set(key, value)
  }
  return values
}

/** The file's text, or null when it cannot be read. */
export function readEnvFileText(file: string | Buffer): string | null {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return null
  }
}

/** Every KEY=VALUE of the file in both readings (the eval's and python-dotenv's), for redaction. */
export function envFilePairs(text: string): Array<[string, string]> {
  return [...parseEnvFile(text).entries(), ...Object.entries(parseDotenv(text))]
}

/** lib/target/envfile.sh, for the scripts that read a .env.eval on the target. */
export const ENVFILE_LIBRARY = loadBashLibrary(new URL('./envfile.sh', import.meta.url))
