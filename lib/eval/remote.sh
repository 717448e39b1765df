# Remote steps of an eval run. Sent with a caller line appended; each function prints what the
# local side decides on, never secrets. The caller sets the layout variables of lib/core/layout.ts.

# One round trip of facts: NUL-terminated key=value records.
eval_preflight() { # remote_dir venv runtime online(1|0) models_dir datasets_dir
  local dir=$1 venv=$2 runtime=$3 online=$4 models=$5 datasets=$6 candidate found='' at line free stored key
  say() { printf '%s\0' "$1"; }
  say "bash=${BASH_VERSION}"
  # A run needs its own session (setsid) and the redaction filter (awk).
  for candidate in setsid awk; do command -v "$candidate" >/dev/null 2>&1 || say "missing=$candidate"; done
  if [ -n "$venv" ]; then
    if [ -x "$venv/bin/python" ]; then say "venv=$venv/bin/python"; found=venv; else say "novenv=$venv"; fi
  else
    for candidate in "$(command -v uv 2>/dev/null)" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ]; then say "uv=$candidate"; found=uv; break; fi
    done
  fi
  if [ "$found" = venv ]; then
    say "python=$("$venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
  elif [ -x "$dir/.venv/bin/python" ]; then
    say "python=$("$dir/.venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
  fi
  # Free space where the code, models and datasets go (the nearest existing parent of each).
  for at in "$dir" "$models" "$datasets"; do
    while [ ! -e "$at" ]; do at=${at%/*}; at=${at:-/}; done
    line=$(df -Pk -- "$at" 2>/dev/null | tail -n 1)
    read -r _ _ _ free _ <<< "$line"
    say "free=${free:-0} $at"
  done
  # The GPUs nvidia-smi lists ("GPU 0: NAME (UUID: ...)"), or its complaint and exit code.
  if [ "$runtime" = cuda ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      local listing status=0
      listing=$(nvidia-smi -L 2>&1) || status=$?
      if [ "$status" -ne 0 ]; then
        line=${listing%%$'\n'*}
        say "gpuerror=$status ${line:0:300}"
      else
        while IFS= read -r line; do
          case $line in 'GPU '[0-9]*:*) line=${line#GPU }; say "gpu=${line%%:*}" ;; esac
        done <<< "$listing"
        say gpus-listed=1
      fi
    else
      say nvidia-smi=missing
    fi
  fi
  # The token, as the eval finds it: HF_TOKEN in the environment, else in .env.eval (the eval's
  # reading), else, online, the one `hf auth login` stored on the host.
  if [ "$online" = 1 ]; then
    if [ -n "${HF_TOKEN:-}" ]; then say token=environment
    elif [ -n "$(envfile_get "$dir/.env.eval" HF_TOKEN)" ]; then say token=env-file
    else
      stored=${HF_TOKEN_PATH:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/token}
      if [ -s "$stored" ] && [ -r "$stored" ]; then say token=login; say "token_path=$stored"; else say token=none; fi
    fi
  fi
  # What the last uv sync saw (eval_deps): when it is what the runner has, no sync is needed.
  if [ -d "$dir/.venv" ] && [ -f "$dir/$tool_dir/deps-stamp" ] && IFS= read -r stored < "$dir/$tool_dir/deps-stamp"; then
    say "deps=$stored"
  fi
  eval_asset_facts models "$models"
  eval_asset_facts datasets "$datasets"
  # Lines of .env.eval that python-dotenv would read otherwise than the eval: named, never shown.
  while IFS= read -r key; do say "envwarn=$key"; done < <(envfile_ambiguous "$dir/.env.eval")
  return 0
}

# What a models or datasets directory is, for the local rules (checkAssetDirs in lib/eval/steps.ts): one record
# "asset=LABEL missing|notdir", or "asset=LABEL dir WORLD_WRITABLE HAS_MANIFEST HAS_OURS NON_EMPTY REAL".
eval_asset_facts() { # label dir
  local label=$1 dir=$2 real ww=0 manifest=0 ours=0 nonempty=0 entry
  [ -n "$dir" ] || return 0
  if [ ! -e "$dir" ]; then printf 'asset=%s missing\0' "$label"; return 0; fi
  [ -d "$dir" ] || { printf 'asset=%s notdir\0' "$label"; return 0; }
  real=$(cd -P -- "$dir" 2>/dev/null && pwd) || real=$dir
  [ -n "$(find "$real" -maxdepth 0 -perm -0002 2>/dev/null)" ] && ww=1
  [ -f "$dir/manifest.json" ] && manifest=1
  [ -d "$dir/$tool_dir" ] && ours=1
  for entry in "$dir"/* "$dir"/.[!.]* "$dir"/..?*; do [ -e "$entry" ] || [ -L "$entry" ] && { nonempty=1; break; }; done
  printf 'asset=%s dir %s %s %s %s %s\0' "$label" "$ww" "$manifest" "$ours" "$nonempty" "$real"
}

# uv sync, then the stamp of what it saw (pyproject.toml, uv.lock, the extras): the preflight reads
# it, and the runner skips this step while it is unchanged.
eval_deps() { # remote_dir stamp -- uv sync ...
  local dir=$1 stamp=$2
  shift 3
  cd -- "$dir" || return "$status_no_directory"
  "$@" >&2 || return $?
  printf '%s\n' "$stamp" > "$dir/$tool_dir/deps-stamp.tmp" && mv -f -- "$dir/$tool_dir/deps-stamp.tmp" "$dir/$tool_dir/deps-stamp"
}

# TCP ports of the host that a socket holds, listening or connected, one per line (from
# /proc/net/tcp{,6}): an outgoing connection's local port cannot be bound either.
eval_ports_in_use() {
  local file local_address
  for file in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$file" ] || continue
    while read -r _ local_address _; do
      [ "$local_address" = local_address ] || printf '%d\n' "$((16#${local_address##*:}))"
    done < "$file"
  done
  return 0
}

# A CUDA run's embedded PyTriton needs three ports of its own (HTTP, gRPC, metrics): two runs on
# one host would collide on the defaults 8000-8002. Each variable the user did not set (in the
# environment, --env included, or in .env.eval) gets a port that no socket holds, outside the range
# of outgoing connections, and that no running run of this directory holds. Sets ports_meta, the
# meta record of the ports in use.
eval_pick_ports() { # remote_dir
  local dir=$1 taken run name port http grpc metrics ephemeral_low=32768 ephemeral_high=60999
  read -r ephemeral_low ephemeral_high < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  # A host that gives nearly every port to outgoing connections: pick among all of them.
  if [ $(( (ephemeral_low > 20000 ? ephemeral_low - 20000 : 0) + 65535 - ephemeral_high )) -lt 1000 ]; then
    ephemeral_low=1 ephemeral_high=0
  fi
  taken=$'\n'$(eval_ports_in_use; for run in "$dir/$tool_dir/runs"/*/; do
    run=${run%/}
    [ -f "$run/meta" ] && run_alive "$run" && sed -n 's/^ports=//p' "$run/meta" | tr ',' '\n'
  done)$'\n'
  for name in GR_PYTRITON_URL GR_PYTRITON_GRPC_PORT GR_PYTRITON_METRICS_PORT; do
    [ -n "${!name:-}" ] && continue
    port=$(envfile_get "$dir/.env.eval" "$name")
    [ -n "$port" ] && export "$name=$port" && continue
    while :; do
      port=$((20000 + (RANDOM * 32768 + RANDOM) % 45536))
      # Not in the kernel's range for outgoing connections, which may take any of those ports
      # between this pick and the eval's bind.
      [ "$port" -ge "$ephemeral_low" ] && [ "$port" -le "$ephemeral_high" ] && continue
      [ "${taken#*$'\n'"$port"$'\n'}" = "$taken" ] && break
    done
    taken+="$port"$'\n'
    if [ "$name" = GR_PYTRITON_URL ]; then export "$name=127.0.0.1:$port"; else export "$name=$port"; fi
  done
  http=${GR_PYTRITON_URL##*:} grpc=$GR_PYTRITON_GRPC_PORT metrics=$GR_PYTRITON_METRICS_PORT
  ports_meta="ports=$http,$grpc,$metrics"
}

# Starts the eval in remote_dir as run RUN_ID (runs.sh), and follows it when asked to.
eval_run() { # remote_dir cache_root overlay run_id meta follow(1|0) cuda(1|0) output_dir archive_max -- command...
  local dir=$1 cache=$2 overlay=$3 id=$4 meta=$5 follow=$6 cuda=$7 output=$8 archive_max=$9 ports_meta=''
  shift 10
  cd -- "$dir" || return "$status_no_directory"
  if [ -d "$cache" ] && { [ ! -w "$cache" ] || [ -n "$(find "$cache" -type d ! -writable -print -quit 2>/dev/null)" ]; }; then
    # The eval writes lock files and its sampled indices (_eval/) under the cache root, even
    # offline. For a root mounted read-only, a writable tree of directories with links to the
    # read-only files takes them, copying no data; the mount is left as it was.
    { rm -rf -- "$overlay" && mkdir -p -- "$overlay" && cp -rs -- "$cache/." "$overlay/" && chmod -R u+w -- "$overlay"; } || return "$status_no_overlay"
    export HF_HOME=$overlay HUGGINGFACE_HUB_CACHE=$overlay/hub HF_DATASETS_CACHE=$overlay/datasets
    printf 'the datasets cache %s is read-only: the eval uses %s, links to its files\n' "$cache" "$overlay" >&2
  fi
  if [ "$cuda" = 1 ]; then
    eval_pick_ports "$dir"
    meta+=$'\t'$ports_meta
    printf 'embedded PyTriton ports: %s (HTTP), %s (gRPC), %s (metrics)\n' "$GR_PYTRITON_URL" "$GR_PYTRITON_GRPC_PORT" "$GR_PYTRITON_METRICS_PORT" >&2
  fi
  run_start "$dir" "$id" "$meta" -- "$@" || return $?
  [ "$follow" = 1 ] || return 0
  run_follow "$dir/$tool_dir/runs/$id" 0 "$output" "$archive_max"
}

# --run-module: python -m MODULE in remote_dir, with HF_TOKEN from .env.eval when unset (the tools
# of the repo read only the environment, or the stored login token).
eval_module() { # remote_dir -- command...
  cd -- "$1" || return "$status_no_directory"
  shift 2
  envfile_exec "$PWD/.env.eval" HF_TOKEN -- "$@"
}

# The preflight and the code sync's inspection in one round trip: every session costs a login
# shell, and ML hosts' shells are often slow to start (pyenv, conda in .bashrc). Air-gapped, the
# listing of the models and datasets directories travels with it (checked against their
# manifests here, before anything is sent).
eval_preflight_and_inspect() { # six preflight arguments, then inspect_remote_dir's four
  eval_preflight "$1" "$2" "$3" "$4" "$5" "$6"
  if [ "$4" = 0 ]; then
    printf '@@assets\0'
    list_prepared_dirs "$5" "$6"
  fi
  shift 6
  printf '@@inspect\0'
  ( inspect_remote_dir "$@" )
}
