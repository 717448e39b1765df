# The target's locks. One per remote directory: syncs and dependency installs into it take turns.
# One per asset directory (asset_lock_hold): downloads into it take turns. A remote directory's
# lock is flock on a file in the target user's own ~/.remote-eval/locks (mode 700, the file 600):
# no other user can take, read or block it, and taking it touches nothing in a directory not yet
# checked. It is held by the session that took it, which then waits on its stdin:
# the runner releases it by closing that stdin, and a runner that dies or loses its connection
# releases it too, since its stdin ends then as well.

# Takes the lock, runs FUNCTION ARGS (its stdout passes through), ends stdout with the trailer
# "\0@@locked STATUS\0", then holds the lock until stdin ends or stays silent for SILENCE seconds.
# Without wait, a busy lock ends at once with 75 ("@@busy HOLDER" on stderr).
# Meanwhile the runner's next steps travel in this session, sparing each a session (and a login
# shell) of its own: "@@call LENGTH NONCE RELEASE DATA" then LENGTH bytes of a framed script and
# DATA bytes of its stdin, run in a subshell without the lock's descriptor, its stdout ended by
# "\0@@done-NONCE STATUS\0" and its stderr by "@@done-NONCE" (the runner waits for both ends).
# RELEASE=1 frees the lock before it runs (the eval's start).
lock_hold() { # key wait(1|0) holder silence -- function args...
  local dir=$HOME/.remote-eval/locks
  ( umask 077; mkdir -p -- "$dir" ) 2>/dev/null && [ -O "$dir" ] && [ ! -L "$dir" ] \
    || { echo "cannot make $dir, a directory of the target user's own for the lock: make \$HOME there writable" >&2; return "$status_lock_unusable"; }
  lock_file_hold "$dir/$1.lock" 077 "${@:2}"
}

# The download lock of a models or datasets directory, in that directory's .remote-eval: runners
# on every host that mounts it (NFS, a volume shared by pods) take turns, since flock on NFS is a
# lock the server keeps. The file takes the login's umask, so a team sharing the directory shares
# its lock. Same calling convention as lock_hold, the directory in place of the key. The directory
# is made and checked first (the lock lives in it): a bad one ends with status_absent, its reason
# on stderr.
asset_lock_hold() { # dir wait(1|0) holder silence -- function args...
  local dir=$1/.remote-eval
  [ ! -e "$1" ] || [ -d "$1" ] || { echo "exists and is not a directory" >&2; return "$status_absent"; }
  mkdir -p -- "$1" 2>/dev/null || { echo "cannot be created" >&2; return "$status_absent"; }
  [ -w "$1" ] || { echo "is not writable" >&2; return "$status_absent"; }
  [ ! -L "$dir" ] || { echo "$dir is a symlink, which this tool does not follow: remove it" >&2; return "$status_lock_unusable"; }
  mkdir -p -- "$dir" 2>/dev/null || { echo "cannot make $dir for the download lock: make $1 writable there" >&2; return "$status_lock_unusable"; }
  lock_file_hold "$dir/download.lock" "$(umask)" "${@:2}"
}

# lock_hold's work on a given lock file, made with the given umask.
lock_file_hold() { # lockfile umask wait holder silence -- function args...
  local lock=$1 mask=$2 wait=$3 holder=$4 silence=$5 status
  shift 6
  command -v flock >/dev/null 2>&1 || { echo "flock is not on the target's PATH: install util-linux there" >&2; return "$status_missing_tool"; }
  [ ! -L "$lock" ] || { echo "the lock file $lock is a symlink, which this tool does not follow: remove it" >&2; return "$status_lock_unusable"; }
  ( umask "$mask"; exec 9>>"$lock" ) 2>/dev/null || { echo "cannot open the lock file $lock: make it (or its directory) writable there" >&2; return "$status_lock_unusable"; }
  exec 9>>"$lock" || return "$status_lock_unusable"
  if ! flock -n 9; then
    if [ "$wait" != 1 ]; then printf '@@busy %s\n' "$(head -n 1 -- "$lock")" >&2; return "$status_busy"; fi
    printf '@@waiting %s\n' "$(head -n 1 -- "$lock")" >&2
    flock 9
  fi
  printf '%s\n' "$holder" > "$lock"
  "$@" </dev/null 9>&-
  status=$?
  printf '\0@@locked %s\0' "$status"
  # The runner writes a line every 15 s: a minute without one means it is gone, even when its
  # connection has not been seen to close (a laptop asleep, a network that dropped silently).
  local line script data
  while IFS= read -r -t "$silence" line; do
    [[ $line =~ ^@@call\ ([0-9]+)\ ([0-9a-f]+)\ ([01])\ ([0-9]+)$ ]] || continue
    script=$(head -c "${BASH_REMATCH[1]}")
    set -- "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
    [ "$2" = 0 ] || exec 9>&-
    if [ "$3" = 0 ]; then
      ( eval "$script" ) </dev/null 9>&-
      status=$?
    else
      # The data is read whole first: a script that stops reading early leaves none of it behind.
      data=$(umask 077; mktemp) && head -c "$3" > "$data" && ( eval "$script" ) < "$data" 9>&-
      status=$?
      rm -f -- "$data"
    fi
    printf '@@done-%s\n' "$1" >&2
    printf '\0@@done-%s %s\0' "$1" "$status"
  done
}
