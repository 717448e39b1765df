# The target's lock for one remote directory: syncs and dependency installs into it take turns.
# The lock (flock on a file in the target's temp dir, so that taking it touches nothing in a
# directory not yet checked) is held by the session that took it, which then waits on its stdin:
# the runner releases it by closing that stdin, and a runner that dies or loses its connection
# releases it too, since its stdin ends then as well.

# Takes the lock, runs FUNCTION ARGS (its stdout passes through), ends stdout with the trailer
# "\0@@locked STATUS\0", then holds the lock until stdin ends. Without wait, a busy lock ends at once
# with 75 ("@@busy HOLDER" on stderr).
lock_hold() { # key wait(1|0) holder -- function args...
  local lock=${TMPDIR:-/tmp}/remote-eval-$(id -u)-$1.lock wait=$2 holder=$3 status
  shift 4
  command -v flock >/dev/null 2>&1 || { echo "flock is not on the target's PATH: install util-linux there" >&2; return 72; }
  [ ! -L "$lock" ] || { echo "the lock file $lock is a symlink, which this tool does not follow: remove it" >&2; return 73; }
  exec 9>>"$lock" || { echo "cannot open the lock file $lock: make TMPDIR on the target a writable directory" >&2; return 73; }
  if ! flock -n 9; then
    if [ "$wait" != 1 ]; then printf '@@busy %s\n' "$(head -n 1 -- "$lock")" >&2; return 75; fi
    printf '@@waiting %s\n' "$(head -n 1 -- "$lock")" >&2
    flock 9
  fi
  printf '%s\n' "$holder" > "$lock"
  "$@" </dev/null 9>&-
  status=$?
  printf '\0@@locked %s\0' "$status"
  # The runner writes a line every 15 s: a minute without one means it is gone, even when its
  # connection has not been seen to close (a laptop asleep, a network that dropped silently).
  while IFS= read -r -t 60 _; do :; done
}
