#!/usr/bin/env bash
# Builds the Debian packages from the tree and checks them the way an operator uses them:
#   1. dpkg-buildpackage -us -uc -b in a scratch copy of the tree (the packages land in
#      DEB_DIR, default build-deb/);
#   2. lintian: no error;
#   3. apt-get install ./peerdex_*.deb ./peerdex-client_*.deb on THIS machine (root; CI's
#      machine, or a scratch one), then tests/package/test_package.py: the files, the units
#      (systemd-analyze verify and security), the daemons run as their units run them;
#   4. apt-get purge: nothing of the packages is left.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "package: unknown argument '$1'" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "package: run as root: it installs the packages it builds, then removes them" >&2
  exit 1
fi
bash tools/setup.sh || exit 1
need=()
for p in debhelper dpkg-dev fakeroot lintian logrotate; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "package: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 1
fi

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

out=$(realpath -m "${DEB_DIR:-build-deb}")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/peerdex" "$out"
# The tree as it is (committed or not), without build directories.
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z -co --exclude-standard | tar --null -cf - -T - | tar -xf - -C "$scratch/peerdex"
else
  tar --exclude='./build*' --exclude=./run -cf - . | tar -xf - -C "$scratch/peerdex"
fi
if (cd "$scratch/peerdex" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
  ok "dpkg-buildpackage -us -uc -b"
else
  tail -30 "$out/build.log"
  bad "dpkg-buildpackage -us -uc -b (log: $out/build.log)"
  finish
fi
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$scratch"/*.deb "$scratch"/*.changes "$scratch"/*.buildinfo "$out"/
changes=$(ls "$out"/peerdex_*.changes)

# Errors fail; warnings and notes are printed (docs/DESIGN.md explains the ones we keep).
if lintian --fail-on error --display-info "$changes" 2>&1 | grep -v "^running with root privileges"; [ "${PIPESTATUS[0]}" -eq 0 ]; then
  ok "lintian: no error"
else
  bad "lintian: errors above"
fi

debs=("$out"/peerdex_*.deb "$out"/peerdex-client_*.deb)
if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "${debs[@]}" >"$out/install.log" 2>&1; then
  ok "apt-get install ${debs[*]##*/}"
  log=$(python3 tests/package/test_package.py -v 2>&1)
  echo "$log"
  ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' <<<"$log")
  bad_tests=$(grep -cE '^(FAIL|ERROR): ' <<<"$log")
  if [ -z "$ran" ]; then
    bad "tests/package/test_package.py did not run"
  else
    passed=$((passed + ran - bad_tests))
    failed=$((failed + bad_tests))
  fi
  if DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq peerdex peerdex-client >"$out/purge.log" 2>&1 &&
     ! dpkg-query -W -f='${Status}\n' peerdex peerdex-client 2>/dev/null | grep -q installed &&
     [ ! -e /etc/default/peerdex-tracker ] && [ ! -e /usr/sbin/peerdex-tracker ] &&
     [ ! -e /etc/systemd/system/multi-user.target.wants/peerdex-tracker.service ]; then
    ok "apt-get purge leaves nothing of the packages"
  else
    bad "apt-get purge (log: $out/purge.log)"
  fi
else
  cat "$out/install.log"
  bad "apt-get install"
fi
finish
