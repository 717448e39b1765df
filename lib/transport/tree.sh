# File-tree operations on the target. Sent with a caller line appended; needs bash, coreutils, tar.
# The caller sets the layout variables of lib/core/layout.ts (tool_dir, state_file, stamp_file).
set -euo pipefail

# Claims the directory (when a marker is given), invalidates the stamp, deletes what we pushed
# before. The removals are data, not arguments (a script of 100,000 names would be megabytes that
# bash reads a byte at a time): LIST_BYTES bytes of NUL-terminated pairs on stdin, a path and its
# line of the sync state, read exactly (head -c reads no further), so whatever follows on stdin is
# left for the next reader. Prints "removed=N", the files it really deleted, and "kept=LINE" for
# each file of ours it could not delete (rm failed): the state keeps that line, so the next push
# tries again. The same lines are left in kept_lines for a caller in this shell.
tree_begin() { # dir marker list_bytes
  local dir=$1 marker=$2 bytes=${3:-0} rel entry parent real physical list removed=0 i
  kept_lines=''
  local -A inside=() emptied=()
  local -a doomed=() doomed_lines=()
  mkdir -p -- "$dir/$tool_dir"
  if [ -n "$marker" ]; then
    printf '%s\n' "$marker" > "$dir/$tool_dir/owner.tmp"
    mv -f -- "$dir/$tool_dir/owner.tmp" "$dir/$tool_dir/owner"
  fi
  rm -f -- "$dir/$stamp_file"
  list=$dir/$tool_dir/removals.$$
  : > "$list"
  if [ "$bytes" -gt 0 ]; then
    head -c "$bytes" > "$list"
    [ "$(wc -c < "$list")" -eq "$bytes" ] || { rm -f -- "$list"; echo "the list of files to delete arrived cut short" >&2; return "$status_cut_short"; }
  fi
  while IFS= read -r -d '' rel && IFS= read -r -d '' entry; do
    case "/$rel/" in
      *//*|*/./*|*/../*) rm -f -- "$list"; printf 'refusing to delete %s: not a plain relative path\n' "$rel" >&2; return "$status_bad_path" ;;
      "/$tool_dir/"*) continue ;;
    esac
    if [ -d "$dir/$rel" ] && [ ! -L "$dir/$rel" ]; then continue; fi
    # Never through a symlink: a synced directory replaced by a link to elsewhere (shared storage)
    # must not lose files there. Checked once per parent directory. Such a path no longer lies in
    # our directory, so it leaves the state (it is not ours to retry).
    parent=.; [ "${rel%/*}" != "$rel" ] && parent=${rel%/*}
    if [ -z "${inside[$parent]+set}" ]; then
      real=${real:-$(cd -P -- "$dir" && pwd)}
      physical=$(cd -P -- "$dir/$parent" 2>/dev/null && pwd) || physical=''
      case "$physical/" in "$real"/*) inside[$parent]=1 ;; *) inside[$parent]=0 ;; esac
    fi
    if [ "${inside[$parent]}" != 1 ]; then
      printf 'not deleting %s: its directory is missing or leads outside %s\n' "$rel" "$dir" >&2
      continue
    fi
    if [ -e "$dir/$rel" ] || [ -L "$dir/$rel" ]; then
      doomed+=("$rel")
      doomed_lines+=("$entry")
    fi
  done < "$list"
  # One rm for them all (xargs splits at the argument limit; a fork per file made 100,000 deletions
  # take minutes). A file still there afterwards is one rm could not delete: rm said why on stderr.
  if [ ${#doomed[@]} -gt 0 ]; then
    printf '%s\0' "${doomed[@]}" | (cd -- "$dir" && xargs -0 rm -f --) || true
  fi
  for i in "${!doomed[@]}"; do
    rel=${doomed[$i]}
    if [ -e "$dir/$rel" ] || [ -L "$dir/$rel" ]; then
      kept_lines+="${doomed_lines[$i]}"$'\n'
      printf 'kept=%s\n' "${doomed_lines[$i]}"
      continue
    fi
    removed=$((removed + 1))
    parent=$rel
    while [ "${parent%/*}" != "$parent" ]; do
      parent=${parent%/*}
      [ -z "${emptied[$parent]+set}" ] || break
      emptied[$parent]=1
    done
  done
  # Directories left empty go too, deepest first (a longer path is never an ancestor of a shorter).
  if [ ${#emptied[@]} -gt 0 ]; then
    for parent in "${!emptied[@]}"; do printf '%s\t%s\0' "${#parent}" "$parent"; done \
      | sort -z -rn | cut -z -f2- | (cd -- "$dir" && xargs -0 rmdir --ignore-fail-on-non-empty -- 2>/dev/null) || true
  fi
  rm -f -- "$list"
  printf 'removed=%s\n' "$removed"
}

# Records a complete push: the stamp is written last. No stamp (empty): the push left work undone.
tree_stamp() { # dir stamp
  [ -n "$2" ] || return 0
  printf '%s\n' "$2" > "$1/$stamp_file.tmp"
  mv -f -- "$1/$stamp_file.tmp" "$1/$stamp_file"
}

# After an rsync push: the new state (whole or as a change, see tree_state_from) arrives on stdin
# (gzip-compressed when asked), then the stamp
# (empty when a deletion failed: the caller added its kept lines to the state).
# Bulk data travels after the script, never in arguments: bash reads a script one byte at a time.
tree_commit() { # dir stamp gzip
  if [ "$3" = 1 ]; then gzip -dc > "$1/$tool_dir/incoming-state"; else cat > "$1/$tool_dir/incoming-state"; fi
  tree_state_from "$1" "$1/$tool_dir/incoming-state"
  tree_stamp "$1" "$2"
}

# A whole tar push in one round trip; after the script, stdin holds the removals (see tree_begin)
# and then the tar stream, which carries the new state as $tool_dir/incoming-state.
tree_apply_tar() { # dir marker stamp gzip list_bytes; stdin: the removals, then the tar stream
  local dir=$1 marker=$2 stamp=$3 gzip=$4
  tree_begin "$dir" "$marker" "$5"
  if [ "$gzip" = 1 ]; then tar -x -z -o -f - -C "$dir"; else tar -x -o -f - -C "$dir"; fi
  if [ -n "$kept_lines" ]; then
    printf '%s' "$kept_lines" >> "$dir/$tool_dir/incoming-state"
    stamp=''
  fi
  tree_state_from "$dir" "$dir/$tool_dir/incoming-state"
  tree_stamp "$dir" "$stamp"
}

# Makes the state file from INCOMING, which holds the whole new state, or "@@change N", N lines to
# drop from the current state, then the lines to add (kept lines among them: they stay).
tree_state_from() { # dir incoming
  local state=$1/$state_file head='' n
  IFS= read -r head < "$2" || true
  if [ "${head#@@change }" != "$head" ]; then
    n=${head#@@change }
    { LC_ALL=C grep -vxF -f <(head -n "$((n + 1))" -- "$2" | tail -n +2) -- "$state" || true; tail -n +"$((n + 2))" -- "$2"; } > "$state.tmp"
    mv -f -- "$state.tmp" "$state"
    rm -f -- "$2"
  else
    mv -f -- "$2" "$state"
  fi
}

# What is really on the target, for a --full-sync: of the NUL-terminated paths on stdin, the
# regular files (not symlinks) as "mode path" records, then "@@hashes", then sha256sum's records
# ("hash  path"), all NUL-terminated; a path that is missing or not a regular file is left out.
tree_fingerprint() { # dir
  local rel files=()
  cd -- "$1" || return "$status_no_directory"
  while IFS= read -r -d '' rel; do
    if [ -f "$rel" ] && [ ! -L "$rel" ]; then files+=("$rel"); fi
  done
  if [ ${#files[@]} -gt 0 ]; then printf '%s\0' "${files[@]}" | xargs -0 stat --printf '%a %n\0' --; fi
  printf '@@hashes\0'
  if [ ${#files[@]} -gt 0 ]; then printf '%s\0' "${files[@]}" | xargs -0 sha256sum -z --; fi
}

# The free space of dir's file system, from its nearest existing parent: "KB parent".
tree_free() { # dir
  local at=$1 line free
  while [ ! -e "$at" ]; do at=${at%/*}; at=${at:-/}; done
  line=$(df -Pk -- "$at" | tail -n 1)
  read -r _ _ _ free _ <<< "$line"
  printf '%s %s\n' "$free" "$at"
}
