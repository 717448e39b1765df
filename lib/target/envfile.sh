# The eval repo's .env.eval, read on the target as the real eval CLI reads it (app/eval/env.py):
# each line stripped; blank, "#" and "=less" lines skipped; KEY before the first "=", stripped;
# VALUE stripped, then single and then double quotes stripped from both ends; the first line of a
# KEY wins (the CLI sets only variables that are still unset). An inline " # comment" stays in the
# value and "export " stays in the key. python-dotenv reads such lines differently, so each line
# is also read that way, for the warnings of the preflight and for redaction.

envfile_trim() { # text -> stripped of white space at both ends
  local s=$1
  s=${s#"${s%%[![:space:]]*}"}
  printf '%s' "${s%"${s##*[![:space:]]}"}"
}

# Prints NUL-terminated records "e<KEY>=<VALUE>" (the eval's reading, first of each key only) and
# "d<KEY>=<VALUE>" (python-dotenv's reading) for every assignment line of FILE.
envfile_read() { # file
  local line key value dkey dvalue q seen=$'\n'
  [ -f "$1" ] && [ -r "$1" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line=$(envfile_trim "$line")
    [ -z "$line" ] || [ "${line#\#}" != "$line" ] || [ "${line#*=}" = "$line" ] && continue
    key=$(envfile_trim "${line%%=*}")
    value=$(envfile_trim "${line#*=}")
    dkey=$key dvalue=$value
    while [ "${value#\'}" != "$value" ]; do value=${value#\'}; done
    while [ "${value%\'}" != "$value" ]; do value=${value%\'}; done
    while [ "${value#\"}" != "$value" ]; do value=${value#\"}; done
    while [ "${value%\"}" != "$value" ]; do value=${value%\"}; done
    if [ -n "$key" ] && [ "${seen#*$'\n'"$key"$'\n'}" = "$seen" ]; then
      seen+="$key"$'\n'
      printf 'e%s=%s\0' "$key" "$value"
    fi
    [ "${dkey#export[[:space:]]}" != "$dkey" ] && dkey=$(envfile_trim "${dkey#export}")
    q=${dvalue:0:1}
    if [ "$q" = "'" ] || [ "$q" = '"' ]; then
      dvalue=${dvalue:1}
      dvalue=${dvalue%%"$q"*}
    else
      dvalue=${dvalue%%[[:space:]]#*}
      dvalue=$(envfile_trim "$dvalue")
    fi
    [ -n "$dkey" ] && printf 'd%s=%s\0' "$dkey" "$dvalue"
  done < "$1"
  return 0
}

# The value the eval would read for KEY from FILE (empty when none).
envfile_get() { # file key
  local record
  while IFS= read -r -d '' record; do
    [ "${record:0:1}" = e ] && [ "${record:1:${#2}+1}" = "$2=" ] && { printf '%s' "${record:${#2}+2}"; return 0; }
  done < <(envfile_read "$1")
  return 0
}

# Keys whose line python-dotenv would read differently from the eval (an inline comment, an
# "export " prefix, unbalanced quotes): one per line, the dotenv key.
envfile_ambiguous() { # file
  local record eval_records=$'\n' rest
  while IFS= read -r -d '' record; do
    [ "${record:0:1}" = e ] && eval_records+="${record:1}"$'\n'
  done < <(envfile_read "$1")
  while IFS= read -r -d '' record; do
    [ "${record:0:1}" = d ] || continue
    rest=${record:1}
    [ "${eval_records#*$'\n'"$rest"$'\n'}" = "$eval_records" ] && printf '%s\n' "${rest%%=*}"
  done < <(envfile_read "$1") | sort -u
  return 0
}

# Runs COMMAND with KEY exported from FILE (the eval's reading) when the environment lacks it.
envfile_exec() { # file key -- command...
  local file=$1 key=$2 value
  shift 3
  if [ -z "${!key:-}" ] && [ -n "$file" ]; then
    value=$(envfile_get "$file" "$key")
    [ -n "$value" ] && export "$key=$value"
  fi
  exec "$@"
}
