// The target's upkeep, apart from any run: what the runs there take (--list), removing old ones
// (--prune), and whether its models and datasets directories are complete (--check-assets).
import { ExitCode } from '../core/errors.ts'
import { CliResult } from '../core/result.ts'
import { formatBytes } from '../core/units.ts'
import type { EvalMode } from './options.ts'
import { listRuns, pruneRuns } from './runs.ts'
import { assetsJson, verifyAssetDirs, type TargetContext } from './steps.ts'
import { runsTable } from './summary.ts'

/** What each of these needs: the open target, the options, the log. */
type Upkeep = Pick<TargetContext, 'transport' | 'options' | 'logger'>

const total = (items: ReadonlyArray<{ bytes: number | null }>) => items.reduce((sum, item) => sum + (item.bytes ?? 0), 0)

/** --list: every run on the target with both ids, its state and the space it takes. */
export async function listOnTarget({ transport, options, logger }: Upkeep): Promise<CliResult> {
  const runs = await listRuns(transport, options.remoteDir)
  logger.step(
    'done',
    runs.length
      ? `${runsTable(runs)}\n${runs.length} run(s), ${formatBytes(total(runs))} in all (their records and report directories there; --prune removes old ones)`
      : `no runs in ${options.remoteDir} on ${transport.target}`,
  )
  return new CliResult({ target: transport.target, remote_dir: options.remoteDir, runs, bytes: total(runs) }, ExitCode.ok)
}

/** --prune: removes the ended runs past the limits, with their report directories (--dry-run: names them). */
export async function pruneOnTarget(
  { transport, options, logger }: Upkeep,
  mode: Extract<EvalMode, { kind: 'prune' }>,
): Promise<CliResult> {
  const pruned = await pruneRuns(transport, { remoteDir: options.remoteDir, ...mode, dry: options.dryRun })
  const verb = options.dryRun ? 'would remove' : 'removed'
  for (const run of pruned) logger.step('run', `${verb} run ${run.id} (${formatBytes(run.bytes)})`)
  logger.step(
    'done',
    `${verb} ${pruned.length} run(s) in ${options.remoteDir} on ${transport.target}, ${formatBytes(total(pruned))}${options.dryRun ? ' (dry run: nothing removed)' : ''}`,
  )
  return new CliResult(
    { target: transport.target, remote_dir: options.remoteDir, dry_run: options.dryRun, pruned, bytes: total(pruned) },
    ExitCode.ok,
  )
}

/** --check-assets: the target's models and datasets directories against their manifests; exit 10 or 11 when not complete. */
export async function checkAssetsOnTarget(
  { transport, options, logger }: Upkeep,
  mode: Extract<EvalMode, { kind: 'check-assets' }>,
): Promise<CliResult> {
  const reports = await verifyAssetDirs({ transport, options, logger }, { checksums: mode.checksums, consequence: '' })
  logger.step(
    'done',
    `models and datasets on ${transport.target} are complete${mode.checksums ? ' (checksums verified)' : ' (sizes checked)'}`,
  )
  return new CliResult({ target: transport.target, ...assetsJson(reports) }, ExitCode.ok)
}
