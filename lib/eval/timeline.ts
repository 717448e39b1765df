// Where a run's time went, step by step, and what it skipped and why: the closing summary on
// stderr, and `timings` and `skipped` in the stdout JSON.

export type TimedStep = 'preflight' | 'sync' | 'deps' | 'assets' | 'run' | 'fetch'

const seconds = (ms: number) => Math.round(ms / 10) / 100

/** The steps of one run, each ended in turn: its time is from the previous step's end to its own. */
export class RunTimeline {
  private readonly started = performance.now()
  private last = this.started
  private readonly times = new Map<TimedStep, number>()
  private readonly reasons = new Map<TimedStep, string>()

  /** Ends `step` now (or at `at`, a performance.now() taken when it really ended). */
  end(step: TimedStep, at = performance.now()): void {
    this.times.set(step, at - this.last)
    this.last = at
  }

  /** Notes that `step` had nothing to do, and why ("unchanged tree"). */
  skip(step: TimedStep, reason: string): void {
    this.reasons.set(step, reason)
  }

  /** For the JSON: seconds per step and in all; the skipped steps with their reasons. */
  json(now = performance.now()): { timings: Record<string, number>; skipped: Record<string, string> } {
    const timings: Record<string, number> = Object.fromEntries([...this.times].map(([step, ms]) => [step, seconds(ms)]))
    return { timings: { ...timings, total: seconds(now - this.started) }, skipped: Object.fromEntries(this.reasons) }
  }

  /** For people: "12.3 s in all: preflight 0.4 s, sync 0.1 s (skipped: unchanged tree), ...". */
  line(now = performance.now()): string {
    const parts = [...this.times].map(([step, ms]) => {
      const reason = this.reasons.get(step)
      return `${step} ${seconds(ms).toFixed(1)} s${reason ? ` (skipped: ${reason})` : ''}`
    })
    return `${seconds(now - this.started).toFixed(1)} s in all: ${parts.join(', ')}`
  }
}
