import { UsageError } from '../core/errors.ts'
import { listFlag, UsageWithHelpError, type FlagSpec, type FlagValues } from '../core/flags.ts'
import { KUBECTL_KIND } from './kubectl.ts'
import { SSH_KIND } from './ssh.ts'
import type { Target, TargetKind } from './types.ts'

// The kinds of target, registered here and nowhere else: a new kind is a file that exports its
// TargetKind (its transport beside it) and one line in this list.

export const TARGET_KINDS: readonly TargetKind[] = [SSH_KIND as unknown as TargetKind, KUBECTL_KIND as unknown as TargetKind]

/** A registered kind by its name (ssh, kubectl). */
export function kindNamed(name: string): TargetKind {
  const kind = TARGET_KINDS.find((k) => k.kind === name)
  if (!kind) throw new Error(`No kind of target is registered as ${JSON.stringify(name)}`)
  return kind
}

/** The kind of a target that a kind's fromFlags made. */
export const kindOf = (target: Target): TargetKind => kindNamed(target.kind)

/**
 * The kind a command line names, for the scripts that reach any kind (sync_code.ts): by the flag
 * that names each kind; mixed or missing targets are refused, as are another kind's own flags.
 */
export function kindNamedBy(argv: readonly string[]): TargetKind {
  const given = (name: string) => argv.some((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  const named = TARGET_KINDS.filter((k) => given(k.namedBy))
  if (named.length > 1) {
    throw new UsageWithHelpError(`Give either ${named.map((k) => `--${k.namedBy} (${k.what})`).join(' or ')}, not both.`)
  }
  if (!named.length) throw new UsageWithHelpError(`No target: give ${TARGET_KINDS.map((k) => `${k.usage} for ${k.what}`).join(', or ')}.`)
  const kind = named[0]!
  const own = new Set(kind.flags.map((f) => f.name))
  const wrong = TARGET_KINDS.flatMap((k) => k.flags.map((f) => f.name)).find((name) => !own.has(name) && given(name))
  if (wrong) {
    const instead = TARGET_KINDS.some((k) => k.dirFlag === `--${wrong}`) ? `; ${kind.what} takes ${kind.dirFlag}` : ''
    throw new UsageError(`--${wrong} does not apply to ${kind.what}${instead}.`)
  }
  return kind
}

/**
 * A kind's flags as the runners take them: its per-target flags repeatable (one target each, or
 * several), then the flags that name several targets at once.
 */
export function runnerFlags(kind: TargetKind): FlagSpec[] {
  const naming = kind.namedBy
  const per = new Set([naming, ...kind.perTarget])
  const flags = kind.flags.map((f) =>
    per.has(f.name)
      ? {
          ...f,
          kind: 'list' as const,
          description: `${f.description}${f.name === naming ? '; several with --shard' : `; once for all, or once per --${naming} in their order`}`,
        }
      : f,
  )
  return [...flags, ...kind.fleetFlags]
}

/**
 * The targets the runners' flags name: one per value of the kind's naming flag (--host, --pod),
 * each with the Nth value of the other per-target flags (or their one value); a target standing
 * for others (--selector) stays one here and is expanded when the run opens it.
 */
export function targetsFromFlags(kind: TargetKind, flags: FlagValues): Target[] {
  const naming = kind.namedBy
  const names = listFlag(flags, naming)
  // None named: one target, whose reading says the naming flag is required.
  const count = Math.max(names.length, 1)
  for (const flag of kind.perTarget) {
    const given = listFlag(flags, flag).length
    if (given > 1 && given !== count)
      throw new UsageError(
        count === 1
          ? `--${flag} was given ${given} times for one --${naming}: give it once, or a --${naming} for each.`
          : `--${flag} was given ${given} times for ${count} --${naming}: give it once (the same for every --${naming}) or once per --${naming}, in their order.`,
      )
  }
  const nth = (flag: string, i: number) => listFlag(flags, flag)[i] ?? listFlag(flags, flag)[0] ?? defaultOf(kind, flag)
  const targets = Array.from({ length: count }, (_, i) =>
    kind.fromFlags({ ...flags, [naming]: names[i], ...Object.fromEntries(kind.perTarget.map((f) => [f, nth(f, i)])) }),
  )
  const seen = new Set<string>()
  for (const target of targets) {
    const key = `${kind.name(target)}\0${target.remoteDir}`
    if (seen.has(key))
      throw new UsageError(`${kind.name(target)} is named twice with ${target.remoteDirFlag} ${target.remoteDir}: name each target once.`)
    seen.add(key)
  }
  return targets
}

const defaultOf = (kind: TargetKind, flag: string) => kind.flags.find((f) => f.name === flag)?.default
