import { createInterface } from 'node:readline'
import { onCleanup, onSecondInterrupt, settleInterrupt } from '../core/cleanup.ts'
import type { Logger } from '../core/log.ts'
import { attachHint } from './runs.ts'

// What Ctrl-C does to a run the runner follows. On a terminal the user chooses: stop it, or detach
// and leave it running. Without one (CI, nohup, a test) it is stopped: a run nobody can come back
// to must not hold a GPU. A second Ctrl-C kills it at once. SIGTERM (kill, a CI timeout) stops it
// without asking; SIGHUP (the user's own terminal or link went away) detaches, as a dropped link
// to the target does.

export type Choice = 'stop' | 'detach' | 'kill'

/** Asks on the terminal; Enter means stop, Ctrl-C means kill now. */
async function ask(question: string): Promise<Choice> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  try {
    return await new Promise<Choice>((resolve) => {
      rl.on('SIGINT', () => resolve('kill'))
      rl.on('close', () => resolve('stop'))
      rl.question(question, (answer) => resolve(/^\s*d/i.test(answer) ? 'detach' : 'stop'))
    })
  } finally {
    rl.close()
  }
}

const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY)

/** What Ctrl-C guards, as its lines name it: one run, or a sharded run's runs together. */
export interface Guarded {
  /** "run 20261204-..." or "2 shards (runs ..., ...)". */
  name: string
  plural: boolean
  /** How to come back to it, after "to come back, ". */
  comeBack: string
}

/** One run, as guardRun's lines name it. */
export const oneRun = (runId: string): Guarded => ({ name: `run ${runId}`, plural: false, comeBack: attachHint(runId) })

/**
 * Arms Ctrl-C for what `guarded` names: once the runner is interrupted, its cleanup stops it (grace
 * period, then SIGKILL) or detaches from it. Returns the disarm to call when it has ended.
 */
export function guardRun(options: {
  guarded: Guarded
  target: string
  signal: AbortSignal
  logger: Logger
  stop: (graceSeconds: number) => Promise<{ state: string; exitCode: number | null }>
  graceSeconds: number
  /** The JSON a detach ends with, as --detach's. */
  detached: Record<string, unknown>
}): () => void {
  const { guarded, logger } = options
  const { name, plural, comeBack } = guarded
  const [goes, is, it, its] = plural ? ['go', 'are', 'them', 'their'] : ['goes', 'is', 'it', 'its']
  const stopNow = async () => {
    logger.step('run', `killing ${name} on ${options.target} now (SIGKILL to ${its} process group${plural ? 's' : ''})`)
    await options.stop(0)
  }
  const stopping = async (grace: number) => {
    try {
      const ended = await options.stop(grace)
      logger.step('run', `${name} ${is} ${ended.state}${ended.exitCode === null ? '' : ` (exit ${ended.exitCode})`}`)
    } catch (error) {
      logger.step(
        'error',
        `could not stop ${name}: ${error instanceof Error ? error.message : String(error)}. ${plural ? 'They' : 'It'} may still run there: ${comeBack}`,
      )
    }
  }
  const disarmCleanup = onCleanup(async () => {
    if (!options.signal.aborted) return
    // The runner aborts with the signal that interrupted it (lib/cli/main.ts).
    const by = options.signal.reason as NodeJS.Signals | undefined
    const choice: Choice =
      by === 'SIGHUP'
        ? 'detach'
        : by === 'SIGINT' && interactive()
          ? await ask(`${capitalized(name)} ${goes} on on ${options.target}. [s]top ${it} or [d]etach and leave ${it} running? [S/d] `)
          : 'stop'
    if (choice === 'detach') {
      // As --detach ends: a success, with the run's id.
      logger.step('done', `${name} ${goes} on on ${options.target}; to come back, ${comeBack}`)
      settleInterrupt({ exitCode: 0, output: options.detached })
      return
    }
    if (choice === 'kill') return stopping(0)
    logger.step(
      'run',
      `stopping ${name} on ${options.target}: SIGTERM to ${its} process group${plural ? 's' : ''}, SIGKILL after ${options.graceSeconds} s (Ctrl-C again: at once)`,
    )
    await stopping(options.graceSeconds)
  })
  const disarmUrgent = onSecondInterrupt(stopNow)
  return () => {
    disarmCleanup()
    disarmUrgent()
  }
}

const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1)
