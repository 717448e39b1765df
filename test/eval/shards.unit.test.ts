import assert from 'node:assert/strict'
import { test } from 'node:test'
import { datasetCosts, planShards, timedDatasets, type DatasetCost } from '../../lib/eval/shards.ts'

// The plan of shards: each dataset's expected cost, longest first onto the least loaded shard.

const costs = (units: number[]): DatasetCost[] => units.map((cost, i) => ({ id: `d${i}`, cost, from: 'earlier run' }))

/** The best makespan possible, by trying every assignment (small inputs only). */
function optimum(units: number[], shards: number): number {
  const loads = new Array<number>(shards).fill(0)
  let best = Infinity
  const sorted = [...units].sort((a, b) => b - a)
  const place = (i: number) => {
    const worst = Math.max(...loads)
    if (worst >= best) return
    if (i === sorted.length) return void (best = worst)
    const tried = new Set<number>()
    for (let s = 0; s < shards; s++) {
      if (tried.has(loads[s]!)) continue // shards with equal loads are interchangeable
      tried.add(loads[s]!)
      loads[s]! += sorted[i]!
      place(i + 1)
      loads[s]! -= sorted[i]!
    }
  }
  place(0)
  return best
}

test("the issue's uneven suite (32 units) on 4 shards: a plan of 8, the best possible", () => {
  const units = [6, 5, 4, 4, 3, 3, 2, 2, 1, 1, 1]
  const plan = planShards(costs(units), 4)
  assert.equal(plan.makespan, 8)
  assert.equal(optimum(units, 4), 8)
  assert.deepEqual(
    plan.shards.map((s) => s.expected),
    [8, 8, 8, 8],
  )
  assert.deepEqual(plan.shards.flatMap((s) => s.datasets).sort(), units.map((_, i) => `d${i}`).sort(), 'every dataset once')
  assert.equal(planShards(costs(units), 1).makespan, 32)
  assert.equal(planShards(costs(units), 2).makespan, 16)
})

test('the optimum on random suites of up to 12 datasets and 2 to 5 shards (longest-first alone misses it)', () => {
  let seed = 7
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
  for (let round = 0; round < 200; round++) {
    const units = Array.from({ length: 4 + Math.floor(random() * 9) }, () => 1 + Math.floor(random() * 20))
    const shards = 2 + Math.floor(random() * 4)
    const plan = planShards(costs(units), shards)
    const best = optimum(units, Math.min(shards, units.length))
    assert.equal(plan.makespan, best, `${units} on ${shards}`)
  }
  // Longest-first gives 43 here; the search finds 39.
  assert.equal(planShards(costs([14, 19, 5, 7, 11, 19, 17, 19, 1, 15, 13, 13]), 4).makespan, 39)
})

test('never more shards than datasets; one shard is the whole suite in its order', () => {
  assert.equal(planShards(costs([3, 1]), 4).shards.length, 2)
  assert.deepEqual(planShards(costs([1, 3, 2]), 1).shards, [{ datasets: ['d1', 'd2', 'd0'], expected: 6 }])
})

test('costs: the earlier run’s time per dataset, rows at its pace for the others, rows alone without it', () => {
  const earlier = timedDatasets({
    tasks: {
      span_detection: {
        metrics: {
          datasets: [
            { dataset_id: 'chat', sample_count: 100, elapsed_seconds: 50 },
            { dataset_id: 'forms', sample_count: 100, elapsed_seconds: 150 },
            { dataset_id: 'broken', sample_count: 'many', elapsed_seconds: 1 },
          ],
        },
      },
    },
  })
  assert.deepEqual(
    earlier.map((e) => e.dataset_id),
    ['chat', 'forms'],
  )
  const datasets = [
    { id: 'chat', rows: 100 },
    { id: 'forms', rows: 100 },
    { id: 'new', rows: 40 },
  ]
  assert.deepEqual(datasetCosts(datasets, earlier), [
    { id: 'chat', cost: 50, from: 'earlier run' },
    { id: 'forms', cost: 150, from: 'earlier run' },
    { id: 'new', cost: 40, from: 'rows at the earlier pace' },
  ])
  assert.equal(planShards(datasetCosts(datasets, earlier), 2).unit, 'seconds')
  const byRows = datasetCosts(datasets, [])
  assert.deepEqual(
    byRows.map((c) => [c.cost, c.from]),
    [
      [100, 'rows'],
      [100, 'rows'],
      [40, 'rows'],
    ],
  )
  assert.equal(planShards(byRows, 2).unit, 'rows')
  assert.deepEqual(timedDatasets(null), [])
  assert.deepEqual(timedDatasets({ tasks: { span_detection: { metrics: { datasets: 'x' } } } }), [])
})

test('a large suite (60 datasets on 8 shards) gets a plan within its search budget: each dataset once, no shard idle', () => {
  const units = Array.from({ length: 60 }, (_, i) => 1 + ((i * 37) % 23))
  const plan = planShards(costs(units), 8)
  assert.deepEqual(plan.shards.flatMap((s) => s.datasets).sort(), units.map((_, i) => `d${i}`).sort())
  assert.ok(plan.shards.every((s) => s.datasets.length > 0))
  const total = units.reduce((a, b) => a + b, 0)
  assert.ok(plan.makespan >= total / 8 && plan.makespan <= (total / 8) * 1.1, String(plan.makespan))
})
