import path from 'node:path'
import minimist from 'minimist'
import { UsageError } from './errors.ts'

// Flag parsing for the scripts: declared flags only, every value checked for presence. Mistakes
// end in a UsageError (exit 2) before anything is touched; unknown flags read exactly as the bash
// runner's did ("Unknown arg: --x").

export interface FlagSpec {
  name: string
  kind: 'string' | 'boolean' | 'list'
  /** Placeholder in help ("HOST"). */
  value?: string
  description: string
  default?: string
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>

/** The flags every script takes: -h/--help and --version. */
export const STANDARD_FLAGS: readonly FlagSpec[] = [
  { name: 'help', kind: 'boolean', description: 'print this help (also -h)' },
  { name: 'version', kind: 'boolean', description: "print this tool's version" },
]

/** A UsageError that also prints the usage (unknown flags, missing target). */
export class UsageWithHelpError extends UsageError {}

/** Parses argv against the specs; defaults applied; lists always arrays. */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): FlagValues {
  const unknown: string[] = []
  const positional: string[] = []
  // minimist reads --no-X as X=false: a flag named no-X is known to it as X. Where X is a flag of
  // its own (--baseline PATH and --no-baseline), --no-X sets X false, read below as not given.
  const names = new Set(specs.map((s) => s.name))
  const negated = new Set(
    specs.filter((s) => s.kind === 'boolean' && s.name.startsWith('no-') && !names.has(s.name.slice(3))).map((s) => s.name.slice(3)),
  )
  const parsed = minimist([...argv], {
    string: specs.filter((s) => s.kind !== 'boolean').map((s) => s.name),
    boolean: [...specs.filter((s) => s.kind === 'boolean').map((s) => s.name), ...negated],
    unknown: (arg) => {
      ;(arg.startsWith('-') ? unknown : positional).push(arg)
      return false
    },
  })
  const positive = argv.find((a) => a.startsWith('--') && negated.has(a.slice(2).replace(/=.*/, '')))
  if (positive) unknown.push(positive)
  // minimist also reads --no-X for a flag X that takes a value: no such flag exists unless declared.
  const takesValue = new Set(specs.filter((s) => s.kind !== 'boolean').map((s) => s.name))
  const stray = argv.find(
    (a) => /^--no-/.test(a) && takesValue.has(a.slice(5).replace(/=.*/, '')) && !names.has(a.slice(2).replace(/=.*/, '')),
  )
  if (stray) unknown.push(stray)
  const valued = specs.find((s) => s.kind === 'boolean' && argv.some((a) => a.startsWith(`--${s.name}=`)))
  if (valued) throw new UsageError(`--${valued.name} takes no value: write --${valued.name} alone.`)
  if (unknown.length) throw new UsageWithHelpError(`Unknown arg: ${unknown[0]!.replace(/=.*/, '')}`)
  if (positional.length) throw new UsageWithHelpError(`Unexpected argument: ${positional[0]} (flags take the form --name value)`)

  const values: FlagValues = {}
  for (const spec of specs) {
    const raw = parsed[spec.name] as string | boolean | string[] | undefined
    const given = argv.some((a) => a === `--${spec.name}` || a.startsWith(`--${spec.name}=`))
    if (spec.kind === 'boolean') {
      values[spec.name] =
        spec.name.startsWith('no-') && (negated.has(spec.name.slice(3)) || names.has(spec.name.slice(3))) ? given : Boolean(raw)
      continue
    }
    const list = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((v) => v !== false).map(String)
    if (given && list.some((v) => v.trim() === '')) {
      throw new UsageError(`--${spec.name} needs a value${spec.value ? ` (${spec.value})` : ''}; it was empty or missing.`)
    }
    if (spec.kind === 'list') values[spec.name] = list
    else if (list.length > 1) throw new UsageError(`--${spec.name} was given ${list.length} times; give it once.`)
    else values[spec.name] = list[0] ?? spec.default
  }
  return values
}

/** The options section of --help, aligned. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const left = specs.map((s) => `  --${s.name}${s.kind === 'boolean' ? '' : ` ${s.value ?? 'VALUE'}`}`)
  const width = Math.max(...left.map((l) => l.length)) + 2
  return specs
    .map((s, i) => {
      const extra = [s.kind === 'list' ? 'repeatable' : '', s.default !== undefined ? `default: ${s.default}` : '']
        .filter(Boolean)
        .join('; ')
      return `${left[i]!.padEnd(width)}${s.description}${extra ? ` (${extra})` : ''}`
    })
    .join('\n')
}

/** A string flag's value (after parseFlags, defaults applied). */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** A list flag's values. */
export function listFlag(values: FlagValues, name: string): string[] {
  const value = values[name]
  return Array.isArray(value) ? value : []
}

/**
 * A whole-number flag in [min, max], written in plain decimal digits: Number() would also take
 * 0x10, 1e2, ' 4' or '', none of which a person means as a count. Undefined when not given.
 */
export function wholeNumberFlag(
  values: FlagValues,
  name: string,
  range: { min: number; max: number; unit: string; example: number },
): number | undefined {
  const text = stringFlag(values, name)
  if (text === undefined) return undefined
  const value = /^\d{1,9}$/.test(text) ? Number(text) : NaN
  if (!(value >= range.min && value <= range.max)) {
    throw new UsageError(
      `--${name} ${JSON.stringify(text)} is not a whole number of ${range.unit} from ${range.min} to ${range.max} (plain digits), e.g. --${name} ${range.example}.`,
    )
  }
  return value
}

/** The project directory: --project-dir, or the current directory. */
export function projectDirFrom(flags: FlagValues): string {
  return path.resolve(stringFlag(flags, 'project-dir') ?? process.cwd())
}

/** Requires a flag; the message names it and says what it is for. */
export function required(flags: FlagValues, name: string, what: string): string {
  const value = stringFlag(flags, name)
  if (value === undefined) throw new UsageError(`--${name} is required: ${what}.`)
  return value
}
