import { lstatSync, readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { UsageError } from '../core/errors.ts'
import { envFilePairs, readEnvFileText } from '../target/envfile.ts'
import { nameFromBytes, nameFromText, pathUnder, showName } from '../core/filenames.ts'
import { isSecretName, looksLikeASecret, secretValuesFromEnv } from '../core/log.ts'

// The last guard before a push, after the exclude list: no file about to be sent may hold the
// value of a secret this machine knows (HF_TOKEN and every secret-named variable of the
// environment or of the project's .env* files, in both readings) or a private key. Only the files
// a push is about to send are read, so an unchanged tree costs nothing.

export interface SecretGuard {
  /** Values that must not leave this machine. */
  values: string[]
  /** Paths (relative to the project, byte strings) the user allowed to hold one (--allow-secret). */
  allow: ReadonlySet<string>
}

const PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/

/** The secrets of the environment and of the project's .env* files, and the allowed paths. */
export function secretGuardFor(projectDir: string, allow: readonly string[] = []): SecretGuard {
  const values = new Set(secretValuesFromEnv())
  const envFiles = readdirSync(projectDir, { encoding: 'buffer' })
    .map(nameFromBytes)
    .filter((name) => name.startsWith('.env'))
  for (const name of envFiles) {
    const text = readEnvFileText(pathUnder(projectDir, name))
    if (text === null) continue
    for (const [key, value] of envFilePairs(text)) if (isSecretName(key)) values.add(value)
  }
  return { values: [...values].filter(looksLikeASecret), allow: new Set(allow.map((p) => nameFromText(path.posix.normalize(p)))) }
}

/** Refuses (exit 2) when a file about to be sent holds a secret's value or a private key, naming both. */
export async function checkSecrets(root: string, paths: readonly string[], guard: SecretGuard): Promise<void> {
  const found: string[] = []
  const needles = guard.values.map((v) => Buffer.from(v))
  for (const rel of paths) {
    if (guard.allow.has(rel)) continue
    // Synchronous on purpose (as select.ts's lstat): thousands of small reads through the thread
    // pool took about a second on a first push of 5,000 files; this way, a tenth of that.
    // Regular files only: a symlink travels as a link, and reading through one (to /dev/zero, say) would hang.
    let data: Buffer
    try {
      const full = pathUnder(root, rel)
      if (!lstatSync(full).isFile()) continue
      data = readFileSync(full)
    } catch {
      continue // gone since it was selected
    }
    if (needles.some((needle) => data.includes(needle)))
      found.push(`${showName(rel)}: holds the value of a secret of this machine (an environment variable or a .env file)`)
    else if (PRIVATE_KEY.test(data.toString('latin1'))) found.push(`${showName(rel)}: holds a private key`)
  }
  if (found.length) {
    throw new UsageError(
      `Not pushing: ${found.length} file(s) would take a secret to the target:\n  ${found.slice(0, 10).join('\n  ')}${found.length > 10 ? `\n  ... and ${found.length - 10} more` : ''}\n` +
        'Remove the secret (keep secrets in .env files, which never sync), or, if the file is meant to go, pass --allow-secret PATH for it.',
    )
  }
}
