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
trap stop INT TERM EXIT

data=${DATA_DIR:-run}
mkdir -p "$data"

# Waits (at most 10 s) until something accepts connections on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "run: nothing listens on port $1" >&2
  return 1
}

# Each daemon in its own session: Ctrl-C reaches only this script, which then stops
# them in order. The log server first, directly on a port: no rpcbind needed.
setsid "$build/src/logd/peerdex-logd" -l 127.0.0.1 -p "${LOGD_PORT:-4001}" --rpcbind no -o "$data/ops.log" &
pids+=($!)
wait_port "${LOGD_PORT:-4001}"
setsid "$build/src/clock/peerdex-clock" -l 127.0.0.1 -p "${CLOCK_PORT:-5000}" &
pids+=($!)
wait_port "${CLOCK_PORT:-5000}"
setsid "$build/src/tracker/peerdex-tracker" -l 127.0.0.1 -p "${TRACKER_PORT:-4000}" \
  --log "127.0.0.1:${LOGD_PORT:-4001}" &
pids+=($!)
wait_port "${TRACKER_PORT:-4000}"

echo "peerdex is running on 127.0.0.1: tracker port ${TRACKER_PORT:-4000}," \
     "log server port ${LOGD_PORT:-4001} writing $data/ops.log," \
     "clock http://127.0.0.1:${CLOCK_PORT:-5000}/datetime; Ctrl-C stops it." >&2
wait -n
