import { readFileSync } from 'node:fs'

// This tool's version, from its package.json: printed by --version and in reports of a bug (read
// then, not at every start).

/** How the scripts name themselves and their version: "guardrails-remote-eval 0.1.0". */
export function toolVersion(): string {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  return `guardrails-remote-eval ${version}`
}
