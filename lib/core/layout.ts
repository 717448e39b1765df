import { shellQuote } from './shell.ts'

// Where this tool keeps its own files inside a synced remote directory. The directory is on the
// exclude list, so a sync never ships a local copy of it and never deletes the remote one. On this
// machine the tool's root keeps the scripts' bundles there (bin/bundles.mjs): they never travel.

export const TOOL_DIR = '.remote-eval'
/** Written on the first sync: its presence means the directory is ours to delete from. */
export const OWNER_MARKER = `${TOOL_DIR}/owner`
/** The files the last push left there (JSON lines), for deletions and change detection. */
export const SYNC_STATE = `${TOOL_DIR}/sync-state`
/** Fingerprint of the local selection of the last complete push; removed while a push runs. */
export const SYNC_STAMP = `${TOOL_DIR}/sync-stamp`

/** The same paths as bash variables, for remote scripts. */
export const LAYOUT_VARS = [
  `tool_dir=${shellQuote(TOOL_DIR)}`,
  `owner_file=${shellQuote(OWNER_MARKER)}`,
  `state_file=${shellQuote(SYNC_STATE)}`,
  `stamp_file=${shellQuote(SYNC_STAMP)}`,
].join(' ')
