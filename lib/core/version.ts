import { readFileSync } from 'node:fs'

// This tool's version, from its package.json: printed by --version and in reports of a bug.

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version

/** How the scripts name themselves and their version. */
export const TOOL = `guardrails-remote-eval ${VERSION}`
