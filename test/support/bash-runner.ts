// The real eval repo's bash runner (guardrails:scripts/remote_eval/*.sh), as far as the tests and
// benchmarks compare with it: the excludes of its rsync line.

export const BASH_RUNNER_EXCLUDES = [
  '.git/',
  '.env*',
  '.venv/',
  '.eval_cache/',
  '.models/',
  '.datasets/',
  'reports/',
  'baselines/',
  '__pycache__/',
  '.pytest_cache/',
]
