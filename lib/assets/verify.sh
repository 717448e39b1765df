# Lists a prepared directory for verification; prints NUL-terminated records: "S <size> <path>" for
# every regular file, then, when asked, sha256sum's own "<sha256>  <path>" for each path given on
# stdin (NUL-terminated), hashed in parallel on every core. Paths are relative to dir.

list_prepared_dir() { # dir hash(0/1)
  local dir=$1 hash=$2 jobs
  [ -d "$dir" ] || { printf 'no such directory: %s\n' "$dir" >&2; return 66; }
  cd -- "$dir" || return 66
  find . -type f -printf 'S %s %P\0'
  if [ "$hash" = 1 ]; then
    jobs=$(nproc 2>/dev/null || echo 2)
    out=$(mktemp -d)
    # Each batch writes to its own file: parallel writers on one pipe would interleave records
    # once a batch's output passes the pipe's atomic-write size. -z: NUL-terminated, no escaping of
    # odd file names. Missing files are reported by the size listing; sha256sum need not complain.
    xargs -0 -r -n 64 -P "$jobs" sh -c 'exec sha256sum -z -- "$@" > "$0/batch.$$" 2>/dev/null' "$out" || true
    cat "$out"/batch.* 2>/dev/null
    rm -rf -- "$out"
  fi
  return 0
}
