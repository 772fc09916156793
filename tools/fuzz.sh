#!/usr/bin/env bash
# Fuzzes peerdex's decoders (tests/fuzz/): builds the libFuzzer programs in build-fuzz (clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, every library instrumented), then runs each
# target for SECONDS (default 30) on a scratch copy of its corpus. An input that crashes,
# leaks, times out or breaks a property is kept in build-fuzz/artifacts/; keep it as a
# regression input in tests/fuzz/corpus/TARGET/ with the fix.
# Usage: tools/fuzz.sh [SECONDS [TARGET...]]. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift $(( $# > 0 ? 1 : 0 ))

bash tools/setup.sh || exit 1
# clang and libFuzzer only here: the normal build and tests need neither.
missing=()
command -v clang++ >/dev/null || missing+=(clang)
compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null || missing+=(libclang-rt-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz: install ${missing[*]} (or run as root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || exit 1
fi

build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzzing=true -Dtests=false -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null || exit 1
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(ls tests/fuzz/corpus)
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz-}" >/dev/null || { echo "fuzz: build failed" >&2; exit 1; }

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
mkdir -p "$build/artifacts"
passed=0
failed=0
for t in "${targets[@]}"; do
  scratch=$(mktemp -d)
  log="$build/artifacts/$t.log"
  # New inputs go to the scratch directory: the corpus in the tree is only read.
  "$build/tests/fuzz/fuzz-$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$scratch" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  rm -rf "$scratch"
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "fuzz $t: ok, ${runs:-?} runs in ${seconds}s (${rate:-?}/s), ${cov:-cov: ?}"
  else
    failed=$((failed + 1))
    echo "fuzz $t: FAILED (exit $rc), see $log and $build/artifacts/$t-*"
    grep -m3 -E 'ERROR|violated|SUMMARY' "$log"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
