import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'

// Report folders as the pipeline leaves them, for the history page's tests: run.json with the
// fields recordRun writes, and metrics.csv in the real eval's columns.

/** One metrics.csv row: task, scope, label, metric family, then precision, recall, f1 ('' for none). */
export type FixtureRow = [task: string, scope: string, label: string, family: string, p: string, r: string, f1: string]

export interface FixtureRun {
  /** Fields that differ from a finished guardrails_ru/fast run of a clean commit. */
  record?: Record<string, unknown>
  /** metrics.csv's rows; no metrics.csv without them. */
  rows?: FixtureRow[]
  /** Whether to write a report.md (default true). */
  report?: boolean
}

const quoted = (field: string) => `"${field.replace(/"/g, '""')}"`

/** metrics.csv as Python's csv module writes it (every field quoted, CRLF). */
export function metricsCsv(rows: readonly FixtureRow[]): string {
  const lines = [
    ['task', 'scope', 'dataset', 'label', 'metric_family', 'precision', 'recall', 'f1'],
    ...rows.map(([task, scope, label, family, p, r, f1]) => [task, scope, '', label, family, p, r, f1]),
  ]
  return lines.map((line) => `${line.map(quoted).join(',')}\r\n`).join('')
}

/** Writes the report folder `folder` of reportsDir; returns its path. */
export async function writeFixtureRun(reportsDir: string, folder: string, run: FixtureRun = {}): Promise<string> {
  const dir = path.join(reportsDir, folder)
  const file = (name: string) => path.join(dir, name)
  await mkdir(dir, { recursive: true })
  const record = {
    target: 'ssh gpu-box',
    remote_dir: '/home/me/guardrails',
    remote_run_id: '20261201-100000-abcd',
    run_id: folder,
    suite: 'guardrails_ru',
    split: 'fast',
    runtime: 'cuda',
    gpus: '0',
    started_at: '2026-12-01T10:00:00Z',
    state: 'finished',
    exit_code: 0,
    code: { commit: '0123456789abcdef0123456789abcdef01234567', dirty: false },
    argv: [],
    runner: 'guardrails-remote-eval 0.1.0',
    ...run.record,
  }
  await writeFile(file('run.json'), `${JSON.stringify(record, null, 2)}\n`)
  if (run.rows) await writeFile(file('metrics.csv'), metricsCsv(run.rows))
  if (run.report ?? true) await writeFile(file('report.md'), `# ${folder}\n`)
  return dir
}
