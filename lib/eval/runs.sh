# Runs of the eval on the target. Each run lives in its own session and process group (setsid),
# with its files in RUN_DIR=<remote dir>/$tool_dir/runs/<id>/:
#   meta     key=value lines (started, suite, split, gpus, runner)
#   pid      the process group (its leader's pid) and the leader's start time
#   log      the eval's stderr, stdout   its stdout (the JSON); both with secrets replaced by ***
#   exit     its exit code and end time, written last
#   stopped  written when someone asked the run to stop
#   leader   locked (flock) by the session leader for its life: followers wait on it
#   report-dir  the last check of the report directory the JSON names (run_named_report_dir)
# A run reads nothing from the session that started it and writes only to files, so a dropped
# connection does not touch it. Processes are only ever found by process group, never by name.

# Start time of a live process (field 22 of /proc/PID/stat); prints nothing for a zombie or none.
run_proc_start() { # pid
  local stat rest
  { IFS= read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 0
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  [ "$1" = Z ] || printf '%s' "${20}"
}

# The live (not zombie) processes of process group PGID, one pid per line, but the pids left out,
# the pids left out with their descendants, and the shell listing them. Orphaned zombies are
# common: not every init reaps them, and they must not count as a run still going.
run_group_members() { # pgid [pids to leave out] [pids to leave out with their descendants]
  local pgid=$1 skip=" ${2:-} $BASHPID " tree=" ${3:-} " stat rest f pid up n
  local -A parent=()
  local members=()
  for f in /proc/[0-9]*/stat; do
    pid=${f#/proc/}; pid=${pid%/stat}
    { IFS= read -r stat < "$f"; } 2>/dev/null || continue
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    parent[$pid]=$2
    [ "$3" = "$pgid" ] && [ "$1" != Z ] && [ "${skip#* "$pid" }" = "$skip" ] && members+=("$pid")
  done 2>/dev/null
  for pid in "${members[@]}"; do
    up=$pid n=0
    while [ -n "$up" ] && [ "$up" != 0 ] && [ "$n" -lt 64 ]; do
      [ "${tree#* "$up" }" != "$tree" ] && continue 2
      up=${parent[$up]:-} n=$((n + 1))
    done
    printf '%s\n' "$pid"
  done
  return 0
}

# Whether any such process is left.
run_group_alive() { # pgid [pids to leave out] [pids to leave out with their descendants]
  [ -n "$(run_group_members "$@")" ]
}

# Whether the run's session leader is still the process we started (same pid, same start time).
run_alive() { # run_dir
  local pid='' start=''
  { read -r pid start < "$1/pid"; } 2>/dev/null || return 1
  [ -n "$start" ] && [ "$(run_proc_start "$pid")" = "$start" ]
}

# Copies stdin to FILE, line by line, with the value of every secret-named variable (from the
# environment, and from ENV_FILE in both the eval's and python-dotenv's reading, lib/target/envfile.sh)
# replaced by ***; so are the credentials of any URL (scheme://user:password@), and the start of a
# value at the end of a line or its end at the start of one (a value printed across two lines),
# from 8 characters on. The values reach the filter through its environment, never argv, where
# other users of the host could read them. perl (on every Debian and Ubuntu system) reads in
# blocks and hands on each line as it ends, in time linear in the output; without perl, awk does
# the same, slower (mawk must read a pipe byte by byte to pass lines on at once);
# REMOTE_EVAL_REDACTOR=awk chooses it where perl exists too.
run_redact() { # file env_file
  local pairs='' record line_by_line=()
  while IFS= read -r -d '' record; do pairs+="${record:1}"$'\037'; done < <(envfile_read "$2")
  # The token `hf auth login` stored: the eval may use it (HF_TOKEN_PATH) and print it.
  for record in "${HF_TOKEN_PATH:-}" "$HOME/.cache/huggingface/token"; do
    [ -n "$record" ] && [ -f "$record" ] && [ -r "$record" ] && pairs+="HF_TOKEN=$(head -c 4096 -- "$record" | tr -d '\n\r')"$'\037'
  done
  if [ "${REMOTE_EVAL_REDACTOR:-}" != awk ] && command -v perl >/dev/null 2>&1; then
    GR_REDACT_PAIRS=$pairs LC_ALL=C perl -e '
      $| = 1;
      my $name = qr/(TOKEN|SECRET|SECRET_KEY|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$/i;
      my %seen;
      my @pairs = map { [$_, $ENV{$_}] } grep { $_ ne "GR_REDACT_PAIRS" } keys %ENV;
      push @pairs, map { [split /=/, $_, 2] } split /\x1f/, ($ENV{GR_REDACT_PAIRS} // "");
      my @secrets = sort { length($b) <=> length($a) } grep { length($_) >= 8 && !/^(true|false|yes|no|none|null|\d+)$/i && !$seen{$_}++ }
        map { $_->[1] // "" } grep { $_->[0] =~ $name } @pairs;
      while (my $line = <STDIN>) {
        my $end = $line =~ s/\n\z// ? "\n" : "";
        $line =~ s{\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/\@:]*:[^\s/\@]*\@}{$1***\@}g;
        $line =~ s/\Q$_\E/***/g for @secrets;
        for my $v (@secrets) {
          for (my $k = length($v) - 1; $k >= 8; $k--) {
            substr($line, -$k) = "***" if length($line) >= $k && substr($line, -$k) eq substr($v, 0, $k);
            substr($line, 0, $k) = "***" if substr($line, 0, $k) eq substr($v, -$k);
          }
        }
        print $line, $end;
      }' >> "$1"
    return
  fi
  # mawk (Debian's awk) reads a pipe in blocks: the log would lag behind the eval by minutes.
  case $(awk -W version 2>&1 </dev/null) in mawk*) line_by_line=(-W interactive) ;; esac
  GR_REDACT_PAIRS=$pairs LC_ALL=C awk "${line_by_line[@]}" '
    function secret_name(name) { return toupper(name) ~ /(TOKEN|SECRET|SECRET_KEY|PASSWORD|PASSWD|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)$/ }
    function add(value,   i, t) {
      if (length(value) < 8 || tolower(value) ~ /^(true|false|yes|no|none|null|[0-9]+)$/) return
      for (i = 1; i <= n; i++) if (secrets[i] == value) return
      secrets[++n] = value
      for (i = n; i > 1 && length(secrets[i]) > length(secrets[i - 1]); i--) { t = secrets[i]; secrets[i] = secrets[i - 1]; secrets[i - 1] = t }
    }
    BEGIN {
      n = 0
      for (name in ENVIRON) if (name != "GR_REDACT_PAIRS" && secret_name(name)) add(ENVIRON[name])
      m = split(ENVIRON["GR_REDACT_PAIRS"], pairs, "\037")
      for (i = 1; i <= m; i++) {
        eq = index(pairs[i], "=")
        if (eq > 0 && secret_name(substr(pairs[i], 1, eq - 1))) add(substr(pairs[i], eq + 1))
      }
    }
    {
      # URL credentials, found from each "://" (a regex scanning for the scheme is quadratic in mawk).
      rest = $0; out = ""
      while ((at = index(rest, "://")) > 0) {
        out = out substr(rest, 1, at + 2); rest = substr(rest, at + 3)
        if (match(rest, /^[^ \t\/@]*@/) && index(substr(rest, 1, RLENGTH), ":") > 0) { out = out "***@"; rest = substr(rest, RLENGTH + 1) }
      }
      out = out rest
      for (i = 1; i <= n; i++) {
        done = ""
        while ((at = index(out, secrets[i])) > 0) { done = done substr(out, 1, at - 1) "***"; out = substr(out, at + length(secrets[i])) }
        out = done out
      }
      for (i = 1; i <= n; i++) {
        v = secrets[i]; L = length(v)
        for (k = L - 1; k >= 8; k--) {
          if (length(out) >= k && substr(out, length(out) - k + 1) == substr(v, 1, k)) out = substr(out, 1, length(out) - k) "***"
          if (substr(out, 1, k) == substr(v, L - k + 1)) out = "***" substr(out, k + 1)
        }
      }
      print out
      fflush()
    }' >> "$1"
}

# The session leader of a run (runs under setsid, from RUN_DIR/session.sh). On a stop's TERM only
# the eval gets the signal: the leader and the redactors ignore it, so what the eval prints while
# it shuts down is kept, and its own exit code recorded. The run ends when the eval does: what it
# left behind in its process group (a worker holding the GPU, a double-forked child holding its
# output open) gets the run's stop grace (meta stop_grace, seconds), then SIGTERM, then SIGKILL,
# and is named in RUN_DIR/stragglers. The exit file is written last.
run_session() { # run_dir env_file -- command...
  local run=$1 env_file=$2 code=0 grace eval_pid log_pid out_pid i keep
  shift 3
  trap '' HUP
  trap ':' TERM INT
  # Held for the leader's life only (its children do not get the descriptor): a follower's flock
  # on it returns the moment the leader is gone, however it went (run_follow).
  { exec 8>> "$run/leader" && flock -n 8; } 2>/dev/null || { exec 8>&-; rm -f -- "$run/leader"; }
  printf '%s %s\n' "$$" "$(run_proc_start "$$")" > "$run/pid.tmp" && mv -f -- "$run/pid.tmp" "$run/pid"
  grace=$(sed -n 's/^stop_grace=//p' -- "$run/meta"); grace=${grace:-10}
  exec 4> >(exec 8>&-; trap '' TERM INT; run_redact "$run/log" "$env_file") && log_pid=$!
  exec 5> >(exec 8>&-; trap '' TERM INT; run_redact "$run/stdout" "$env_file") && out_pid=$!
  # A trap with a handler (not an ignore) is reset in the exec'd eval: it gets TERM as usual.
  ( trap ':' TERM INT; exec "$@" </dev/null >&5 2>&4 4>&- 5>&- 8>&- ) &
  eval_pid=$!
  exec 4>&- 5>&-
  # wait returns early when a TERM reaches the leader; the eval's own end is what counts.
  while :; do
    wait "$eval_pid"; code=$?
    kill -0 "$eval_pid" 2>/dev/null || break
  done
  keep="$log_pid $out_pid"
  i=0
  # One scan of the processes when the eval left none (the common case: the run ends at once).
  while run_group_alive "$$" "$$" "$keep"; do
    if [ "$i" -ge "$((grace * 10))" ]; then
      for pid in $(run_group_members "$$" "$$" "$keep"); do
        printf '%s %s\n' "$pid" "$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | head -c 300)" >> "$run/stragglers"
        kill -TERM "$pid" 2>/dev/null
      done
      i=0
      while run_group_alive "$$" "$$" "$keep" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
      for pid in $(run_group_members "$$" "$$" "$keep"); do kill -KILL "$pid" 2>/dev/null; done
      printf 'stragglers=%s\n' "$(wc -l < "$run/stragglers")" >> "$run/meta"
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  wait "$log_pid" "$out_pid" 2>/dev/null
  printf '%s %s\n' "$code" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$run/exit.tmp" && mv -f -- "$run/exit.tmp" "$run/exit"
}

# Starts COMMAND as a new run in the current directory and returns once it runs. Prints
# "@@started ID" on stderr.
run_start() { # remote_dir run_id meta(key=value, tab-separated) -- command...
  local dir=$1 id=$2 meta=$3 run i
  shift 4
  run=$dir/$tool_dir/runs/$id
  command -v setsid >/dev/null 2>&1 || { echo "setsid is not on the target's PATH: install util-linux there" >&2; return "$status_missing_tool"; }
  mkdir -p -- "$dir/$tool_dir/runs" && mkdir -- "$run" || { echo "cannot create the run directory $run" >&2; return "$status_no_directory"; }
  printf '%s\tstarted=%s\n' "$meta" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" | tr '\t' '\n' > "$run/meta"
  : > "$run/log" && : > "$run/stdout" || return "$status_no_directory"
  { declare -f envfile_trim envfile_read run_proc_start run_group_members run_group_alive run_redact run_session; echo 'run_session "$@"'; } > "$run/session.sh"
  setsid bash "$run/session.sh" "$run" "$dir/.env.eval" -- "$@" </dev/null >/dev/null 2>&1 &
  for i in $(seq 100); do [ -s "$run/pid" ] && break; sleep 0.05; done
  [ -s "$run/pid" ] || { echo "the run did not start (no pid file in $run)" >&2; return "$status_not_started"; }
  printf '@@started %s\n' "$id" >&2
}

# "STATE CODE" of a run: running, finished, failed, stopped or lost (it ended without recording
# its exit: killed with SIGKILL from outside, or the host rebooted); CODE is - while unknown.
run_state() { # run_dir
  local code=''
  if [ ! -f "$1/exit" ] && run_alive "$1"; then echo 'running -'; return; fi
  if [ -f "$1/exit" ]; then
    read -r code _ < "$1/exit"
    if [ -e "$1/stopped" ]; then echo "stopped $code"
    elif [ "$code" = 0 ]; then echo 'finished 0'
    else echo "failed $code"
    fi
  elif [ -e "$1/stopped" ]; then echo 'stopped -'
  else echo 'lost -'
  fi
}

# Streams the run's log to stderr from byte OFFSET (-1: its last 10 lines) until the run ends;
# then prints "@@state STATE CODE", its meta lines as "@@meta KEY=VALUE", "@@stdout BYTES", its
# stdout (exactly BYTES bytes), and with OUTPUT_DIR the check of the report directory it names
# (with ARCHIVE_MAX, that directory too when it holds at most that many bytes).
run_follow() { # run_dir offset [output_dir [archive_max_bytes]]
  local run=$1 off=$2 output=${3:-} archive_max=${4:-} size ended pid='' pause=0.05
  [ -f "$run/meta" ] || { echo "no run in $run" >&2; return "$status_no_run"; }
  if [ "$off" = -1 ]; then
    size=$(wc -c < "$run/log")
    off=$((size - $(tail -n 10 -- "$run/log" | wc -c)))
  fi
  # GNU tail follows the log as the kernel reports its writes (inotify), until a waiter of ours is
  # gone: a flock on the leader's lock file, which returns the moment the leader exits (after the
  # exit file and the whole log are written), killed or not. tail checks the waiter every 20 ms
  # (a signal-0 call); the waiter, being our child, is reaped at once (the leader, a zombie of a
  # pod's init that never reaps, could look alive for ever). A quiet run costs nothing. Elsewhere
  # (busybox, no flock, a run of an older version), or with REMOTE_EVAL_FOLLOW=poll, the log is
  # polled, quickly while the run talks, up to a second while it is quiet.
  if [ -e "$run/leader" ] && [ "${REMOTE_EVAL_FOLLOW:-}" != poll ] && command -v flock >/dev/null 2>&1 \
    && tail --version 2>/dev/null | grep -q GNU; then
    flock -s "$run/leader" true 2>/dev/null &
    pid=$!
  fi
  if [ -n "$pid" ]; then
    tail -c +"$((off + 1))" -s 0.02 --pid="$pid" -f -- "$run/log" >&2
    # tail also ends when our session is cut: the waiter must not outlive it.
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  else
    while :; do
      ended=0
      if [ -f "$run/exit" ] || ! run_alive "$run"; then ended=1; fi
      size=$(wc -c < "$run/log")
      if [ "$size" -gt "$off" ]; then
        tail -c +"$((off + 1))" -- "$run/log" | head -c "$((size - off))" >&2
        off=$size
        pause=0.05
      fi
      [ "$ended" = 1 ] && break
      sleep "$pause"
      case $pause in 0.05) pause=0.1 ;; 0.1) pause=0.2 ;; 0.2) pause=0.5 ;; *) pause=1 ;; esac
    done
  fi
  printf '@@state %s\n' "$(run_state "$run")"
  sed 's/^/@@meta /' -- "$run/meta"
  size=$(wc -c < "$run/stdout")
  printf '@@stdout %s\n' "$size"
  head -c "$size" -- "$run/stdout"
  [ -z "$output" ] || run_named_report_dir "$run" "$output" "$archive_max"
}

# The report directory a run's JSON names, checked by run_report_dir right after the run, so
# that fetching it costs no round trip of its own: "\0@@rundir\0ABSOLUTE\0STATUS\0LENGTH\0" and
# the LENGTH bytes run_report_dir printed; then, when it is inside and holds at most ARCHIVE_MAX
# bytes, "@@archive" and a newline, and the directory as tree_list_and_tar streams it (pull.sh).
# Only a run_dir written plainly (one "run_dir" key, no escapes, no empty, . or .. part): the
# runner uses the check when ABSOLUTE is where its own reading of the JSON leads, and asks in a
# round trip of its own otherwise.
run_named_report_dir() { # run_dir output_dir [archive_max_bytes]
  local claimed absolute status=0 real='' total
  claimed=$(run_printed_dir "$1") || return 0
  case /${claimed#/}/ in *//*|*/./*|*/../*) return 0 ;; esac
  case $claimed in /*) absolute=$claimed ;; *) absolute=${1%/"$tool_dir"/runs/*}/$claimed ;; esac
  run_report_dir "$2" "$absolute" > "$1/report-dir" || status=$?
  printf '\0@@rundir\0%s\0%s\0%s\0' "$absolute" "$status" "$(wc -c < "$1/report-dir")"
  cat -- "$1/report-dir"
  [ "$status" = 0 ] && [ -n "${3:-}" ] || return 0
  IFS= read -r -d '' real < "$1/report-dir" || true
  total=$(find "$real" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  [ "$total" -le "$3" ] || return 0
  printf '@@archive\n'
  ( tree_list_and_tar "$real" )
}

# The run_dir the run's JSON writes plainly (one "run_dir" key, no escapes in its value); fails otherwise.
run_printed_dir() { # run_dir
  local found
  found=$(grep -ao '"run_dir": *"[^"\\]*"' -- "$1/stdout" 2>/dev/null) || return 1
  [ "${found#*$'\n'}" = "$found" ] || return 1
  found=${found%\"}
  printf '%s' "${found##*\"}"
}

# Prints the physical path of run_dir if it lies strictly inside output_dir, then (NUL-separated)
# what in it is neither a regular file nor a directory; or, failing, why.
run_report_dir() { # output_dir run_dir
  local out real
  out=$(cd -P -- "$1" 2>/dev/null && pwd) || { printf 'the output directory %s does not exist' "$1"; return "$status_no_output_dir"; }
  real=$(cd -P -- "$2" 2>/dev/null && pwd) || { printf 'run_dir %s does not exist' "$2"; return "$status_no_run_dir"; }
  case "$real/" in
    "$out"/?*/) printf '%s' "$real" ;;
    *) printf 'run_dir %s resolves to %s, outside %s' "$2" "$real" "$out"; return "$status_run_dir_outside" ;;
  esac
  # What the fetch leaves behind: anything neither a regular file nor a directory.
  find "$real" -mindepth 1 ! -type f ! -type d -printf '\0%P' 2>/dev/null
  return 0
}

# Stops a run: SIGTERM to its process group, SIGKILL after GRACE seconds if anything is left.
# Prints "@@state STATE CODE" afterwards.
run_stop() { # run_dir grace_seconds
  local run=$1 grace=$2 pid='' start='' i=0 killed=''
  [ -f "$run/meta" ] || { echo "no run in $run" >&2; return "$status_no_run"; }
  # The session that asked may go away meanwhile (Ctrl-C, a dropped link): finish the stop anyway.
  trap '' PIPE HUP
  if [ ! -f "$run/exit" ] && run_alive "$run"; then
    read -r pid start < "$run/pid"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$run/stopped"
    kill -TERM -- "-$pid" 2>/dev/null || { echo "cannot signal the run's processes (process group $pid)" >&2; return "$status_cannot_signal"; }
    while run_group_alive "$pid" "$pid" && [ "$i" -lt "$((grace * 10))" ]; do sleep 0.1; i=$((i + 1)); done
    # Only when the grace ran out: once the others are gone, the leader's own short-lived helpers
    # (a subshell, a sleep) may be seen for a moment, and it must live to record the exit code.
    if [ "$i" -ge "$((grace * 10))" ] && run_group_alive "$pid" "$pid"; then
      kill -KILL -- "-$pid" 2>/dev/null
      killed=1
      echo "still running after ${grace} s: SIGKILL" >&2
    fi
    # The leader records the eval's exit code once the others are gone; a leader killed cannot.
    i=0
    while [ -z "$killed" ] && [ ! -f "$run/exit" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    if [ ! -f "$run/exit" ]; then
      kill -KILL -- "-$pid" 2>/dev/null
      printf '137 %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$run/exit.tmp" && mv -f -- "$run/exit.tmp" "$run/exit"
    fi
  fi
  printf '@@state %s\n' "$(run_state "$run")"
}

# The report directory of a run, when the run_dir its JSON names is a folder of REPORTS_DIR (the
# eval's --output-dir) itself, named plainly (no ., .. or empty part) and reached through no
# link: what --list counts and --prune removes with the run. Printed with a slash after it, which
# keeps a name ending in a line break whole through $( ).
run_own_report() { # run_dir reports_dir
  local claimed absolute real out
  claimed=$(run_printed_dir "$1") || return 1
  case /${claimed#/}/ in *//*|*/./*|*/../*) return 1 ;; esac
  case $claimed in /*) absolute=$claimed ;; *) absolute=${1%/"$tool_dir"/runs/*}/$claimed ;; esac
  absolute=${absolute%/}
  real=$(cd -P -- "$absolute" 2>/dev/null && printf '%s/' "$PWD") && out=$(cd -P -- "$2" 2>/dev/null && printf '%s/' "$PWD") || return 1
  real=${real%/}
  [ "$real" = "$absolute" ] && [ "${real%/*}/" = "$out" ] && printf '%s/' "$real"
}

# Bytes on disk of the given paths together (du's KiB; busybox has no -b).
run_disk_bytes() { # path...
  du -skc -- "$@" 2>/dev/null | awk 'END { printf "%.0f\n", $1 * 1024 }'
}

# Every run of the directory, oldest first: "@@run ID", then STATE CODE, then meta and end lines,
# and the bytes its record and its report directory take.
run_list() { # remote_dir reports_dir
  local run found report
  for run in "$1/$tool_dir/runs"/*/; do
    [ -f "$run/meta" ] || continue
    run=${run%/}
    printf '@@run %s\nstate=%s\n' "${run##*/}" "$(run_state "$run")"
    cat -- "$run/meta"
    # The report's folder, from the run_dir the eval printed (its run_id, for the user).
    found=$(run_printed_dir "$run") && printf 'report=%s\n' "${found##*/}"
    [ -f "$run/exit" ] && printf 'ended=%s\n' "$(cut -d' ' -f2 < "$run/exit")"
    report=$(run_own_report "$run" "$2") && report=${report%/} || report=''
    printf 'bytes=%s\n' "$(run_disk_bytes "$run" ${report:+"$report"})"
  done
  return 0
}

# Removes the runs that ended more than MAX_AGE minutes ago or are beyond the newest KEEP (either
# may be -), each with its report directory (run_own_report) unless a run that stays names it
# too; never a running one. Prints "@@pruned ID BYTES" per run (with DRY=1, what it would remove,
# removing nothing).
run_prune() { # remote_dir reports_dir max_age_minutes keep dry
  local runs=$1/$tool_dir/runs run
  [ -d "$runs" ] || return 0
  # Newest first, by start time (meta started=, ISO 8601 sorts as text). Only folders named as
  # this tool names its runs: anything else there, whatever its name, is left alone.
  for run in "$runs"/*/; do
    run=${run%/}
    [[ ${run##*/} =~ ^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$ ]] && [ -f "$run/meta" ] || continue
    printf '%s %s\n' "$(sed -n 's/^started=//p' -- "$run/meta" | tr -cd '0-9TZ:-')" "${run##*/}"
  done | sort -r | {
    local index=0 when id ended report group
    local -a gone=()
    local -A kept_reports=() kept_groups=() groups=()
    while read -r when id; do
      [[ $id =~ ^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$ ]] || continue
      index=$((index + 1))
      run=$runs/$id
      report=$(run_own_report "$run" "$2") && report=${report%/} || report=''
      # A shard's group: its merged report (and the reports sent for the merge) go with its last run.
      group=$(sed -n 's/^group=//p' -- "$run/meta")
      [[ $group =~ ^shards-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$ ]] || group=''
      # Its age from its end (a lost run's: from its start). A run that is starting has no pid
      # file yet, so it looks lost for a moment: one without is left alone for two minutes.
      ended=$run/exit
      [ -f "$ended" ] || ended=$run/meta
      if [ "$(run_state "$run")" = 'running -' ] \
        || { [ ! -f "$run/exit" ] && [ ! -f "$run/pid" ] && [ -z "$(find "$run/meta" -maxdepth 0 -mmin +2)" ]; } \
        || { { [ "$4" = - ] || [ "$index" -le "$4" ]; } && { [ "$3" = - ] || [ -z "$(find "$ended" -maxdepth 0 -mmin "+$3")" ]; }; }; then
        [ -z "$report" ] || kept_reports["$report"]=1
        [ -z "$group" ] || kept_groups["$group"]=1
        continue
      fi
      gone+=("$id" "$report" "$group")
    done
    local i merged
    local -a also
    for ((i = 0; i < ${#gone[@]}; i += 3)); do
      id=${gone[i]} report=${gone[i + 1]} group=${gone[i + 2]} also=()
      [ -z "$report" ] || [ -z "${kept_reports["$report"]+x}" ] || report=''
      if [ -n "$group" ] && [ -z "${kept_groups["$group"]+x}" ] && [ -z "${groups["$group"]+x}" ]; then
        groups["$group"]=1
        merged=$(run_group_dir "$2" "$group") && also+=("$merged")
        [ -d "$1/$tool_dir/merge/$group" ] && [ ! -L "$1/$tool_dir/merge/$group" ] && also+=("$1/$tool_dir/merge/$group")
      fi
      printf '@@pruned %s %s\n' "$id" "$(run_disk_bytes "$runs/$id" ${report:+"$report"} ${also[@]+"${also[@]}"})"
      [ "$5" = 1 ] && continue
      [ -z "$report" ] || rm -rf -- "$report"
      [ ${#also[@]} -eq 0 ] || rm -rf -- "${also[@]}"
      rm -rf -- "${runs:?}/$id"
    done
  }
}

# The folder of a group's merged report in the reports directory, reached through no link.
run_group_dir() { # reports_dir group
  local out real
  out=$(cd -P -- "$1" 2>/dev/null && printf '%s' "$PWD") && real=$(cd -P -- "$1/$2" 2>/dev/null && printf '%s' "$PWD") || return 1
  [ "$real" = "$out/$2" ] && [ ! -L "$1/$2" ] && printf '%s' "$real"
}
