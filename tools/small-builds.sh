#!/usr/bin/env bash
# Builds peerdex as two small boxes would (README, "Building only what a box runs") and checks
# that each links only what it runs:
#   build-box-tracker  the tracker alone, no operation-log forwarding, its C++ runtime linked
#                      in: no libcurl, libmicrohttpd, libtirpc or libstdc++; its unit,
#                      fuzz-corpus and man suites pass; --log is refused with a clear message
#   build-box-client   the client alone, without libcurl: --clock URL is refused, and the
#                      client stamps operations from the local clock
# Extra arguments go to both `meson setup`s (e.g. --cross-file). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || exit 1

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
# check DESCRIPTION COMMAND...: one check, counted.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
# The shared libraries PROGRAM loads, by name.
libs() { ldd "$1" | awk '{print $1}'; }
lacks() {
  local program=$1
  shift
  local lib
  for lib in "$@"; do
    if libs "$program" | grep -q "^$lib"; then
      echo "  $program loads $lib" >&2
      return 1
    fi
  done
}
# refuses EXPECTED_TEXT PROGRAM ARGS...: exits 2 and says EXPECTED_TEXT on stderr.
refuses() {
  local expected=$1
  shift
  local err rc
  err=$("$@" 2>&1 >/dev/null </dev/null)
  rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "$expected" <<<"$err" || { echo "  exit $rc: $err" >&2; return 1; }
}

box() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    local log
    log=$(mktemp)
    meson setup "$dir" -Dbuildtype=minsize "$@" >"$log" 2>&1 || { cat "$log"; rm -f "$log"; return 1; }
    rm -f "$log"
  fi
  meson compile -C "$dir" >/dev/null
}

echo "=== the tracker alone"
t=build-box-tracker
if box "$t" -Dclient=disabled -Dclock=disabled -Dlogd=disabled -Doplog=disabled -Dhttp=disabled \
  -Dstatic_cxx_runtime=true "$@"; then
  ok "tracker-only build"
  check "only the tracker is built" test -x "$t/src/tracker/peerdex-tracker" -a ! -e "$t/src/peer/peerdex" \
    -a ! -e "$t/src/clock/peerdex-clock" -a ! -e "$t/src/logd/peerdex-logd"
  check "the tracker loads no libcurl, libmicrohttpd, libtirpc or libstdc++" \
    lacks "$t/src/tracker/peerdex-tracker" libcurl libmicrohttpd libtirpc libstdc++
  check "--log is refused" refuses "built without operation-log forwarding" \
    "$t/src/tracker/peerdex-tracker" -p 0 --log 127.0.0.1:4001
  check "--http is refused" refuses "built without its HTTP side" "$t/src/tracker/peerdex-tracker" -p 0 --http 0
  rm -f "$t/meson-logs/testlog.json"
  meson test -C "$t" --print-errorlogs >/dev/null
  read -r p f < <(python3 -c '
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r != "SKIP": f += 1
print(p, f)' "$t/meson-logs/testlog.json" 2>/dev/null || echo "0 1")
  passed=$((passed + p))
  failed=$((failed + f))
  echo "tracker-only build's suites: $p passed, $f failed"
else
  bad "tracker-only build"
fi

echo "=== the client alone, without libcurl"
c=build-box-client
if box "$c" -Dtracker=disabled -Dclock=disabled -Dlogd=disabled -Dcurl=disabled -Dtests=false "$@"; then
  ok "client-only build"
  check "the client loads no libcurl, libmicrohttpd or libtirpc" lacks "$c/src/peer/peerdex" libcurl libmicrohttpd libtirpc
  check "--clock URL is refused" refuses "built without libcurl" \
    "$c/src/peer/peerdex" -s 127.0.0.1 -p 1 --clock http://127.0.0.1:5000/datetime
  check "the local clock is the default" bash -c "'$c/src/peer/peerdex' --help | grep -q '(default local)'"
else
  bad "client-only build"
fi

echo "=== the two boxes together"
# The client box's operations reach the tracker box stamped by the client's own clock.
together() {
  PEERDEX_TRACKER=$t/src/tracker/peerdex-tracker PEERDEX=$c/src/peer/peerdex python3 - <<'EOF'
import sys
sys.path.insert(0, "tests/integration")
from harness import Client, Tracker
t = Tracker("-v")
try:
    with Client(t.port, "--clock", "local") as c:
        replies = c.run("REGISTER box")
        c.quit()
    assert replies == ["c> REGISTER OK"], replies
    t.wait_for(r"^s> REGISTER from \S+ at \d\d/\d\d/\d{4} \d\d:\d\d:\d\d$", stream="stderr")
finally:
    t.stop()
EOF
}
if [ -x "$t/src/tracker/peerdex-tracker" ] && [ -x "$c/src/peer/peerdex" ]; then
  check "the client box registers at the tracker box, with a local timestamp" together
else
  bad "the two boxes together (a build is missing)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
