# Prepared directories on the target: listings for verification, and the --fresh-cache reset.
#
# list_prepared_dir prints NUL-terminated records: "S <size> <path>" for
# every regular file, then, when asked, sha256sum's own "<sha256>  <path>" for each path given on
# stdin (NUL-terminated), hashed in parallel on every core. Paths are relative to dir.

list_prepared_dir() { # dir hash(0/1)
  local dir=$1 hash=$2 jobs
  [ -d "$dir" ] || { printf 'no such directory: %s\n' "$dir" >&2; return "$status_no_directory"; }
  cd -- "$dir" || return "$status_no_directory"
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

# Several directories at once, sizes only, each with its manifest: "D <index>", then "M <manifest>"
# when there is one, then its "S" records (or "X" when the directory is missing). One round trip
# for the runners' checks, however many directories.
list_prepared_dirs() { # dir...
  local index=0 dir
  for dir in "$@"; do
    printf 'D %s\0' "$index"
    index=$((index + 1))
    [ -d "$dir" ] || { printf 'X\0'; continue; }
    if [ -f "$dir/manifest.json" ]; then printf 'M '; cat -- "$dir/manifest.json"; printf '\0'; fi
    ( cd -- "$dir" && find . -type f -printf 'S %s %P\0' )
  done
  return 0
}

# --fresh-cache: forgets what this tool prepared in the datasets directory, so it is prepared again:
# the Arrow cache and Hub files of each of the suite's datasets (org/name), their lock files, the
# manifest and the download records. Nothing else there is touched: a shared directory may hold
# other projects' caches.
fresh_datasets_cache() { # datasets_dir org/name...
  local dir=$1 id org name
  shift
  for id in "$@"; do
    org=${id%%/*} name=${id#*/}
    [ "$org" = "$id" ] && org=''
    rm -rf -- "$dir/hf_cache/${org:+${org}___}$name" "$dir/hf_cache/hub/datasets--${org:+$org--}$name" "$dir/hf_cache/hub/.locks/datasets--${org:+$org--}$name"
    rm -f -- "$dir/hf_cache/"_*"${org:+${org}___}${name}"_*.lock
  done
  rm -rf -- "$dir/manifest.json" "$dir/$tool_dir/complete/datasets"
}
