// Text shared by every script's --help.

export const EXIT_CODES_HELP = `Exit codes:
  0    done; results (if any) are on this machine
  1    the eval itself failed (its results are still fetched when it printed a run_dir)
  2    bad usage or bad input; nothing was touched on the remote
  3    a local prerequisite is missing (ssh, rsync, kubectl, tar)
  4    a remote prerequisite is missing (bash, python, uv or venv, disk space)
  5    the connection or transport failed
  10   models missing or incomplete on an air-gapped remote
  11   datasets missing or incomplete on an air-gapped remote
  12   another runner holds the target's lock and --no-wait was given
  130  interrupted`
