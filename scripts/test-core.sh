#!/usr/bin/env bash
# The native core's own tests (native/core/test/), built with plain cmake (no Node) three ways:
# plain, AddressSanitizer+UndefinedBehaviorSanitizer, ThreadSanitizer. Writes one JSON summary
# per configuration into $1 (read by scripts/ci-summary.mjs) and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.ci/out/reports}
mkdir -p "$OUT"
status=0
for config in plain address thread; do
  dir=build-core-$config
  san=""
  [ "$config" != plain ] && san=$config
  echo "--- core tests: $config"
  if ! cmake -S . -B "$dir" -DMYRIAD_CORE_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMYRIAD_SANITIZE="$san" >"$dir.log" 2>&1 ||
     ! cmake --build "$dir" -j2 >>"$dir.log" 2>&1; then
    echo "build failed:"; tail -30 "$dir.log"
    echo "{\"passed\":0,\"failed\":1}" >"$OUT/core-$config.json"
    status=1
    continue
  fi
  if grep -q "warning:" "$dir.log"; then echo "compiler warnings:"; grep "warning:" "$dir.log"; status=1; fi
  # halt_on_error: a sanitizer report fails the test instead of scrolling by.
  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$dir" --output-on-failure --timeout 300 >"$dir.ctest.log" 2>&1
  rc=$?
  tail -25 "$dir.ctest.log"
  total=$(grep -oE 'out of [0-9]+' "$dir.ctest.log" | tail -1 | grep -oE '[0-9]+')
  failed=$(grep -oE '[0-9]+ tests failed' "$dir.ctest.log" | tail -1 | grep -oE '^[0-9]+')
  total=${total:-0}; failed=${failed:-0}
  [ "$total" -gt 0 ] || { failed=1; }
  echo "{\"passed\":$((total - failed)),\"failed\":$failed}" >"$OUT/core-$config.json"
  [ $rc -eq 0 ] && [ "$failed" -eq 0 ] || status=1
done
exit $status
