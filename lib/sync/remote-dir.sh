# A look at the target directory before a push; prints NUL-terminated key=value records. It
# changes nothing there, with two exceptions that save a round trip and that the local rules would
# decide the same way: a missing directory that can be created is created and claimed (when a
# marker is given), and in a directory that is ours a stamp that differs from the local
# fingerprint is removed, since a transfer follows and only a complete one may stamp.
# The caller sets the layout variables of lib/core/layout.ts. Builtins only where it can: this runs on
# every push, and each fork costs a few milliseconds on a busy host.

inspect_remote_dir() { # dir stamp marker project_fragment
  set -uo pipefail
  local dir=$1 stamp=$2 marker=$3 project=$4 parent entry count=0 stored='' owner=''
  say() { printf '%s\0' "$1"; }
  if cd -P -- ~ 2>/dev/null; then say "home=$PWD"; fi
  command -v rsync >/dev/null 2>&1 && say rsync=1
  command -v gzip >/dev/null 2>&1 && say gzip=1
  command -v tar >/dev/null 2>&1 && say tar=1
  if [ ! -e "$dir" ] && [ ! -L "$dir" ]; then
    say kind=missing
    parent=$dir
    while [ ! -e "$parent" ]; do parent=${parent%/*}; parent=${parent:-/}; done
    if [ -d "$parent" ] && [ -w "$parent" ]; then
      say writable=1
      if [ -n "$marker" ] && mkdir -p -- "$dir/$tool_dir" && printf '%s\n' "$marker" > "$dir/$owner_file"; then
        say claimed=1
      fi
    fi
    return 0
  fi
  [ -d "$dir" ] || { say kind=notdir; return 0; }
  say kind=dir
  cd -P -- "$dir" && say "real=$PWD"
  [ -n "$(find . -maxdepth 0 -perm -0002 2>/dev/null)" ] && say worldwritable=1
  [ -w "$dir" ] && say writable=1
  if [ -f "$dir/$owner_file" ]; then
    say owned=1
    IFS= read -r owner < "$dir/$owner_file" && say "owner=$owner"
    [ -f "$dir/$stamp_file" ] && IFS= read -r stored < "$dir/$stamp_file"
    if [ -n "$stamp" ] && [ "$stored" = "$stamp" ]; then
      say stamp=match
    else
      # Only for this project's push (or an old marker without one): another project's directory
      # is about to be refused, untouched.
      case $owner in *'"project_id":'*) case $owner in *"$project"*) ;; *) project='' ;; esac ;; esac
      if [ -n "$project" ]; then rm -f -- "$dir/$stamp_file"; fi
      if [ -f "$dir/$state_file" ]; then printf 'state='; cat -- "$dir/$state_file"; printf '\0'; fi
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
