import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { groupBlocks, groupScript, parseDocBlocks, type BlockGroup } from '../support/doc-blocks.ts'
import { startDocTargets, type DocTargets } from '../support/doc-targets.ts'

// Every shell block of the user docs, run as written: bash -euo pipefail in a copy of the example
// eval repo, against the test sshd (as `gpu-box`), the API server double through the real kubectl (pod ml/eval-0 of context
// gpu-cluster) and the Hub double. A block either runs and ends as its markers say, or carries
// `<!-- doc-test: skip: REASON -->`; a new block with neither fails here until it is one or the
// other (see test/support/doc-blocks.ts for the markers).

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DOCS = ['docs/REMOTE_EVAL.md', 'docs/RUNBOOK.md']
const BLOCK_TIMEOUT_MS = 120_000

interface Outcome {
  code: number | null
  signal: NodeJS.Signals | null
  output: string
  timedOut: boolean
}

/** Runs a script with bash -euo pipefail in its own process group, killed whole on timeout. */
function runBash(file: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-euo', 'pipefail', file], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const chunks: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => chunks.push(c))
    child.stderr.on('data', (c: Buffer) => chunks.push(c))
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
    }, BLOCK_TIMEOUT_MS)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8'), timedOut })
    })
  })
}

/** The last lines of a block's output, for the failure message. */
const tail = (text: string, lines = 60) => text.trimEnd().split('\n').slice(-lines).join('\n')

let targets: DocTargets
before(async () => {
  targets = await startDocTargets()
})
after(async () => {
  await targets?.stop()
})

for (const doc of DOCS) {
  const groups: BlockGroup[] = groupBlocks(doc, parseDocBlocks(readFileSync(path.join(ROOT, doc), 'utf8')))

  // One scratch project and fresh targets per document; its blocks run in order and build on each other.
  describe(doc, () => {
    let project: string
    let scripts: string
    before(async () => {
      await targets.reset()
      project = await targets.newProject()
      scripts = await mkdtemp(path.join(tmpdir(), 'gre-doc-blocks-'))
    })
    after(async () => {
      for (const dir of [project, scripts]) if (dir) await rm(dir, { recursive: true, force: true })
    })

    test(`${doc} has shell blocks`, () => assert.ok(groups.length > 0, `no sh/bash/console block found in ${doc}`))

    for (const group of groups) {
      const first = group.blocks[0]!
      const problems = group.blocks.flatMap((b) => b.problems.map((p) => `line ${b.line}: ${p}`))
      for (const b of group.blocks.slice(1)) {
        if (b.skip !== undefined)
          problems.push(`line ${b.line}: a continued block cannot be skipped alone; skip the first block of the group`)
      }
      const name = `${group.name} (${first.section})`
      const skip = problems.length === 0 && first.skip ? first.skip : false

      test(name, { skip, timeout: BLOCK_TIMEOUT_MS + 10_000 }, async () => {
        assert.deepEqual(problems, [], `the markers before the block at ${group.name} are wrong`)
        const file = path.join(scripts, `block-${first.line}.sh`)
        await writeFile(file, groupScript(group))
        const result = await runBash(file, project, targets.env)
        const how = result.timedOut ? `timed out after ${BLOCK_TIMEOUT_MS / 1000} s` : `ended with exit ${result.code ?? result.signal}`
        assert.equal(
          result.code,
          0,
          `${group.name} ${how}. Fix the doc or the code, or mark the block ` +
            `(<!-- doc-test: expect-exit N --> or <!-- doc-test: skip: REASON -->). Its output:\n${tail(result.output)}`,
        )
      })
    }
  })
}
