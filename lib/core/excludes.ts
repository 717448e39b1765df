import { TOOL_DIR } from './layout.ts'

// The one list of paths a sync never ships and never deletes on the target. It holds everything
// the documented bash runner excluded, plus what a TypeScript + Python repo must never send:
// dependencies, caches, build metadata, secrets. It is applied to the file selection here, and the
// same rules are rendered for rsync and for tar so the transfer tools enforce them a second time.
//
// Semantics follow gitignore/rsync for the subset used: a rule matches a path component by glob
// (`*`, `?`), at any depth unless anchored to the project root; `dirOnly` rules match directories.
// `reports/` and `baselines/` are anchored: they are the eval's outputs at the root, and a Python
// package named `reports/` deeper in the tree is code that must ship.

export interface ExcludeRule {
  glob: string
  dirOnly: boolean
  anchored: boolean
  why: string
}

const rule = (pattern: string, why: string): ExcludeRule => ({
  glob: pattern.replace(/^\//, '').replace(/\/$/, ''),
  dirOnly: pattern.endsWith('/'),
  anchored: pattern.startsWith('/'),
  why,
})

export const EXCLUDES: readonly ExcludeRule[] = [
  // From the documented bash runner.
  rule('.git/', 'version control'),
  rule('.env*', 'secrets: HF_TOKEN lives in .env.eval on the remote only'),
  rule('.venv', 'Python environment, built on the target by uv (a symlink too)'),
  rule('.eval_cache/', 'eval cache'),
  rule('.models/', 'models: never synced, prepared on the target'),
  rule('.datasets/', 'datasets: never synced, prepared on the target'),
  rule('/reports/', 'eval outputs'),
  rule('/baselines/', 'baseline outputs'),
  rule('__pycache__/', 'Python bytecode'),
  rule('.pytest_cache/', 'pytest cache'),
  // Added: a TypeScript + Python repo.
  // Also when it is a symlink (a shared install): git's dir-only rule would not match that.
  rule('node_modules', 'npm packages, local only'),
  rule(`${TOOL_DIR}/`, "this tool's own state on the target"),
  rule('*.pyc', 'Python bytecode'),
  rule('*.pyo', 'Python bytecode'),
  rule('.mypy_cache/', 'type checker cache'),
  rule('.ruff_cache/', 'linter cache'),
  rule('.tox/', 'test environments'),
  rule('.nox/', 'test environments'),
  rule('.hypothesis/', 'test cache'),
  rule('.ipynb_checkpoints/', 'notebook autosaves'),
  rule('*.egg-info/', 'build metadata'),
  rule('.coverage', 'coverage data'),
  rule('htmlcov/', 'coverage report'),
  rule('wandb/', 'experiment tracker runs'),
  rule('mlruns/', 'experiment tracker runs'),
  rule('.DS_Store', 'macOS metadata'),
  // Credential files, whatever git says of them (committed with `git add -f`, untracked, ignored).
  // Drawn from gitrob's file signatures (github.com/michenriksen/gitrob, core/signatures.go), the
  // credential files among them, plus the ones ML and cloud tooling leaves in a home or a repo.
  // Their directories (.ssh/, .aws/, ...) never hold code, so they stay home whole.
  rule('.netrc', 'credentials (auto-login)'),
  rule('_netrc', 'credentials (auto-login)'),
  rule('.npmrc', 'may hold a registry token'),
  rule('.pypirc', 'PyPI upload credentials'),
  rule('.git-credentials', 'git-credential-store passwords'),
  rule('.pgpass', 'PostgreSQL passwords'),
  rule('.htpasswd', 'Apache password hashes'),
  rule('.s3cfg', 's3cmd credentials'),
  rule('.ssh/', 'SSH keys and config'),
  rule('.aws/', 'AWS credentials and config'),
  rule('.kube/', 'Kubernetes credentials (kubeconfig)'),
  rule('.docker/', 'registry credentials (config.json)'),
  rule('.gnupg/', 'GPG keys'),
  rule('.gem/', 'RubyGems credentials'),
  rule('.huggingface/', 'a Hugging Face token'),
  rule('*.pem', 'private keys'),
  rule('*.key', 'private keys'),
  rule('*.p12', 'key bundles'),
  rule('*.pfx', 'key bundles'),
  rule('*.pkcs12', 'key bundles'),
  rule('*.jks', 'Java keystores'),
  rule('*.keystore', 'keystores'),
  rule('*.ppk', 'PuTTY private keys'),
  rule('*.kdbx', 'KeePass databases'),
  rule('id_rsa*', 'SSH keys'),
  rule('id_dsa*', 'SSH keys'),
  rule('id_ecdsa*', 'SSH keys'),
  rule('id_ed25519*', 'SSH keys'),
  rule('*_rsa', 'SSH keys'),
  rule('*_ecdsa', 'SSH keys'),
  rule('*_ed25519', 'SSH keys'),
  rule('credentials.json', 'OAuth client secrets'),
  rule('credentials.xml', 'Jenkins credentials'),
  rule('service-account*.json', 'cloud service account keys'),
  rule('service_account*.json', 'cloud service account keys'),
  rule('secrets.yaml', 'secrets'),
  rule('secrets.yml', 'secrets'),
  rule('secrets.json', 'secrets'),
  rule('*.tfstate', 'Terraform state (holds every secret it manages)'),
  rule('*.tfstate.backup', 'Terraform state'),
  rule('terraform.tfvars', 'Terraform variables (provider credentials)'),
  rule('.bash_history', 'shell history'),
  rule('.zsh_history', 'shell history'),
  rule('.python_history', 'shell history'),
]

/** One glob of a path component as regex source: `*` and `?` never cross `/`. */
const globSource = (glob: string) =>
  glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]')

interface CompiledRules {
  anyDepth: RegExp
  anyDepthDir: RegExp
  root: RegExp
  rootDir: RegExp
}

const NEVER = /$^/
const compiledRules = new WeakMap<readonly ExcludeRule[], CompiledRules>()

/** The rules as four alternations (by anchoring and directory-only), compiled once per list. */
function compile(rules: readonly ExcludeRule[]): CompiledRules {
  let compiled = compiledRules.get(rules)
  if (!compiled) {
    const alternation = (pick: (r: ExcludeRule) => boolean) => {
      const picked = rules.filter(pick).map((r) => globSource(r.glob))
      return picked.length ? new RegExp(`^(?:${picked.join('|')})$`) : NEVER
    }
    compiled = {
      anyDepth: alternation((r) => !r.anchored && !r.dirOnly),
      anyDepthDir: alternation((r) => !r.anchored && r.dirOnly),
      root: alternation((r) => r.anchored && !r.dirOnly),
      rootDir: alternation((r) => r.anchored && r.dirOnly),
    }
    compiledRules.set(rules, compiled)
  }
  return compiled
}

/**
 * Whether a path relative to the project root is excluded: itself or any directory above it
 * matches a rule. `isDir` says whether the last component is a directory.
 */
export function isExcluded(relPath: string, isDir = false, rules: readonly ExcludeRule[] = EXCLUDES): boolean {
  const { anyDepth, anyDepthDir, root, rootDir } = compile(rules)
  const parts = relPath.split('/').filter((p) => p !== '' && p !== '.')
  return parts.some((name, index) => {
    const componentIsDir = index < parts.length - 1 || isDir
    if (anyDepth.test(name) || (componentIsDir && anyDepthDir.test(name))) return true
    return index === 0 && (root.test(name) || (componentIsDir && rootDir.test(name)))
  })
}

/** rsync filter arguments: `--exclude=/reports/` for anchored rules, `--exclude=.venv/` for others. */
export function rsyncExcludeArgs(rules: readonly ExcludeRule[] = EXCLUDES): string[] {
  return rules.map((r) => `--exclude=${r.anchored ? '/' : ''}${r.glob}${r.dirOnly ? '/' : ''}`)
}

/**
 * An rsync exclude pattern that matches exactly this relative path (a directory when it ends in /),
 * anchored at the transfer root. rsync reads `*`, `?` and `[` as wildcards, and then a backslash
 * as an escape: a name holding any of them is escaped, or it would match other names, or not its own.
 */
export function rsyncExactPattern(relPath: string): string {
  const escaped = /[*?[]/.test(relPath) ? relPath.replace(/[\\*?[]/g, '\\$&') : relPath
  return `/${escaped}`
}

/**
 * GNU tar arguments. tar has no directory-only patterns: a directory rule becomes `name/*`, which
 * matches what lies under such a directory but not a file of that name. Archive names may start
 * with `./`, so an anchored rule is given in both spellings under --anchored.
 */
export function tarExcludeArgs(rules: readonly ExcludeRule[] = EXCLUDES): string[] {
  const glob = (r: ExcludeRule) => (r.dirOnly ? `${r.glob}/*` : r.glob)
  const anchored = rules.filter((r) => r.anchored).flatMap((r) => [`--exclude=./${glob(r)}`, `--exclude=${glob(r)}`])
  const floating = rules.filter((r) => !r.anchored).map((r) => `--exclude=${glob(r)}`)
  return ['--anchored', ...anchored, '--no-anchored', ...floating]
}
