import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { appendFile, copyFile, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { UsageError, exitCodesHelp } from '../core/errors.ts'
import { formatFlags, stringFlag, type FlagSpec, type FlagValues, STANDARD_FLAGS } from '../core/flags.ts'
import { TOOL_DIR } from '../core/layout.ts'
import type { Logger } from '../core/log.ts'

// scripts/adopt.ts: puts this tool into an existing eval repo. Copies what runs (scripts, lib/,
// bin/ with the launcher and the build that npm ci runs, package.json and its lock, tsconfig.json,
// remote-eval.mk), adds `include remote-eval.mk` to the repo's Makefile and node_modules/ and the
// bundles' directory to its .gitignore. A file of the repo that differs from ours is never
// overwritten unless --overwrite says so; running it again changes nothing.

const HOME = fileURLToPath(new URL('../..', import.meta.url))
const INCLUDE = 'include remote-eval.mk'
/** What the repo's .gitignore gets unless a line already says so: the packages, the scripts' bundles. */
const IGNORES = ['node_modules/', `${TOOL_DIR}/`]

export const ADOPT_FLAGS: readonly FlagSpec[] = [
  { name: 'into', kind: 'string', value: 'DIR', description: 'the eval repo (where pyproject.toml and configs/ are; required)' },
  { name: 'overwrite', kind: 'boolean', description: "replace the repo's files that differ from this tool's (listed first without it)" },
  { name: 'dry-run', kind: 'boolean', description: 'say what would be copied and changed; write nothing' },
  ...STANDARD_FLAGS,
]

export const ADOPT_USAGE = `Usage: scripts/adopt.ts --into /path/to/eval-repo [--overwrite] [--dry-run]

Adds guardrails remote eval to an existing eval repo: copies scripts/remote_eval/*.ts,
scripts/download_*.ts, lib/, bin/, package.json, package-lock.json, tsconfig.json and
remote-eval.mk, adds "${INCLUDE}" to the repo's Makefile (its own targets keep their names: ours
are remote-sync and assets-*) and node_modules/ and ${TOOL_DIR}/ (the scripts' bundles) to its
.gitignore. Nothing of the repo is overwritten unless you pass --overwrite; files that would be are
listed, and nothing is written. Then, in the repo: npm ci (it also builds the bundles), and
scripts/remote_eval/ssh_eval.ts --help.

Options:
${formatFlags(ADOPT_FLAGS)}

${exitCodesHelp(['ok', 'usage', 'interrupted'])}
`

/** Every file this tool ships into an eval repo, relative to its root. */
export function shippedFiles(): string[] {
  const walk = (rel: string): string[] =>
    readdirSync(path.join(HOME, rel), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(rel, e.name)) : [path.join(rel, e.name)],
    )
  const scripts = ['scripts/remote_eval', 'scripts'].flatMap((dir) =>
    readdirSync(path.join(HOME, dir))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => path.join(dir, f)),
  )
  return [...new Set([...scripts, ...walk('lib'), ...walk('bin'), 'package.json', 'package-lock.json', 'tsconfig.json', 'remote-eval.mk'])]
    .filter((f) => f !== 'scripts/adopt.ts')
    .sort()
}

const same = (a: string, b: string) => existsSync(b) && readFileSync(a).equals(readFileSync(b))

/** The run() of adopt.ts. */
export async function adopt(flags: FlagValues, { logger }: { logger: Logger }) {
  const into = stringFlag(flags, 'into')
  if (into === undefined) throw new UsageError('--into is required: the eval repo to add the tool to, e.g. --into ~/src/guardrails.')
  const repo = path.resolve(into)
  if (!statSync(repo, { throwIfNoEntry: false })?.isDirectory())
    throw new UsageError(`--into ${repo} is not a directory. Give the eval repo's root.`)
  if (!existsSync(path.join(repo, 'pyproject.toml')))
    throw new UsageError(`${repo} has no pyproject.toml: give the root of the eval repo (where pyproject.toml and configs/ are).`)
  const files = shippedFiles()
  const differing = files.filter((f) => existsSync(path.join(repo, f)) && !same(path.join(HOME, f), path.join(repo, f)))
  if (differing.length && flags.overwrite !== true) {
    throw new UsageError(
      `${differing.length} file(s) of ${repo} differ from this tool's and would be overwritten:\n  ${differing.join('\n  ')}\nNothing was written. Move them aside, or pass --overwrite to replace them.`,
    )
  }
  const toCopy = files.filter((f) => !same(path.join(HOME, f), path.join(repo, f)))
  const makefile = path.join(repo, 'Makefile')
  const makeText = existsSync(makefile) ? readFileSync(makefile, 'utf8') : null
  const needsInclude = !(makeText ?? '').split('\n').some((l) => l.trim() === INCLUDE)
  const gitignore = path.join(repo, '.gitignore')
  const ignoreText = existsSync(gitignore) ? readFileSync(gitignore, 'utf8') : ''
  const ignored = ignoreText.split('\n').map((l) => `${l.trim().replace(/^\/|\/$/g, '')}/`)
  const missingIgnores = IGNORES.filter((line) => !ignored.includes(line))
  const needsIgnore = missingIgnores.length > 0
  const dryRun = flags['dry-run'] === true
  for (const file of toCopy) {
    logger.step('done', `${dryRun ? 'would copy' : 'copy'} ${file}${differing.includes(file) ? ' (overwriting)' : ''}`)
    if (dryRun) continue
    await mkdir(path.dirname(path.join(repo, file)), { recursive: true })
    await copyFile(path.join(HOME, file), path.join(repo, file))
  }
  if (needsInclude) {
    logger.step('done', `${dryRun ? 'would add' : 'add'} "${INCLUDE}" to ${makefile}`)
    if (!dryRun) {
      if (makeText === null) await writeFile(makefile, `${INCLUDE}\n`)
      else
        await appendFile(
          makefile,
          `${makeText.endsWith('\n') || makeText === '' ? '' : '\n'}\n# guardrails remote eval: remote-sync and assets-* targets\n${INCLUDE}\n`,
        )
    }
  }
  if (needsIgnore) {
    logger.step('done', `${dryRun ? 'would add' : 'add'} ${missingIgnores.join(' and ')} to ${gitignore}`)
    if (!dryRun) await appendFile(gitignore, `${ignoreText === '' || ignoreText.endsWith('\n') ? '' : '\n'}${missingIgnores.join('\n')}\n`)
  }
  const changed = toCopy.length + Number(needsInclude) + Number(needsIgnore)
  logger.step(
    'done',
    changed
      ? `${dryRun ? 'dry run: nothing written' : 'done'}; next, in ${repo}: npm ci, then scripts/remote_eval/ssh_eval.ts --help`
      : `${repo} already has this version of the tool: nothing to do`,
  )
  return {
    into: repo,
    dry_run: dryRun,
    copied: dryRun ? [] : toCopy,
    overwritten: dryRun ? [] : differing,
    makefile_include_added: needsInclude && !dryRun,
    gitignore_added: needsIgnore && !dryRun,
  }
}
