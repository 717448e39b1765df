import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { $ } from 'zx'

// A real venv with Hugging Face's own Python clients (huggingface_hub, datasets), built once and
// reused by every test run on this machine. No Python package index is reachable on these
// machines, whose image carries a wheelhouse instead: pip installs from GR_WHEELHOUSE when set,
// else from a wheelhouse found in the usual places, else from the normal index. Built with
// /usr/bin/python3 when there is one, so that other users (the SSH test user, pods) can run it.

const TEST_PACKAGES = ['huggingface_hub', 'datasets']

/** GR_WHEELHOUSE, or the folder of a huggingface_hub wheel under the usual roots, or '' (the index). */
async function findWheelhouse(): Promise<string> {
  if (process.env.GR_WHEELHOUSE) return process.env.GR_WHEELHOUSE
  const found = await $`find /opt /srv /var /usr/share /home -name 'huggingface_hub-*.whl' -print -quit 2>/dev/null`.nothrow().quiet()
  const wheel = found.stdout.trim()
  return wheel ? wheel.slice(0, wheel.lastIndexOf('/')) : ''
}

export async function ensureTestVenv(): Promise<string> {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
  const wheelhouse = await findWheelhouse()
  const key = createHash('sha256')
    .update(JSON.stringify([python, wheelhouse, TEST_PACKAGES]))
    .digest('hex')
    .slice(0, 12)
  const venv = `/tmp/gre-test-venv-${key}`
  if (existsSync(`${venv}/.complete`)) return venv
  const building = `${venv}.building-${process.pid}`
  await rm(building, { recursive: true, force: true })
  await $`${python} -m venv ${building}`.quiet()
  const source = wheelhouse ? ['--no-index', '--find-links', wheelhouse] : []
  await $`${building}/bin/pip install --quiet --disable-pip-version-check ${source} ${TEST_PACKAGES}`.quiet()
  // A venv records its own path in scripts and pyvenv.cfg; python -m works from anywhere, so
  // renaming the finished venv into place is safe for what the tests run.
  await $`${building}/bin/python -c 'import huggingface_hub, datasets'`.quiet()
  await $`touch ${building}/.complete`
  await rm(venv, { recursive: true, force: true })
  await rename(building, venv)
  return venv
}
