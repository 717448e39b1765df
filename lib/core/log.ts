import pc from 'picocolors'
import { escapeControls } from './filenames.ts'

// Everything but the final JSON goes to stderr, one line per message, prefixed with its step.
// Every line passes through redaction first, so a secret that reaches a log (even one the remote
// printed) is shown as *** instead.

export type Step = 'preflight' | 'sync' | 'deps' | 'models' | 'datasets' | 'run' | 'fetch' | 'done' | 'error' | 'warn' | 'ssh' | 'kubectl'

export interface Logger {
  /** One line under a step prefix. Multi-line text becomes several prefixed lines. */
  step(step: Step, message: string): void
  /** Adds values to hide from now on (tokens read later, e.g. from a .env file). */
  addSecrets(values: Iterable<string>): void
  /** Redacts a text with the secrets known so far (for text that is not logged, e.g. stdout). */
  redact(text: string): string
  /** Whether its lines are coloured (a table that colours its cells follows it). */
  colored?: boolean
  /**
   * On a terminal only: a line kept below the others and rewritten in place (a download's
   * progress), one per key; null takes it away. Absent elsewhere: say it with step() instead.
   */
  live?(key: string, step: Step, text: string | null): void
}

/** A copy of a JSON-like value with every string redacted (keys, numbers and structure untouched). */
export function redactStrings<T>(value: T, redactText: (text: string) => string): T {
  if (typeof value === 'string') return redactText(value) as T
  if (Array.isArray(value)) return value.map((item) => redactStrings(item, redactText)) as T
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactStrings(v, redactText)])) as T
  }
  return value
}

export interface LoggerOptions {
  stream?: NodeJS.WritableStream
  secrets?: Iterable<string>
  color?: boolean
}

const SECRET_NAME = /(TOKEN|SECRET|SECRET_KEY|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$/i
/** Whether a variable's name says it holds a secret (HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...). */
export const isSecretName = (name: string) => SECRET_NAME.test(name)
/** Shorter values, or plain words like "true", are settings rather than secrets: hiding them would garble output. */
const MIN_SECRET_LENGTH = 8
export const looksLikeASecret = (value: string) => value.length >= MIN_SECRET_LENGTH && !/^(true|false|yes|no|none|null|\d+)$/i.test(value)

/** Values of environment variables named like secrets (HF_TOKEN, AWS_SECRET_ACCESS_KEY, ...). */
export function secretValuesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.entries(env)
    .filter(([name, value]) => SECRET_NAME.test(name) && value !== undefined)
    .map(([, value]) => value as string)
}

/** The shortest piece of a secret worth hiding where a line cut it in two. */
const MIN_FRAGMENT = 8
/** user:password@ in a URL (HF_ENDPOINT=https://me:pw@mirror, a proxy, a git remote). */
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*:[^\s/@]*@/gi

/**
 * Replaces every occurrence of each secret (longest first) with ***, and the credentials of any
 * URL; and where a line ends with the start of a secret, or starts with its end (a value printed
 * across two lines), that piece too, from MIN_FRAGMENT characters on.
 */
export function redact(text: string, secrets: Iterable<string>): string {
  const values = [...new Set(secrets)].filter(looksLikeASecret)
  values.sort((a, b) => b.length - a.length)
  let out = text.replace(URL_CREDENTIALS, '$1***@')
  for (const value of values) out = out.split(value).join('***')
  if (!values.length) return out
  return out
    .split('\n')
    .map((line) => {
      for (const value of values) {
        for (let k = value.length - 1; k >= MIN_FRAGMENT; k--) {
          if (line.endsWith(value.slice(0, k))) line = `${line.slice(0, line.length - k)}***`
          if (line.startsWith(value.slice(value.length - k))) line = `***${line.slice(k)}`
        }
      }
      return line
    })
    .join('\n')
}

const colors = pc.createColors(true)
const paint: Record<Step, (s: string) => string> = {
  preflight: colors.cyan,
  sync: colors.cyan,
  deps: colors.cyan,
  models: colors.magenta,
  datasets: colors.magenta,
  run: colors.blue,
  fetch: colors.cyan,
  done: colors.green,
  error: colors.red,
  warn: colors.yellow,
  ssh: colors.gray,
  kubectl: colors.gray,
}

/**
 * Set by a parent that shows our stderr on its own terminal (make demo): colours, though our
 * stderr is a pipe. NO_COLOR still wins.
 */
export const COLOR_ENV = 'REMOTE_EVAL_COLOR'

/** A logger that writes step-prefixed, redacted lines to stderr (or the given stream). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr
  const onTerminal = pc.isColorSupported && Boolean((stream as { isTTY?: boolean }).isTTY)
  const color = options.color ?? (!process.env.NO_COLOR && (onTerminal || process.env[COLOR_ENV] === '1'))
  const secrets = new Set<string>([...secretValuesFromEnv(), ...(options.secrets ?? [])])
  const redactKnown = (text: string) => redact(text, secrets)
  const prefixed = (step: Step, text: string) => {
    const prefix = `[${step}]`
    return `${color ? paint[step](prefix) : prefix} ${text}`
  }
  const terminal = stream as { isTTY?: boolean; columns?: number }
  // The live lines sit below everything else: each write takes them away, then draws them again.
  const liveLines = new Map<string, string>()
  const eraseLive = () => (liveLines.size ? `\x1b[${liveLines.size}A\x1b[J` : '')
  const drawLive = () => [...liveLines.values()].map((line) => `${line}\n`).join('')
  return {
    step(step, message) {
      const lines = redactKnown(message).split('\n')
      stream.write(eraseLive() + lines.map((line) => prefixed(step, line)).join('\n') + '\n' + drawLive())
    },
    ...(terminal.isTTY && {
      live(key: string, step: Step, text: string | null) {
        const erase = eraseLive()
        if (text === null) liveLines.delete(key)
        // One screen line each, or the cursor arithmetic above is off.
        else liveLines.set(key, prefixed(step, escapeControls(redactKnown(text)).slice(0, Math.max(20, (terminal.columns || 80) - 12))))
        stream.write(erase + drawLive())
      },
    }),
    addSecrets(values) {
      for (const value of values) secrets.add(value)
    },
    redact: redactKnown,
    colored: color,
  }
}

/** The same logger with `prefix` before each line (one shard's lines among the others'); no live lines. */
export function prefixedLogger(logger: Logger, prefix: string): Logger {
  return {
    addSecrets: (values) => logger.addSecrets(values),
    redact: logger.redact,
    colored: logger.colored,
    step: (step, message) => logger.step(step, message.replace(/^/gm, `${prefix} `)),
  }
}

/** A logger that drops everything (for library calls and tests that do not care). */
export const silentLogger: Logger = {
  step() {},
  addSecrets() {},
  redact: (text) => text,
}
