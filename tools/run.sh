#!/usr/bin/env bash
# The README's run command: sets up, builds and runs the peerdex system on loopback
# with its embedded defaults, until Ctrl-C.
#   TRACKER_PORT (default 4000), LOGD_PORT (default 4001), CLOCK_PORT (default 5000),
#   DATA_DIR (default run/); when built with -Dhttp (the default), the tracker's status page
#   and metrics on HTTP_PORT (default 4080), the log server's metrics on LOGD_HTTP_PORT (4081)
# With --shared: two trackers sharing one index in a redis-server of the script's own
# (append-only file in DATA_DIR/redis), the second on TRACKER2_PORT (default 4002),
# Redis on REDIS_PORT (default 4003), the second tracker's page on HTTP2_PORT (4082); no
# --state file.
# Ctrl-C stops the daemons one by one, newest first; one still running 15 s after its
# SIGTERM is killed, and a second Ctrl-C kills at once what is left. A daemon that ends by
# itself makes the script stop the others and exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=0
case "${1:-}" in
  "") ;;
  --shared) shared=1 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "run: unknown argument '$1' (use --shared, or nothing)" >&2; exit 2 ;;
esac
if [ "$shared" = 1 ] && ! command -v redis-server >/dev/null; then
  echo "run: --shared needs redis-server (Debian package redis-server; tools/setup.sh installs it)" >&2
  exit 1
fi
bash tools/build.sh
build=${BUILD_DIR:-build}

pids=() names=() hurry=0
# Newest first: the tracker flushes its operation log while the log server still runs.
# A daemon still there 15 s after SIGTERM is killed, and said so; so is every daemon left
# when Ctrl-C comes again while they stop. Ctrl-C always ends the script, and never leaves
# a daemon behind. Each end is polled (kill -0) rather than waited for with `wait -n`,
# which misses a daemon that ended before it was called.
stop() {
  trap - EXIT
  trap 'hurry=1' INT TERM HUP
  local i pid ticks
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for ((ticks = 0; ticks < 150 && !hurry; ticks++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1 || true  # (a second Ctrl-C ends it too; set -e must not end the script)
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      if ((hurry)); then
        echo "run: ${names[i]} (pid $pid) killed: interrupted again while it stopped" >&2 || true
      else
        echo "run: ${names[i]} (pid $pid) did not stop within 15 s of SIGTERM: killed" >&2 || true
      fi
    fi
    wait "$pid" 2>/dev/null || true  # (set -e: statuses are not failures here)
  done
}
trap stop EXIT
trap 'stop; exit 0' INT TERM HUP  # Ctrl-C is how it is meant to end

data=${DATA_DIR:-run}
mkdir -p "$data"

tracker_port=${TRACKER_PORT:-4000} logd_port=${LOGD_PORT:-4001} clock_port=${CLOCK_PORT:-5000}
tracker2_port=${TRACKER2_PORT:-4002} redis_port=${REDIS_PORT:-4003}
http_port=${HTTP_PORT:-4080} logd_http_port=${LOGD_HTTP_PORT:-4081} http2_port=${HTTP2_PORT:-4082}
specs=("tracker:$tracker_port:TRACKER_PORT" "log server:$logd_port:LOGD_PORT" "clock:$clock_port:CLOCK_PORT")
# The daemons' HTTP side, on loopback, when this build has it (-Dhttp).
http=0
if "$build/src/tracker/peerdex-tracker" --help | grep -q -- --http; then
  http=1
  specs+=("tracker's status page:$http_port:HTTP_PORT" "log server's metrics:$logd_http_port:LOGD_HTTP_PORT")
fi
if [ "$shared" = 1 ]; then
  specs+=("second tracker:$tracker2_port:TRACKER2_PORT" "Redis:$redis_port:REDIS_PORT")
  [ "$http" = 1 ] && specs+=("second tracker's status page:$http2_port:HTTP2_PORT")
fi
http_args() { [ "$http" = 1 ] && echo "--http" "127.0.0.1:$1"; true; }

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Another peerdex (or anything else) on one of the ports: say so before starting anything.
for spec in "${specs[@]}"; do
  IFS=: read -r what port var <<<"$spec"
  if in_use "$port"; then
    echo "run: port $port (the $what) is already in use on 127.0.0.1: is peerdex already running?" \
         "Stop it, or choose another port with $var=N." >&2
    exit 1
  fi
done

# Records the daemon just started in the background ($!) as $1, for the stop below, and
# waits (at most 10 s) until it accepts connections on port $2.
started() {
  local pid=$!
  pids+=("$pid") names+=("$1")
  for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
      local status=0
      wait "$pid" || status=$?
      echo "run: $1 exited (status $status) instead of listening on port $2; see its message above" >&2
      exit 1
    fi
    in_use "$2" && return 0
    sleep 0.1
  done
  echo "run: $1 (pid $pid) does not listen on port $2 after 10 s" >&2
  exit 1
}

# Each daemon in its own session: Ctrl-C reaches only this script, which then stops
# them in order. The log server first, directly on a port: no rpcbind needed.
# shellcheck disable=SC2046 # http_args gives nothing or two words
setsid "$build/src/logd/peerdex-logd" -l 127.0.0.1 -p "$logd_port" --rpcbind no -o "$data/ops.log" \
  $(http_args "$logd_http_port") &
started peerdex-logd "$logd_port"
setsid "$build/src/clock/peerdex-clock" -l 127.0.0.1 -p "$clock_port" &
started peerdex-clock "$clock_port"
if [ "$shared" = 1 ]; then
  # One index in Redis (kept in its append-only file), served by two trackers.
  mkdir -p "$data/redis"
  setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$data/redis" --save "" \
    --appendonly yes --appendfsync always --logfile redis.log &
  started redis-server "$redis_port"
  for ports in "$tracker_port:$http_port" "$tracker2_port:$http2_port"; do
    port=${ports%:*}
    # shellcheck disable=SC2046
    setsid "$build/src/tracker/peerdex-tracker" -l 127.0.0.1 -p "$port" --log "127.0.0.1:$logd_port" \
      --store "redis://127.0.0.1:$redis_port" $(http_args "${ports#*:}") &
    started "peerdex-tracker on port $port" "$port"
  done
  where="trackers on ports $tracker_port and $tracker2_port sharing one index in Redis on port $redis_port"
  where+=" (kept in $data/redis)"
else
  # The index is kept in $data/tracker.db: a restart finds every user where it was.
  # shellcheck disable=SC2046
  setsid "$build/src/tracker/peerdex-tracker" -l 127.0.0.1 -p "$tracker_port" --log "127.0.0.1:$logd_port" \
    --state "$data/tracker.db" $(http_args "$http_port") &
  started peerdex-tracker "$tracker_port"
  where="tracker port $tracker_port, index kept in $data/tracker.db"
fi

echo "peerdex is running on 127.0.0.1: $where," \
     "log server port $logd_port writing $data/ops.log," \
     "clock http://127.0.0.1:$clock_port/datetime;" \
     "$([ "$http" = 1 ] && echo "status page http://127.0.0.1:$http_port/ (metrics: /metrics);")" \
     "Ctrl-C stops it." >&2
# Until Ctrl-C, or until a daemon ends by itself: then the others are stopped too. Polled,
# as in stop(). Ctrl-C ends the sleep as well; a SIGTERM to the script alone is acted on
# when the current second's sleep is over.
while :; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[i]}" 2>/dev/null; then
      status=0
      wait "${pids[i]}" || status=$?
      echo "run: ${names[i]} (pid ${pids[i]}) ended by itself (status $status): stopping the others" >&2
      exit 1
    fi
  done
  sleep 1 || true
done
