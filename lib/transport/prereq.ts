import { which } from 'zx'
import { LocalPrerequisiteError } from '../cli/errors.ts'

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
  throw new LocalPrerequisiteError(
    `${missing.join(', ')} not found on this machine (needed ${purpose}).\n${hints.join('\n')}`,
  )
}
