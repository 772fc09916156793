#!/usr/bin/env bash
# The README's run command: sets up, builds and runs the peerdex system on loopback
# with its embedded defaults, until Ctrl-C.
#   TRACKER_PORT (default 4000), LOGD_PORT (default 4001), CLOCK_PORT (default 5000),
#   DATA_DIR (default run/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
build=${BUILD_DIR:-build}

pids=()
# Newest first: the tracker flushes its operation log while the log server still runs.
stop() {
  trap - INT TERM EXIT
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null
    wait "${pids[i]}" 2>/dev/null
  done
}
trap stop EXIT
trap 'stop; exit 0' INT TERM  # Ctrl-C is how it is meant to end

data=${DATA_DIR:-run}
mkdir -p "$data"

tracker_port=${TRACKER_PORT:-4000} logd_port=${LOGD_PORT:-4001} clock_port=${CLOCK_PORT:-5000}

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Another peerdex (or anything else) on one of the ports: say so before starting anything.
for spec in "tracker:$tracker_port:TRACKER_PORT" "log server:$logd_port:LOGD_PORT" "clock:$clock_port:CLOCK_PORT"; do
  IFS=: read -r what port var <<<"$spec"
  if in_use "$port"; then
    echo "run: port $port (the $what) is already in use on 127.0.0.1: is peerdex already running?" \
         "Stop it, or choose another port with $var=N." >&2
    exit 1
  fi
done

# Waits (at most 10 s) until our own daemon $2 (pid $3) accepts connections on port $1.
wait_port() {
  for _ in $(seq 100); do
    if ! kill -0 "$3" 2>/dev/null; then
      wait "$3"
      echo "run: $2 exited (status $?) instead of listening on port $1; see its message above" >&2
      exit 1
    fi
    in_use "$1" && return 0
    sleep 0.1
  done
  echo "run: $2 does not listen on port $1 after 10 s" >&2
  exit 1
}

# Each daemon in its own session: Ctrl-C reaches only this script, which then stops
# them in order. The log server first, directly on a port: no rpcbind needed.
setsid "$build/src/logd/peerdex-logd" -l 127.0.0.1 -p "$logd_port" --rpcbind no -o "$data/ops.log" &
pids+=($!)
wait_port "$logd_port" peerdex-logd $!
setsid "$build/src/clock/peerdex-clock" -l 127.0.0.1 -p "$clock_port" &
pids+=($!)
wait_port "$clock_port" peerdex-clock $!
# The index is kept in $data/tracker.db: a restart finds every user where it was.
setsid "$build/src/tracker/peerdex-tracker" -l 127.0.0.1 -p "$tracker_port" --log "127.0.0.1:$logd_port" \
  --state "$data/tracker.db" &
pids+=($!)
wait_port "$tracker_port" peerdex-tracker $!

echo "peerdex is running on 127.0.0.1: tracker port $tracker_port," \
     "log server port $logd_port writing $data/ops.log, index kept in $data/tracker.db," \
     "clock http://127.0.0.1:$clock_port/datetime; Ctrl-C stops it." >&2
wait -n
