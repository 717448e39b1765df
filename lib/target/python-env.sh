# Finds the target's Python environment for the eval repo; prints one NUL-terminated record:
#   "venv <python>"  a prebuilt venv (given as $2) with an executable bin/python
#   "uv <uv>"        uv on PATH, or in ~/.local/bin or ~/.cargo/bin (where its installer puts it)
#   "none <why>"     neither
# and "python <version>" of whichever was found, when it can tell cheaply.

find_python_env() { # venv
  local venv=$1 candidate
  if [ -n "$venv" ]; then
    if [ -x "$venv/bin/python" ]; then
      printf 'venv %s\0' "$venv/bin/python"
      printf 'python %s\0' "$("$venv/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null)"
    else
      printf 'none no executable %s/bin/python\0' "$venv"
    fi
    return 0
  fi
  for candidate in "$(command -v uv 2>/dev/null)" "$HOME/.local/bin/uv" "$HOME/.cargo/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      printf 'uv %s\0' "$candidate"
      return 0
    fi
  done
  printf 'none uv is not on PATH, in ~/.local/bin or in ~/.cargo/bin, and no --venv was given\0'
}
