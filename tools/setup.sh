#!/usr/bin/env bash
# Installs the Debian packages peerdex needs to build, run and test, when missing.
# Idempotent: does nothing (not even apt-get update) when everything is there.
set -euo pipefail

packages=(
  g++ pkg-config meson ninja-build python3
  libuv1-dev          # the event loop of every daemon
  libtirpc-dev        # ONC-RPC/XDR of the operation log
  libmicrohttpd-dev   # the HTTP server of peerdex-clock, and the daemons' --http (optional: -Dhttp=disabled)
  libcurl4-openssl-dev  # the client's requests to peerdex-clock
  libedit-dev         # line editing in the shell (optional: -Dline_editing=disabled)
  libsqlite3-dev      # the tracker's durable state, --state (optional: -Dstate=disabled)
  libsodium-dev       # the tracker's --auth key, hashes of user keys (optional: -Dkeys=disabled)
  libssl-dev          # content ids: SHA-256 trees of shared files (optional: -Dcontent_ids=disabled)
  libhiredis-dev      # the shared store on Redis, --store redis://… (optional: -Dshared_store=disabled)
  redis-server        # tests and tools/run.sh --shared start one of their own, on loopback
  sqlite3             # tests read and damage state files with it, as an operator would
  strace              # tests check that a daemon handles its signals before it says it is up
  rpcsvc-proto        # rpcgen, run at build time on rpc/oplog.x
  rpcbind             # the course's way to find the log server (tests of LOG_RPC_IP)
  libgtest-dev        # unit tests
  mandoc              # man page lint (test suite 'man')
  prometheus          # tests: promtool checks every /metrics, a real prometheus scrapes the tracker
  chromium            # tests: a real headless browser loads the tracker's status page
  tzdata              # time zones the clock and timestamp tests run under
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root to install packages (or install them yourself): ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
