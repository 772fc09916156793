#!/usr/bin/env bash
# Sets up (if needed) and builds peerdex in BUILD_DIR (default: build). Extra
# arguments go to `meson setup` the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
build=${BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || meson setup "$build" "$@" >/dev/null
meson compile -C "$build" >/dev/null
