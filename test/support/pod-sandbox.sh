#!/usr/bin/env bash
# Part of the Kubernetes API server double (test/support/kube-apiserver.ts): runs one command in a
# pod container's sandbox, as the container runtime would for `kubectl exec`.
#   pod-sandbox.sh CONTAINER_DIR HOSTNAME PATH_IN_POD -- COMMAND...
# Each container is a bubblewrap sandbox, started on its first exec and kept running (a pause
# process): its own mount, PID, IPC and UTS namespaces, /workdir and /root of its own, the host's
# /usr and /etc read-only. Every exec joins it with nsenter, so paths, processes (also ones an
# earlier exec left running) and stdin behave as in a pod. CONTAINER_DIR holds:
#   workdir/ home/   bound at /workdir and /root
#   binds            optional lines "ro|rw HOST_PATH POD_PATH"
#   env              optional lines "NAME=VALUE": the container's environment (image ENV, pod env:)
# Exits with the command's status.
set -euo pipefail

dir=$1 hostname=$2 pod_path=$3
shift 3
[ "${1:-}" = -- ] && shift

# The pause process inside the sandbox's namespaces, started once per container.
sandbox_pid() {
  local info=$dir/.sandbox.info pid child
  if [ -s "$info" ]; then
    pid=$(grep -o '"child-pid": *[0-9]*' "$info" | grep -o '[0-9]*$' || true)
    child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}' || true)
    if [ -n "$child" ] && [ -d "/proc/$child" ]; then echo "$child"; return; fi
  fi
  mkdir -p "$dir/workdir" "$dir/home"
  local binds=()
  if [ -f "$dir/binds" ]; then
    while read -r mode src dst; do
      [ -n "$mode" ] || continue
      case $mode in ro) binds+=(--ro-bind "$src" "$dst") ;; rw) binds+=(--bind "$src" "$dst") ;; esac
    done < "$dir/binds"
  fi
  rm -f "$info"
  setsid bwrap --unshare-pid --unshare-ipc --unshare-uts --hostname "$hostname" \
    --ro-bind /usr /usr --ro-bind /etc /etc \
    --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
    --proc /proc --dev /dev --tmpfs /tmp \
    --bind "$dir/workdir" /workdir --bind "$dir/home" /root \
    "${binds[@]}" --chdir /workdir --info-fd 3 \
    sleep infinity </dev/null >/dev/null 2>"$dir/.sandbox.err" 3>"$info" &
  for _ in $(seq 100); do
    pid=$(grep -o '"child-pid": *[0-9]*' "$info" 2>/dev/null | grep -o '[0-9]*$' || true)
    child=$([ -n "$pid" ] && cat "/proc/$pid/task/$pid/children" 2>/dev/null | awk '{print $1}' || true)
    if [ -n "$child" ]; then echo "$child"; return; fi
    sleep 0.05
  done
  echo "could not start the sandbox for $hostname: $(cat "$dir/.sandbox.err")" >&2
  exit 125
}

exec 9>"$dir/.sandbox.lock"
flock 9
target=$(sandbox_pid)
flock -u 9
exec 9>&-

container_env=()
if [ -f "$dir/env" ]; then
  while IFS= read -r line; do [ -n "$line" ] && container_env+=("$line"); done < "$dir/env"
fi
exec nsenter --target "$target" --mount --pid --uts --ipc --root --wd -- \
  env -i PATH="$pod_path" HOME=/root HOSTNAME="$hostname" "${container_env[@]}" "$@"
