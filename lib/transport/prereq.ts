import { which } from 'zx/core'
import { LocalPrerequisiteError } from '../core/errors.ts'
import { spawnProcess } from '../core/process.ts'

// Local programs each transport needs, checked before anything runs, with how to get them.

const INSTALL_HINTS: Record<string, string> = {
  ssh: 'Install the OpenSSH client: `sudo apt-get install openssh-client` (Debian/Ubuntu) or `brew install openssh` (macOS).',
  rsync: 'Install rsync: `sudo apt-get install rsync` (Debian/Ubuntu) or `brew install rsync` (macOS).',
  kubectl: 'Install kubectl: https://kubernetes.io/docs/tasks/tools/ (or `sudo snap install kubectl --classic`, `brew install kubectl`).',
  tar: 'Install tar: `sudo apt-get install tar` (Debian/Ubuntu); macOS ships bsdtar, or `brew install gnu-tar`.',
  git: 'Install git: `sudo apt-get install git` (Debian/Ubuntu) or `brew install git` (macOS).',
}

/** Throws a LocalPrerequisiteError (exit 3) naming every missing program and how to install it. */
export async function requireLocalTools(tools: readonly string[], purpose: string): Promise<void> {
  const missing: string[] = []
  for (const tool of tools) {
    if (!(await which(tool, { nothrow: true }))) missing.push(tool)
  }
  if (missing.length === 0) return
  const hints = missing.map((tool) => `  ${tool}: ${INSTALL_HINTS[tool] ?? `install ${tool} and put it on PATH.`}`)
  throw new LocalPrerequisiteError(`${missing.join(', ')} not found on this machine (needed ${purpose}).\n${hints.join('\n')}`)
}

let gnuTarCommand: Promise<string> | null = null

/**
 * The GNU tar command: `tar` when it is GNU tar, else `gtar`. The tar transfers use GNU options
 * (--null -T, --transform, --anchored) that bsdtar, macOS's tar, does not have.
 */
export function gnuTar(): Promise<string> {
  gnuTarCommand ??= (async () => {
    for (const candidate of ['tar', 'gtar']) {
      const version = await spawnProcess(candidate, ['--version']).catch(() => null)
      if (version?.exitCode === 0 && /GNU tar/.test(version.stdout)) return candidate
    }
    throw new LocalPrerequisiteError(
      'GNU tar not found on this machine (tar here is not GNU tar, and there is no gtar). ' +
        'Install it: `brew install gnu-tar` (macOS), `sudo apt-get install tar` (Debian/Ubuntu).',
    )
  })()
  return gnuTarCommand
}
