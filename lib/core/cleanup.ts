// Work to undo however the process ends: ssh masters to close, temp dirs to remove, a remote run to
// stop. Runs once, in reverse order of registration, on normal exit, on errors and on Ctrl-C.

type Cleanup = () => Promise<void> | void

/** How an interrupted command ends after all, when a cleanup decided it (a detach is a success). */
export interface InterruptOutcome {
  exitCode: number
  output: unknown
}

let settled: InterruptOutcome | null = null

/** Called by a cleanup that turns the interruption into a normal end (e.g. the user chose to detach). */
export function settleInterrupt(outcome: InterruptOutcome): void {
  settled = outcome
}

/** The outcome a cleanup chose, if any. */
export const interruptOutcome = (): InterruptOutcome | null => settled

const cleanups: Cleanup[] = []
const urgent: Cleanup[] = []
let running: Promise<void> | null = null

/** Registers a cleanup; returns a function that unregisters it. */
export function onCleanup(fn: Cleanup): () => void {
  return register(cleanups, fn)
}

/** Registers what a second Ctrl-C must still do before the process quits (e.g. kill a remote run). */
export function onSecondInterrupt(fn: Cleanup): () => void {
  return register(urgent, fn)
}

function register(list: Cleanup[], fn: Cleanup): () => void {
  list.push(fn)
  return () => {
    const at = list.indexOf(fn)
    if (at >= 0) list.splice(at, 1)
  }
}

/**
 * Runs and forgets every registered cleanup; failures are ignored (we are already leaving). Calls
 * while one is under way wait for it: a Ctrl-C and the main flow's own exit may both ask, and a
 * connection must not be closed under a cleanup that still uses it.
 */
export function runCleanups(): Promise<void> {
  running ??= drain().finally(() => {
    running = null
  })
  return running
}

/**
 * For a process about to quit on a second Ctrl-C: the urgent work (e.g. kill the run now), then
 * the cleanups not yet started (close the connection), each part for at most `limitMs`.
 */
export async function runUrgentCleanups(limitMs = 5000): Promise<void> {
  const within = (work: Promise<unknown>) => Promise.race([work, new Promise((resolve) => setTimeout(resolve, limitMs).unref())])
  await within(Promise.all(urgent.splice(0).map(quietly)))
  await within(drain())
}

async function drain(): Promise<void> {
  while (cleanups.length) await quietly(cleanups.pop()!)
}

async function quietly(fn: Cleanup): Promise<void> {
  try {
    await fn()
  } catch {
    // A cleanup that fails must not hide the error that got us here.
  }
}
