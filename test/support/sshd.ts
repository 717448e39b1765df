import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir, userInfo } from 'node:os'
import { createServer, connect } from 'node:net'
import path from 'node:path'
import { $ } from 'zx'
import { startProcess, type StartedProcess } from '../../lib/core/process.ts'

// A real OpenSSH sshd on 127.0.0.1 and a free high port, with a generated host key, key-only login
// and a dedicated test user whose login shell is zsh. Started once per test run (test/run.ts).

export interface SshdInfo {
  /** ssh_config Host alias that reaches the test user (use with ssh -F configFile). */
  alias: string
  configFile: string
  user: string
  home: string
  port: number
  /** sshd's own log (LogLevel VERBOSE): one "Connection from" line per TCP connection. */
  logFile: string
}

export const TEST_USER = 'gr-eval-test'

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

async function waitForPort(port: number, sshd: StartedProcess, logFile: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await new Promise((r) => setTimeout(r, 50))
  }
  sshd.kill()
  throw new Error(`sshd did not listen on ${port}: ${await readFile(logFile, 'utf8').catch(() => '')}`)
}

/** Where a host of its own keeps its tools: a directory per loopback source address. */
export const HOSTS_DIR = '.gre-test-hosts'

const ZSHENV = [
  '# Something a careless runner would trip over: the login shell prints on every command.',
  'print -u2 -- "zshenv of the test user was read"',
  `# TEST PLUMBING: a connection from a loopback address that has a directory ~/${HOSTS_DIR}/ADDRESS`,
  '# plays a host of its own: its bin/ first on PATH, its env file read. Tests give their host tools',
  '# (nvidia-smi, uv) or a home of its own this way, and never change what another test uses.',
  `() { local d=~/${HOSTS_DIR}/\${SSH_CONNECTION%% *}; [[ -d $d/bin ]] && path=($d/bin $path); [[ -f $d/env ]] && source $d/env; return 0 }`,
  '',
].join('\n')

/** Creates (or refreshes) the zsh test user; needs root, as useradd does. */
async function ensureTestUser(): Promise<string> {
  const zsh = (await $`command -v zsh`.nothrow().quiet()).stdout.trim()
  if (!zsh) throw new Error('zsh is not installed; run .ci/run or: apt-get install -y zsh')
  const exists = await $`id -u ${TEST_USER}`.nothrow().quiet()
  if (exists.exitCode !== 0) await $`useradd --create-home --shell ${zsh} ${TEST_USER}`.quiet()
  // useradd leaves the password field locked ("!"), and sshd without PAM refuses locked accounts.
  await $`usermod --shell ${zsh} --password '*' ${TEST_USER}`.quiet()
  const home = (await $`getent passwd ${TEST_USER}`.quiet()).stdout.split(':')[5] ?? ''
  await writeFile(path.join(home, '.zshenv'), ZSHENV)
  return home
}

export interface SshdOptions {
  /**
   * 'zsh-test-user' (tests; needs root): the dedicated user whose login shell is zsh.
   * 'current': whoever runs this, root or not (the demo); sshd then runs as that user when not root.
   */
  login?: 'zsh-test-user' | 'current'
}

/** What to install when sshd is missing: the message names the package. */
export const SSHD_MISSING =
  'sshd (the OpenSSH server) is not installed. Install it: `sudo apt-get install openssh-server` (Debian/Ubuntu); ' +
  'on macOS use the built-in one (/usr/sbin/sshd).'

/** Starts sshd with its keys and config in a fresh directory; stop() ends it and removes them. */
export async function startSshd(options: SshdOptions = {}): Promise<{ info: SshdInfo; stop: () => Promise<void> }> {
  const login = options.login ?? 'zsh-test-user'
  const root = process.getuid?.() === 0
  if (login === 'zsh-test-user' && !root) {
    throw new Error('The test harness creates a zsh test user and runs sshd: run the tests as root (CI does), e.g. sudo npm test.')
  }
  const sshdBin = (await $`command -v sshd || ls /usr/sbin/sshd`.nothrow().quiet()).stdout.trim().split('\n')[0]
  if (!sshdBin) throw new Error(SSHD_MISSING)
  const user = login === 'current' ? userInfo().username : TEST_USER
  const home = login === 'current' ? userInfo().homedir : await ensureTestUser()
  const dir = await mkdtemp(path.join(existsSync('/tmp') ? '/tmp' : tmpdir(), 'gre-sshd-'))
  // sshd reads authorized_keys as the user it logs in: that user must get through the directory.
  await chmod(dir, 0o755)
  if (root) await mkdir('/run/sshd', { recursive: true, mode: 0o755 })
  const hostKey = path.join(dir, 'host_ed25519')
  const clientKey = path.join(dir, 'client_ed25519')
  await $`ssh-keygen -q -t ed25519 -N '' -C gr-test-host -f ${hostKey}`.quiet()
  await $`ssh-keygen -q -t ed25519 -N '' -C gr-test-client -f ${clientKey}`.quiet()
  const authorized = path.join(dir, 'authorized_keys')
  await writeFile(authorized, await readFile(`${clientKey}.pub`))
  await chmod(authorized, 0o644)

  const port = await freePort()
  const logFile = path.join(dir, 'sshd.log')
  const sshdConfig = path.join(dir, 'sshd_config')
  await writeFile(
    sshdConfig,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${authorized}`,
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      `AllowUsers ${user}`,
      ...(user === 'root' ? ['PermitRootLogin prohibit-password'] : []),
      'LogLevel VERBOSE',
      'MaxSessions 64',
      'MaxStartups 64',
      '',
    ].join('\n'),
  )
  await $`${sshdBin} -t -f ${sshdConfig}`.quiet()
  const sshd = startProcess(sshdBin, ['-D', '-f', sshdConfig, '-E', logFile])
  await waitForPort(port, sshd, logFile)

  const knownHosts = path.join(dir, 'known_hosts')
  const hostPub = (await readFile(`${hostKey}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ')
  await writeFile(knownHosts, `gr-test-sshd ${hostPub}\n`)
  const configFile = path.join(dir, 'ssh_config')
  await writeFile(
    configFile,
    [
      'Host gr-test',
      '  HostName 127.0.0.1',
      `  Port ${port}`,
      `  User ${user}`,
      `  IdentityFile ${clientKey}`,
      '  IdentitiesOnly yes',
      '  HostKeyAlias gr-test-sshd',
      `  UserKnownHostsFile ${knownHosts}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  )
  return {
    info: { alias: 'gr-test', configFile, user, home, port, logFile },
    stop: async () => {
      sshd.kill('SIGTERM')
      // Sessions a test left open (an ssh master of a killed process) hold sshd's output open;
      // they end with the test user's processes, which are all the tests'.
      if (login === 'zsh-test-user') await $`pkill -KILL -u ${TEST_USER}`.nothrow().quiet()
      await sshd.result
      await rm(dir, { recursive: true, force: true })
    },
  }
}
