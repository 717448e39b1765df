import { readFileSync } from 'node:fs'
import { shellQuote } from '../core/shell.ts'
import { STATUS_VARS } from '../core/remote-status.ts'

// How a script travels: the remote command is always plain `bash -s`; the script, its arguments
// and its environment go on stdin. The login shell on the other end (bash, zsh, sh, even csh)
// therefore parses nothing of ours, and arguments of any size and content arrive byte for byte.

/**
 * Loads a bash file shipped beside the module (functions only, no top-level work), without its
 * comment lines and blank lines: they would travel with every round trip. (No heredocs in them.)
 */
export function loadBashLibrary(url: URL): string {
  return readFileSync(url, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*(#.*)?$/.test(line))
    .map((line) => line.replace(/^(\w+\(\) \{) # .*$/, '$1'))
    .join('\n')
}

/** A script: the remote statuses (lib/core/remote-status.ts), optional variable assignments, a bash library, then a call of one of its functions. */
export function callFunction(library: string, fn: string, preamble = ''): string {
  return `${STATUS_VARS}\n${preamble}\n${library}\n${fn} "$@"\n`
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * The text sent to `bash -s`: positional arguments and exported variables, then the script inside
 * a `{ ... exit; }` group. bash parses the whole group before running any of it, so a script cut
 * short in transit is a syntax error that runs nothing, and whatever follows the group on stdin
 * (a tar stream, say) is data for the script, never commands.
 */
export function frameScript(script: string, args: readonly string[] = [], env: Record<string, string> = {}): string {
  const lines: string[] = []
  lines.push(args.length ? `set -- ${args.map(shellQuote).join(' ')}` : 'set --')
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) throw new Error(`Invalid environment variable name: ${JSON.stringify(name)}`)
    lines.push(`export ${name}=${shellQuote(value)}`)
  }
  lines.push('{', script.replace(/\n*$/, ''), 'exit', '}', '')
  return lines.join('\n')
}

/** The fixed command every transport starts on the target. */
export const REMOTE_COMMAND = ['bash', '-s'] as const
