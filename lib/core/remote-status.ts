// The statuses our bash functions end with when something on the target is not as it should be,
// named once: TypeScript compares RemoteStatus.x, bash returns "$status_x" (every library script
// gets the variables, see callFunction). Below 64 are the shell's own; 126 and 127 are bash's.

export const RemoteStatus = {
  /** A path to delete that is not plain relative. */
  badPath: 65,
  /** A directory that is missing, cannot be entered or cannot be made. */
  noDirectory: 66,
  /** The writable overlay of a read-only datasets cache could not be made. */
  noOverlay: 67,
  /** No run of that id in the remote directory. */
  noRun: 68,
  /** The eval's run_dir resolves outside the output directory. */
  runDirOutside: 69,
  /** The run did not start (no pid file). */
  notStarted: 70,
  /** The run's process group could not be signalled. */
  cannotSignal: 71,
  /** A tool the step needs is not on the target's PATH (setsid, flock). */
  missingTool: 72,
  /** The target lock's directory or file cannot be used. */
  lockUnusable: 73,
  /** Data on stdin arrived cut short. */
  cutShort: 74,
  /** Another runner holds the lock (--no-wait). */
  busy: 75,
  /** The remote output directory does not exist. */
  noOutputDir: 76,
  /** The eval's run_dir does not exist. */
  noRunDir: 77,
  /** A one-line script's "not there" (no manifest) or "not usable" (an asset directory). */
  absent: 78,
} as const

export type RemoteStatusName = keyof typeof RemoteStatus

/** The bash name of a status: noDirectory -> status_no_directory. */
export const statusVariable = (name: RemoteStatusName) => `status_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`

/** The statuses as bash variable assignments, for the preamble of every library script. */
export const STATUS_VARS = (Object.keys(RemoteStatus) as RemoteStatusName[])
  .map((name) => `${statusVariable(name)}=${RemoteStatus[name]}`)
  .join(' ')
