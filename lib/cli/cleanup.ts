// Work to undo however the process ends: ssh masters to close, temp dirs to remove. Runs once, in
// reverse order of registration, on normal exit, on errors and on Ctrl-C.

type Cleanup = () => Promise<void> | void

const cleanups: Cleanup[] = []

/** Registers a cleanup; returns a function that unregisters it. */
export function onCleanup(fn: Cleanup): () => void {
  cleanups.push(fn)
  return () => {
    const at = cleanups.indexOf(fn)
    if (at >= 0) cleanups.splice(at, 1)
  }
}

/** Runs and forgets every registered cleanup; failures are ignored (we are already leaving). */
export async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!
    try {
      await fn()
    } catch {
      // A cleanup that fails must not hide the error that got us here.
    }
  }
}
