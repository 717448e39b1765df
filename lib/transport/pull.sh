# A directory on the target as one stream, for a pull: sent by the pull's own round trip (tree.ts)
# or at the end of a followed run (run_follow of lib/eval/runs.sh). No `set -e` here: the
# libraries that include it do not all run under it.

# dir as one stream: its regular files as NUL-terminated "size path" records, preceded by
# their length in bytes and a newline (for checking what arrives), then dir as a tar archive.
tree_list_and_tar() { # dir
  local list
  [ -d "$1" ] || { printf 'no such directory on the target: %s\n' "$1" >&2; return "$status_no_directory"; }
  cd -- "$1" || return "$status_no_directory"
  list=$(mktemp) || return "$status_no_directory"
  find . -type f -printf '%s %P\0' > "$list"
  printf '%s\n' "$(wc -c < "$list")"
  cat -- "$list"
  rm -f -- "$list"
  # Regular files and directories only: a symlink in the tree (a report pointing at ~/.ssh, say)
  # never travels, nor does a device or a pipe.
  find . -mindepth 1 \( -type f -o -type d \) -print0 | tar -c -f - --null --no-recursion -T -
}
