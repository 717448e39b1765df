// How a suite's datasets are split across shards (GPUs or pods): each dataset's expected cost,
// then longest first onto the least loaded shard. The costs are seconds where an earlier run of
// the same suite and split timed its datasets (the report's tasks.span_detection.metrics.datasets
// entries, elapsed_seconds and sample_count), and rows at that run's pace otherwise; with no such
// run, rows alone (the datasets manifest's count for the split), which order the same way.

/** What a dataset is expected to cost, and where the figure came from. */
export interface DatasetCost {
  id: string
  cost: number
  from: 'earlier run' | 'rows at the earlier pace' | 'rows'
}

/** One shard of a plan: its datasets, longest first, and their expected cost together. */
export interface Shard {
  datasets: string[]
  expected: number
}

export interface ShardPlan {
  shards: Shard[]
  /** The most any shard is expected to take: the plan's wall time. */
  makespan: number
  unit: 'seconds' | 'rows'
}

/** One dataset's entry in an earlier report: how many samples it had and how long it took. */
export interface TimedDataset {
  dataset_id: string
  sample_count: number
  elapsed_seconds: number
}

/** The timed datasets of a report.json (none when it has no such entries). */
export function timedDatasets(report: unknown): TimedDataset[] {
  const span = (report as { tasks?: { span_detection?: { metrics?: { datasets?: unknown } } } } | null)?.tasks?.span_detection
  const entries = Array.isArray(span?.metrics?.datasets) ? (span.metrics.datasets as Array<Record<string, unknown>>) : []
  return entries.filter(
    (e): e is Record<string, unknown> & TimedDataset =>
      typeof e.dataset_id === 'string' &&
      typeof e.sample_count === 'number' &&
      typeof e.elapsed_seconds === 'number' &&
      Number.isFinite(e.elapsed_seconds) &&
      e.elapsed_seconds >= 0,
  )
}

/**
 * Each dataset's cost: its time in the earlier run; else its rows at that run's pace (seconds per
 * sample over the datasets it timed); with no timed dataset at all, its rows.
 */
export function datasetCosts(datasets: ReadonlyArray<{ id: string; rows: number }>, earlier: readonly TimedDataset[]): DatasetCost[] {
  const timed = new Map(earlier.map((e) => [e.dataset_id, e]))
  const samples = earlier.reduce((sum, e) => sum + e.sample_count, 0)
  const seconds = earlier.reduce((sum, e) => sum + e.elapsed_seconds, 0)
  const pace = samples > 0 && seconds > 0 ? seconds / samples : null
  return datasets.map(({ id, rows }) => {
    const entry = timed.get(id)
    if (entry && pace !== null) return { id, cost: entry.elapsed_seconds, from: 'earlier run' }
    if (pace !== null) return { id, cost: rows * pace, from: 'rows at the earlier pace' }
    return { id, cost: rows, from: 'rows' }
  })
}

/** Search steps spent looking for a better plan than longest-first (a few milliseconds). */
const SEARCH_BUDGET = 200_000

/**
 * Longest first onto the least loaded shard, then a bounded search for a plan with a lower
 * makespan (datasets longest first, each onto every shard of a distinct load, pruned at the best
 * so far); deterministic: the same inputs give the same plan. Never more shards than datasets.
 */
export function planShards(costs: readonly DatasetCost[], shardCount: number): ShardPlan {
  const count = Math.max(1, Math.min(shardCount, costs.length))
  const order = costs.map((c, i) => ({ ...c, i })).sort((a, b) => b.cost - a.cost || a.i - b.i)
  // Longest first: the plan to beat.
  let best = order.map(() => 0)
  const loads = new Array<number>(count).fill(0)
  order.forEach((dataset, k) => {
    const lightest = loads.indexOf(Math.min(...loads))
    best[k] = lightest
    loads[lightest]! += dataset.cost
  })
  let bestMakespan = Math.max(...loads)
  const floor = Math.max(order[0]?.cost ?? 0, order.reduce((sum, d) => sum + d.cost, 0) / count)
  const current = order.map(() => 0)
  loads.fill(0)
  let steps = 0
  const place = (k: number): void => {
    if (steps++ > SEARCH_BUDGET || bestMakespan <= floor) return
    if (k === order.length) {
      bestMakespan = Math.max(...loads)
      best = [...current]
      return
    }
    const tried = new Set<number>()
    for (let shard = 0; shard < count; shard++) {
      // Shards of equal load are interchangeable: one of them is enough.
      if (tried.has(loads[shard]!) || loads[shard]! + order[k]!.cost >= bestMakespan) continue
      tried.add(loads[shard]!)
      loads[shard]! += order[k]!.cost
      current[k] = shard
      place(k + 1)
      loads[shard]! -= order[k]!.cost
    }
  }
  place(0)
  const shards: Shard[] = Array.from({ length: count }, () => ({ datasets: [], expected: 0 }))
  order.forEach((dataset, k) => {
    shards[best[k]!]!.datasets.push(dataset.id)
    shards[best[k]!]!.expected += dataset.cost
  })
  return {
    shards,
    makespan: Math.max(...shards.map((s) => s.expected)),
    unit: costs.some((c) => c.from !== 'rows') ? 'seconds' : 'rows',
  }
}
