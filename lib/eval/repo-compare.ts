import { lstat, readFile } from 'node:fs/promises'
import path from 'node:path'
import { escapeControls } from '../core/filenames.ts'
import { TOOL_DIR } from '../core/layout.ts'
import { lastLine } from '../core/text.ts'
import { pythonCommand } from '../target/uv.ts'
import { pullRunDir, pythonOnTarget, SCRIPTS, type TargetContext } from './steps.ts'

// --compare-to: the repo's own compare module (python -m app.eval.compare --base B --new N --out
// DIR, writing diff.json and diff.md) run on the target, as the runbook does it by hand: the base
// report goes there from this machine, the diff comes back beside the run's report and its
// diff.md is printed. A failure here is a warning: the run and its report are home already.

/** What --compare-to brought home: the base compared with, and the diff's files here. */
export interface RepoComparison {
  base: string
  module: string
  dir: string
  diff_md: string | null
  diff_json: string | null
}

/** Compares the run's report (`newReport`, on the target) with --compare-to's; the diff goes to localDir/compare. */
export async function compareOnTarget(
  context: TargetContext,
  run: { id: string; newReport: string; localDir: string },
): Promise<RepoComparison | null> {
  const { transport, options, logger, signal } = context
  const python = pythonOnTarget(options)
  const { report: base, module } = options.compareTo!
  const dir = `${options.remoteDir}/${TOOL_DIR}/compare/${run.id}`
  const fail = (why: string) => {
    logger.step('warn', `--compare-to: ${why}; the report is fetched, and the table of changed rows above stands.`)
    return null
  }
  const sent = await transport.run('rm -rf -- "$1" && mkdir -p -- "$1/diff" && cat > "$1/base.json"', [dir], {
    stdin: await readFile(base),
    signal,
  })
  if (sent.exitCode !== 0) return fail(`could not send ${base} to ${transport.target} (${lastLine(sent.stderrTail)})`)
  const command = pythonCommand(python, ['-m', module, '--base', `${dir}/base.json`, '--new', run.newReport, '--out', `${dir}/diff`], {
    sync: false,
  })
  logger.step('run', `comparing with ${base}: ${command.join(' ')}`)
  const compared = await transport.run(SCRIPTS.module, [options.remoteDir, '--', ...command], {
    onStderrLine: (line) => logger.step('run', `[compare] ${line}`),
    signal,
  })
  if (compared.exitCode !== 0) return fail(`python -m ${module} exited ${compared.exitCode} (${lastLine(compared.stderrTail)})`)
  const local = path.join(run.localDir, 'compare')
  await pullRunDir(context, { remote: `${dir}/diff`, runId: 'compare', skipped: [] }, local)
  const file = async (name: string) => ((await lstat(path.join(local, name)).catch(() => null))?.isFile() ? path.join(local, name) : null)
  const [diffMd, diffJson] = [await file('diff.md'), await file('diff.json')]
  if (diffMd) {
    // diff.md was written on the target from reports: each line shown as text, never as terminal codes.
    const lines = (await readFile(diffMd, 'utf8')).trimEnd().split('\n').map(escapeControls)
    logger.step('done', `${module} against ${base}:\n${lines.join('\n')}`)
  } else logger.step('warn', `--compare-to: python -m ${module} wrote no diff.md (what it wrote is in ${local})`)
  return { base, module, dir: local, diff_md: diffMd, diff_json: diffJson }
}
