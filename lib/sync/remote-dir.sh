# A read-only look at the target directory before a push; prints NUL-terminated key=value records.
# The caller sets the layout variables of lib/layout.ts.

inspect_remote_dir() { # dir stamp
  set -uo pipefail
  local dir=$1 stamp=$2 parent entry count=0
  say() { printf '%s\0' "$1"; }
  say "home=$(cd ~ 2>/dev/null && pwd -P)"
  command -v rsync >/dev/null 2>&1 && say rsync=1
  command -v gzip >/dev/null 2>&1 && say gzip=1
  command -v tar >/dev/null 2>&1 && say tar=1
  if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
    say kind=missing
    parent=$dir
    while [ ! -e "$parent" ]; do parent=${parent%/*}; parent=${parent:-/}; done
    [ -d "$parent" ] && [ -w "$parent" ] && say writable=1
    return 0
  fi
  [ -d "$dir" ] || { say kind=notdir; return 0; }
  say kind=dir
  say "real=$(cd -- "$dir" && pwd -P)"
  [ -w "$dir" ] && say writable=1
  if [ -f "$dir/$owner_file" ]; then
    say owned=1
    if [ -n "$stamp" ] && [ "$(cat -- "$dir/$stamp_file" 2>/dev/null)" = "$stamp" ]; then
      say stamp=match
    elif [ -f "$dir/$state_file" ]; then
      printf 'state='; cat -- "$dir/$state_file"; printf '\0'
    fi
    return 0
  fi
  shopt -s dotglob nullglob
  for entry in "$dir"/*; do
    count=$((count + 1))
    if [ "$count" -gt 100 ]; then say more=1; break; fi
    if [ -d "$entry" ] && [ ! -L "$entry" ]; then say "entry=${entry##*/}/"; else say "entry=${entry##*/}"; fi
  done
  return 0
}
