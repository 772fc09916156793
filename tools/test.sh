#!/usr/bin/env bash
# The README's test command: sets up, builds and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
exec meson test -C "${BUILD_DIR:-build}" --print-errorlogs "$@"
