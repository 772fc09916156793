#!/usr/bin/env bash
# Cross-builds peerdex for ARM and runs every test suite of that build under qemu-user:
# the unit and fuzz-corpus programs through Meson's exe wrapper, the integration suite
# through wrappers that start each program under the emulator (tests/emulated.sh.in).
# On a fresh Debian machine it installs what it needs first: the cross toolchain, qemu-user,
# and the libraries for the target architecture (multiarch).
# Usage: tools/cross.sh armhf|arm64 [meson test arguments...]. Builds in build-ARCH.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

arch=${1:-}
case "$arch" in
armhf) triplet=arm-linux-gnueabihf ;;
arm64) triplet=aarch64-linux-gnu ;;
*)
  echo "usage: tools/cross.sh armhf|arm64 [meson test arguments...]" >&2
  exit 2
  ;;
esac
shift

# The native side first: meson, the test tools (redis-server, rpcbind, strace, mandoc...).
bash tools/setup.sh || exit 1

# The target's libraries: those of tools/setup.sh that the programs and tests link.
libs=(libuv1-dev libtirpc-dev libmicrohttpd-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev libsodium-dev
  libssl-dev libhiredis-dev libgtest-dev)
packages=("crossbuild-essential-$arch" qemu-user "${libs[@]/%/:$arch}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "cross: run as root to install packages (or install them yourself): ${missing[*]}" >&2
    exit 1
  fi
  echo "cross: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  dpkg --add-architecture "$arch"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || exit 1
fi

build=build-$arch
if [ ! -f "$build/build.ninja" ]; then
  # Warnings are errors here: on a 32-bit target, -Wconversion names every 64-bit size or
  # offset that would be cut to a size_t.
  meson setup "$build" --cross-file "cross/$triplet.ini" -Dwerror=true >/dev/null || exit 1
fi
meson compile -C "$build" >/dev/null || { echo "cross: the $arch build failed" >&2; echo "0 passed, 1 failed"; exit 1; }

rm -f "$build/meson-logs/testlog.json"
# Emulated programs run several times slower: the harness stretches its waits for them
# (PEERDEX_TIMEOUT_FACTOR 6), and meson's own per-test limit gets room too.
meson test -C "$build" --print-errorlogs --timeout-multiplier 3 --suite unit --suite integration --suite fuzz "$@"
rc=$?
python3 -c '
import json, sys
p = f = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r != "SKIP": f += 1
except OSError:
    f = 1
print("%d passed, %d failed" % (p, f))' "$build/meson-logs/testlog.json"
exit $rc
