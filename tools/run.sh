#!/usr/bin/env bash
# The README's run command: sets up, builds and runs the peerdex system on loopback
# with its embedded defaults, until Ctrl-C.
#   TRACKER_PORT (default 4000)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
build=${BUILD_DIR:-build}

pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null
  wait
}
trap stop INT TERM EXIT

"$build/src/tracker/peerdex-tracker" -l 127.0.0.1 -p "${TRACKER_PORT:-4000}" &
pids+=($!)

echo "peerdex is running on 127.0.0.1 (tracker port ${TRACKER_PORT:-4000}); Ctrl-C stops it." >&2
wait -n
