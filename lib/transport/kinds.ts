import { UsageError } from '../core/errors.ts'
import { UsageWithHelpError } from '../core/flags.ts'
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
