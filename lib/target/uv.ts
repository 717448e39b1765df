import { RemotePrerequisiteError } from '../core/errors.ts'
import { callFunction, loadBashLibrary } from '../transport/script.ts'
import { lastLine } from '../core/text.ts'
import type { Transport } from '../transport/types.ts'

// The eval repo's Python on the target: through uv (found on PATH, in ~/.local/bin or in
// ~/.cargo/bin, where uv's installer puts it and where a non-login shell's PATH often does not
// reach), or through a prebuilt venv given with --venv. Everything Python runs through here.

export type PythonEnv = { kind: 'uv'; projectDir: string; extras: string[] } | { kind: 'venv'; python: string; version?: string }

/**
 * The preamble of every script that runs uv: it finds uv where the preflight looks (PATH, then
 * ~/.local/bin, then ~/.cargo/bin), so the commands say plain `uv` and are the same whatever the
 * target answered (a dry run prints them exactly).
 */
export const UV_ON_PATH = 'command -v uv >/dev/null 2>&1 || PATH=$PATH:$HOME/.local/bin:$HOME/.cargo/bin'

const FIND_SCRIPT = callFunction(loadBashLibrary(new URL('./python-env.sh', import.meta.url)), 'find_python_env')

export const INSTALL_UV_HINT =
  'Install uv there (curl -LsSf https://astral.sh/uv/install.sh | sh, which puts it in ~/.local/bin), ' +
  'or pass --venv /path/to/venv for a prebuilt environment with the eval dependencies.'

/** Finds uv or the given venv on the target; exit 4 with what to install when there is neither. */
export async function findPythonEnv(
  transport: Transport,
  options: { projectDir: string; venv?: string; extras: readonly string[] },
): Promise<PythonEnv> {
  const result = await transport.run(FIND_SCRIPT, [options.venv ?? ''])
  if (result.exitCode !== 0) {
    throw new RemotePrerequisiteError(`Could not look for Python on ${transport.target}: ${lastLine(result.stderrTail)}`)
  }
  const records = result.stdout.split('\0').filter(Boolean)
  const found = records[0] ?? 'none no answer'
  const space = found.indexOf(' ')
  const [kind, where] = [found.slice(0, space), found.slice(space + 1)]
  if (kind === 'venv') {
    const version = records.find((r) => r.startsWith('python '))?.slice(7) || undefined
    return { kind: 'venv', python: where, version }
  }
  if (kind === 'uv') return { kind: 'uv', projectDir: options.projectDir, extras: [...options.extras] }
  throw new RemotePrerequisiteError(`No Python environment on ${transport.target}: ${where}. ${INSTALL_UV_HINT}`)
}

/** The command that runs `python ARGS...` in the environment (uv run --extra ... python, or the venv's). */
export function pythonCommand(env: PythonEnv, args: readonly string[], options: { sync?: boolean } = {}): string[] {
  if (env.kind === 'venv') return [env.python, ...args]
  const extras = env.extras.flatMap((e) => ['--extra', e])
  return ['uv', 'run', '--project', env.projectDir, ...(options.sync === false ? ['--no-sync'] : []), ...extras, 'python', ...args]
}

/** `uv sync` with the extras (nothing to do for a prebuilt venv). */
export function syncCommand(env: PythonEnv): string[] | null {
  if (env.kind === 'venv') return null
  return ['uv', 'sync', '--project', env.projectDir, ...env.extras.flatMap((e) => ['--extra', e])]
}
