// File names are bytes: git, the kernel, tar and rsync all hold them so, and a name need not be
// valid UTF-8. Inside this tool a file name is a byte string: a JS string with one char per byte
// (latin1). Sets, Maps, sorting (byte order, as git sorts) and the ASCII exclude rules work on it
// unchanged, and bytes read from git come out to the target exactly as they were.

/** A byte string from bytes (git's -z output, a directory entry, a remote listing). */
export const nameFromBytes = (bytes: Buffer): string => bytes.toString('latin1')

/** A byte string's bytes. */
export const nameBytes = (name: string): Buffer => Buffer.from(name, 'latin1')

/** A byte string from text a user typed (a flag value, which the shell gave us as UTF-8). */
export const nameFromText = (text: string): string => nameFromBytes(Buffer.from(text, 'utf8'))

/** Whether a string can be a byte string (no char above 0xff); anything else was never one. */
export const isByteString = (name: string): boolean => !/[^\p{ASCII}\u0080-\u00ff]/u.test(name)

/** root/name as a path for fs calls: a Buffer, so no byte is re-encoded. */
export const pathUnder = (root: string, name: string): Buffer => Buffer.concat([Buffer.from(`${root}/`), nameBytes(name)])

/** Names as NUL-terminated records (git -z, tar --null -T, rsync --from0). */
export const nulList = (names: readonly string[]): Buffer => nameBytes(names.map((n) => `${n}\0`).join(''))

/**
 * A byte string for a person to read: UTF-8 where the bytes are valid UTF-8, `\xNN` for a byte
 * that is not, and control characters escaped, so a hostile name can neither garble a log nor
 * start a line of its own.
 */
export function showName(name: string): string {
  const bytes = nameBytes(name)
  let shown = ''
  for (let at = 0; at < bytes.length;) {
    const length = utf8SequenceLength(bytes, at)
    if (length === 0) {
      shown += `\\x${bytes[at]!.toString(16).padStart(2, '0')}`
      at += 1
      continue
    }
    const char = bytes.subarray(at, at + length).toString('utf8')
    shown += isControl(char) ? escapeControl(char) : char
    at += length
  }
  return shown
}

/** Text with its control characters escaped (\n, \u001b), for one line of a log or a table. */
export const escapeControls = (text: string): string => [...text].map((char) => (isControl(char) ? escapeControl(char) : char)).join('')

/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
const isControl = (char: string) => {
  const code = char.charCodeAt(0)
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029
}

const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

/** A control or line-separator character as an escape: \n, or \u001b. */
const escapeControl = (char: string) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`

/** The length of the valid UTF-8 sequence starting at `at`, or 0 when the byte there starts none. */
function utf8SequenceLength(bytes: Buffer, at: number): number {
  const lead = bytes[at]!
  const length =
    lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0
  if (length <= 1) return length
  const sequence = bytes.subarray(at, at + length)
  // Decoding and encoding again catches every malformed case (short, overlong, surrogate, > U+10FFFF).
  return sequence.length === length && Buffer.from(sequence.toString('utf8'), 'utf8').equals(sequence) ? length : 0
}
