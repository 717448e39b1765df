import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { gzipSync } from 'node:zlib'
import path from 'node:path'
import { $, type ProcessPromise } from 'zx/core'
import { TransportError, UsageError } from '../core/errors.ts'
import { nulList } from '../core/filenames.ts'
import { silentLogger, type Logger } from '../core/log.ts'
import { spawnProcess } from '../core/process.ts'
import { rsyncExactPattern, rsyncExcludeArgs } from '../core/excludes.ts'
import { requireLocalTools } from './prereq.ts'
import { runFramed } from './run.ts'
import { REMOTE_COMMAND } from './script.ts'
import { shellQuote, pasteWord } from '../core/shell.ts'
import { BEGIN_SCRIPT, COMMIT_SCRIPT, pushFailure, removalList, removalOutcome, tarPull, tarPush, tellingLine } from './tree.ts'
import { lastLine } from '../core/text.ts'
import type { PullReport, PushPlan, PushReport, RunOptions, RunResult, Target, TargetKind, Transport } from './types.ts'
import { onCleanup } from '../core/cleanup.ts'
import { listFlag, required, stringFlag, wholeNumberFlag } from '../core/flags.ts'
import { validateRemoteDir } from '../core/remote-path.ts'

// One OpenSSH master connection carries the whole run: every script and every rsync rides it, so a
// session opens exactly one TCP connection and authenticates once. The user's ~/.ssh/config still
// applies (host aliases, keys, jump hosts); our -o options only add to it.

export interface SshTransportOptions {
  /** Host as ssh understands it: an alias from ~/.ssh/config, host, or user@host. */
  host: string
  /** Extra `-o Key=Value` options, given before ours so they win (ssh keeps the first value). */
  sshOptions?: readonly string[]
  /** An ssh_config file to use instead of ~/.ssh/config (ssh -F). */
  configFile?: string
  /** How long connecting may take before ssh gives up (a host that drops packets): 15 s by default. */
  connectTimeoutSec?: number
  /** How long the master stays up with no session, should this process die without closing it. */
  controlPersistSec?: number
  logger?: Logger
}

const HOST_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.@%+-]*$/
const OPTION_PATTERN = /^[A-Za-z][A-Za-z0-9]*[= ]\S.*$/

/** Refuses a host or ssh option that ssh would read as something else (an option, a command). */
export function validateSshTarget(host: string, sshOptions: readonly string[] = []): void {
  if (!HOST_PATTERN.test(host)) {
    throw new UsageError(
      `--host ${JSON.stringify(host)} is not a host name. Use an alias from ~/.ssh/config, host or user@host ` +
        '(letters, digits and . _ - @ % + only).',
    )
  }
  for (const option of sshOptions) {
    if (!OPTION_PATTERN.test(option) || /[;&|$`<>\\'"\n\r]/.test(option)) {
      throw new UsageError(
        `--ssh-option ${JSON.stringify(option)} is not an ssh option without shell characters. Give it as Key=Value, ` +
          'e.g. --ssh-option Port=2222; put anything fancier (a ProxyCommand with pipes) in your ~/.ssh/config.',
      )
    }
  }
}

/** How messages name an SSH target. */
export const sshTargetName = (host: string) => `ssh ${host}`

export class SshTransport implements Transport {
  readonly kind = 'ssh' as const
  readonly pushesByRsync = SSH_KIND.pushesByRsync
  readonly target: string
  private readonly options: SshTransportOptions
  private readonly logger: Logger
  private controlDir: string | null = null
  private starting: ProcessPromise | null = null
  private closed = false
  private hasRemoteRsync: boolean | null = null

  private constructor(options: SshTransportOptions) {
    this.options = options
    this.target = sshTargetName(options.host)
    this.logger = options.logger ?? silentLogger
  }

  /**
   * Checks the target and local tools; connects nothing yet. Register close() for every way out,
   * then call connect(): a Ctrl-C while connecting must stop the master that is being started.
   */
  static async create(options: SshTransportOptions): Promise<SshTransport> {
    validateSshTarget(options.host, options.sshOptions)
    await requireLocalTools(['ssh', 'rsync'], `to reach ${options.host} over SSH`)
    return new SshTransport(options)
  }

  /** create() then connect(), closing again if the connection fails. */
  static async open(options: SshTransportOptions): Promise<SshTransport> {
    const transport = await SshTransport.create(options)
    try {
      await transport.connect()
    } catch (error) {
      await transport.close()
      throw error
    }
    return transport
  }

  /** Options shared by the master and every client: the control socket, the user's, ours. */
  private commonArgs(): string[] {
    const args = ['-o', `ControlPath=${this.controlPath()}`]
    if (this.options.configFile) args.push('-F', this.options.configFile)
    for (const option of this.options.sshOptions ?? []) args.push('-o', option)
    args.push(
      '-o',
      'BatchMode=yes',
      '-o',
      `ConnectTimeout=${this.connectTimeoutSec()}`,
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'ServerAliveCountMax=4',
      // Our scripts are text that zlib shrinks to a third: fewer bytes, and fewer round trips of
      // TCP's slow start, on a slow link. rsync and tar compress their data themselves.
      '-o',
      'Compression=yes',
    )
    return args
  }

  /** Arguments of a session over the master (never a second connection while the master lives). */
  private clientArgs(): string[] {
    return ['-o', 'ControlMaster=no', ...this.commonArgs()]
  }

  private connectTimeoutSec(): number {
    return this.options.connectTimeoutSec ?? 15
  }

  private controlPath(): string {
    if (!this.controlDir) throw new Error('SSH transport used before open() or after close()')
    return path.join(this.controlDir, 'cm')
  }

  /** Opens the master connection. Exit 5 with ssh's own message when it cannot. */
  async connect(): Promise<void> {
    // Unix socket paths are short (~104 bytes): keep the private dir in /tmp, not a long $TMPDIR.
    const dir = await mkdtemp(path.join(existsSync('/tmp') ? '/tmp' : tmpdir(), 'gre-'))
    if (this.closed) return void (await rm(dir, { recursive: true, force: true }))
    this.controlDir = dir
    const log = path.join(dir, 'master.log')
    const args = [
      '-M',
      '-N',
      '-f',
      '-E',
      log,
      '-o',
      'ControlMaster=yes',
      '-o',
      `ControlPersist=${this.options.controlPersistSec ?? 300}`,
      ...this.commonArgs(),
      '--',
      this.options.host,
    ]
    this.logger.step('ssh', `connecting to ${this.options.host} (giving up after ${this.connectTimeoutSec()} s: --connect-timeout)...`)
    // -f keeps inherited descriptors open in the background master: give it none, read -E's log.
    this.starting = $({ stdio: 'ignore', nothrow: true, quiet: true })`ssh ${args}`
    const started = await this.starting
    this.starting = null
    if (this.closed) return
    if (started.exitCode !== 0) {
      const message = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean)
      throw new TransportError(`Cannot connect to ${this.options.host}: ${explainSshError(lastLine(message))}`)
    }
    this.logger.step('ssh', `connected to ${this.options.host} (one connection for the whole run)`)
  }

  async run(script: string, args: readonly string[] = [], options: RunOptions = {}): Promise<RunResult> {
    const sshArgs = [...this.clientArgs(), '-T', '--', this.options.host, ...REMOTE_COMMAND]
    const result = await runFramed({ command: 'ssh', commandArgs: sshArgs, target: this.target }, { script, args, options })
    if (result.exitCode === 255) {
      throw new TransportError(`Lost the connection to ${this.options.host}: ${explainSshError(sshErrorLine(result.stderrTail))}`)
    }
    return result
  }

  async push(plan: PushPlan): Promise<PushReport> {
    if (plan.method === 'tar') {
      return tarPush(this, plan, plan.compress)
    }
    this.hasRemoteRsync = true
    let bytesSent = 0
    const step = async (script: string, args: string[], stdin?: Buffer | string) => {
      const result = await this.run(script, args, { stdin, session: plan.session })
      bytesSent += result.bytesSent
      if (result.exitCode !== 0)
        throw await pushFailure(this, plan.remoteDir, {
          what: `Preparing ${plan.remoteDir} on ${this.options.host} failed`,
          exitCode: result.exitCode,
          stderrTail: result.stderrTail,
        })
      return result
    }
    // Deleting first lets a path that turned from a directory into a file (or back) arrive cleanly.
    let outcome = removalOutcome('', [])
    if (plan.claimMarker !== null || plan.remove.length) {
      const removals = removalList(plan.remove)
      const begun = await step(BEGIN_SCRIPT, [plan.remoteDir, plan.claimMarker ?? '', String(removals.length)], removals)
      outcome = removalOutcome(begun.stdout, begun.stderrTail)
    }
    const destination = `${this.options.host}:${plan.remoteDir}/`
    let method: PushReport['method'] = 'rsync-list'
    // What rsync really sent: with --checksum the list holds every file, and most are equal.
    let filesSent = 0
    if (plan.unselected) {
      // Most files change (a first push): walk the tree as plain rsync does, which beats a file
      // list; the exclude list plus what git leaves out makes it send exactly the selection. The
      // sources are the top-level entries, not ./, so the target directory keeps its own mode; they
      // go as a list (-r walks each), not as arguments, which would have to be text.
      method = 'rsync-tree'
      const tops = [...new Set(plan.send.map((p) => p.split('/')[0]!))].sort()
      const skip = path.join(this.controlDir!, `skip-${process.pid}-${Date.now()}`)
      await writeFile(skip, nulList(plan.unselected.map(rsyncExactPattern)), { mode: 0o600 })
      try {
        // --from0 must come before --exclude-from: rsync reads the rules as it parses the option.
        const options = [
          ...(plan.checksum ? ['--checksum'] : []),
          '-r',
          '--prune-empty-dirs',
          '--no-inc-recursive',
          ...rsyncExcludeArgs(),
          '--from0',
          `--exclude-from=${skip}`,
          '--files-from=-',
        ]
        const stats = await this.rsync(['-az', ...options, './', destination], {
          input: nulList(tops),
          cwd: plan.localRoot,
          pushTo: plan.remoteDir,
        })
        bytesSent += stats.bytesSent
        filesSent = stats.regularFilesSent
      } finally {
        await rm(skip, { force: true })
      }
    } else if (plan.send.length) {
      const checksum = plan.checksum ? ['--checksum'] : []
      const stats = await this.rsync(['-az', ...checksum, '--files-from=-', '--from0', ...rsyncExcludeArgs(), './', destination], {
        input: nulList(plan.send),
        cwd: plan.localRoot,
        pushTo: plan.remoteDir,
      })
      bytesSent += stats.bytesSent
      filesSent = stats.regularFilesSent
    }
    // Files it could not delete stay in the state, and without a stamp the next push tries again.
    const { keptLines, ...removals } = outcome
    const stamp = keptLines.length ? '' : plan.stamp
    const state = plan.state + keptLines.map((line) => `${line}\n`).join('')
    await step(COMMIT_SCRIPT, [plan.remoteDir, stamp, plan.compress ? '1' : '0'], plan.compress ? gzipSync(state) : state)
    return { method, filesSent, ...removals, bytesSent }
  }

  noteRemoteTools(tools: { rsync: boolean }): void {
    this.hasRemoteRsync = tools.rsync
  }

  async pull(remoteDir: string, localDir: string): Promise<PullReport> {
    if (this.hasRemoteRsync === null) {
      const probe = await this.run('command -v rsync >/dev/null 2>&1')
      this.hasRemoteRsync = probe.exitCode === 0
    }
    if (!this.hasRemoteRsync) {
      return tarPull(this, remoteDir, localDir)
    }
    // rsync creates only the last component of the destination.
    await mkdir(localDir, { recursive: true })
    // Regular files and directories only, as the tar pull: links, devices and pipes stay there.
    const stats = await this.rsync([
      '-az',
      '--no-links',
      '--no-devices',
      '--no-specials',
      `${this.options.host}:${remoteDir}/`,
      `${localDir}/`,
    ])
    return { files: stats.regularFiles, bytes: stats.totalFileSize }
  }

  /**
   * rsync's remote shell: a script in the private control dir that runs ssh over the master. rsync
   * splits an -e string with a quoting of its own (which differs between versions); a path of
   * plain characters needs none, and the script quotes every ssh argument once, for sh.
   */
  private async rsyncShell(): Promise<string> {
    const script = path.join(this.controlDir!, 'rsh')
    if (!existsSync(script)) {
      await writeFile(script, `#!/bin/sh\nexec ssh ${this.clientArgs().map(shellQuote).join(' ')} "$@"\n`, { mode: 0o700 })
    }
    return script
  }

  /** rsync over the master; parses its --stats. `pushTo`: a push into that directory (its failures are explained as a push's). */
  private async rsync(args: string[], { input, cwd, pushTo }: { input?: Buffer; cwd?: string; pushTo?: string } = {}) {
    const result = await spawnProcess('rsync', ['--stats', '--no-human-readable', '-e', await this.rsyncShell(), ...args], {
      cwd,
      input: input === undefined ? [] : [input],
    })
    if (result.exitCode !== 0) {
      const what = `rsync with ${this.options.host} failed`
      if (pushTo !== undefined && result.exitCode !== 255)
        throw await pushFailure(this, pushTo, { what, exitCode: result.exitCode, stderrTail: result.stderrTail })
      throw new TransportError(`${what} (exit ${result.exitCode}): ${tellingLine(result.stderrTail)}`)
    }
    const count = (pattern: RegExp) => Number(pattern.exec(result.stdout)?.[1] ?? 0)
    return {
      bytesSent: count(/^Total bytes sent: (\d+)/m),
      regularFiles: count(/^Number of files: .*reg: (\d+)/m),
      regularFilesSent: count(/^Number of regular files transferred: (\d+)/m),
      totalFileSize: count(/^Total file size: (\d+)/m),
    }
  }

  /** Closes the master, or stops it while it is still connecting; safe to call twice, or early. */
  async close(): Promise<void> {
    this.closed = true
    if (this.starting) {
      void this.starting.kill('SIGTERM').catch(() => {})
      await this.starting
    }
    if (!this.controlDir) return
    // Also after a kill: the master may have authenticated and gone to the background just before.
    await $({ stdio: 'ignore', nothrow: true, quiet: true })`ssh ${['-O', 'exit', ...this.commonArgs(), '--', this.options.host]}`
    await this.removeControlDir()
  }

  private async removeControlDir(): Promise<void> {
    if (this.controlDir) await rm(this.controlDir, { recursive: true, force: true })
    this.controlDir = null
  }
}

const SSH_MESSAGE =
  /^(ssh:|mux_client|control ?socket|connection |client_loop:|timeout|host key|permission denied|kex_|packet_write)|closed by remote host|broken pipe/i

/** ssh's own complaint among the remote's stderr lines (which may be anything, e.g. a chatty .zshenv). */
function sshErrorLine(lines: readonly string[]): string {
  return (
    [...lines]
      .reverse()
      .find((line) => SSH_MESSAGE.test(line.trim()))
      ?.trim() ?? 'the connection closed (ssh exited with 255 and no message)'
  )
}

/** ssh's message, plus what to do for the failures people hit most. */
function explainSshError(message: string): string {
  if (/Host key verification failed/i.test(message)) {
    return `${message} (the host key is unknown or changed: connect once with plain ssh to accept it, or check ~/.ssh/known_hosts)`
  }
  if (/timed out/i.test(message)) {
    return `${message} (the host did not answer: check the name, the VPN or the jump host; a slow link needs a longer --connect-timeout)`
  }
  if (/Permission denied/i.test(message)) {
    return `${message} (key login failed: BatchMode is on, so no password prompt; load your key with ssh-add or set IdentityFile)`
  }
  return message
}

export interface SshTarget extends Target {
  kind: 'ssh'
  host: string
  sshOptions: string[]
  /** Absolute: rsync's ssh runs from the project directory, not from where we were started. */
  configFile?: string
  connectTimeoutSec: number
}

/** An SSH host as a kind of target (see kinds.ts). */
export const SSH_KIND: TargetKind<SshTarget> = {
  kind: 'ssh',
  what: 'an SSH host',
  pushesByRsync: true,
  namedBy: 'host',
  dirFlag: '--remote-dir',
  usage: '--host HOST --remote-dir DIR',
  perTarget: ['remote-dir'],
  fleetFlags: [],
  flags: [
    { name: 'host', kind: 'string', value: 'HOST', description: 'SSH target: an alias from ~/.ssh/config, host or user@host' },
    { name: 'remote-dir', kind: 'string', value: 'DIR', description: 'absolute directory on the host that receives the code' },
    { name: 'ssh-option', kind: 'list', value: 'KEY=VALUE', description: 'extra ssh -o option, e.g. Port=2222 or ProxyJump=bastion' },
    { name: 'ssh-config', kind: 'string', value: 'FILE', description: 'ssh_config file to use instead of ~/.ssh/config (ssh -F)' },
    {
      name: 'connect-timeout',
      kind: 'string',
      value: 'SECONDS',
      description: 'give up connecting after this long (default 15; a host that drops packets)',
    },
  ],
  fromFlags(flags) {
    const host = required(flags, 'host', 'the SSH host to run on')
    const sshOptions = listFlag(flags, 'ssh-option')
    validateSshTarget(host, sshOptions)
    const remoteDir = validateRemoteDir(
      required(flags, 'remote-dir', 'the absolute directory on the host that receives the code'),
      '--remote-dir',
    )
    const configFile = stringFlag(flags, 'ssh-config')
    const connectTimeoutSec = wholeNumberFlag(flags, 'connect-timeout', { min: 1, max: 3600, unit: 'seconds', example: 30 }) ?? 15
    return {
      kind: 'ssh',
      host,
      sshOptions,
      connectTimeoutSec,
      configFile: configFile === undefined ? undefined : path.resolve(configFile),
      remoteDir,
      remoteDirFlag: '--remote-dir',
    }
  },
  name: (target) => sshTargetName(target.host),
  async open(target, logger) {
    const { host, sshOptions, configFile, connectTimeoutSec } = target
    const transport = await SshTransport.create({ host, sshOptions, configFile, connectTimeoutSec, logger })
    onCleanup(() => transport.close())
    await transport.connect()
    return transport
  },
  copyCommand(target, dir) {
    // The run's own ssh config and options, so the copy goes where the run went.
    const ssh = ['ssh', ...(target.configFile ? ['-F', target.configFile] : []), ...target.sshOptions.flatMap((o) => ['-o', o])]
    return `rsync -a -e ${pasteWord(ssh.map(pasteWord).join(' '))} "$d/" ${pasteWord(`${target.host}:${dir}/`)}`
  },
}
