# Helpers the start and stop scripts share: the daemons are found through their pid
# files, and only ever signalled while the pid still is that daemon. Sourced, not run.

# is_running PID NAME: PID is a live process (not a zombie: PID 1 of a
# container may reap late) whose comm is NAME
is_running() {
  local st
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) }
  case "${st%% *}" in Z|X|x) return 1 ;; esac
  return 0
}
# pid_alive PIDFILE NAME: PIDFILE names a live process whose comm is NAME
pid_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(tr -dc '0-9' < "$1")
  [ -n "$pid" ] && is_running "$pid" "$2"
}
# stop_pidfile PIDFILE NAME [--say-absent]: SIGTERM the process named in PIDFILE (only if
# it is a live NAME), wait up to 30 s, then SIGKILL; remove the pid file.
stop_pidfile() {
  local pid
  if pid_alive "$1" "$2"; then
    pid=$(tr -dc '0-9' < "$1")
    say "stopping $2 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      is_running "$pid" "$2" || break
      sleep 0.1
    done
    if is_running "$pid" "$2"; then
      say "$2 (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
  elif [ "${3:-}" = --say-absent ]; then
    say "$2 not running (no live pid in $1)"
  fi
  rm -f "$1"
}
