#!/usr/bin/env bash
# Hardening checks (issue 7) beyond `npm test`, each bounded in time, each writing a JSON report
# {"passed":N,"failed":N,...} into the directory given as $1 (read by scripts/ci-summary.mjs):
#   1. libFuzzer (clang-14 from Debian) on the native address parsers, native/fuzz/fuzz_address.cc,
#      for FUZZ_SECONDS (default 60), from the committed corpus native/fuzz/corpus/address.
#   2. The coverage-guided JS fuzzer of the SSE example's request reader,
#      native/fuzz/fuzz_http_request.mjs, for FUZZ_SECONDS, from native/fuzz/corpus/http-request.
#   3. The JS test suite against an ASan+UBSan build of the addon: the sanitizer runtime preloaded
#      (LD_PRELOAD), leak detection on, native/test-support/lsan-suppressions.txt for Node's own
#      allocations; every child process inherits it. See ASAN_TESTS below for what runs and why.
# New corpus entries found in CI go to build-fuzz/ (not into the committed corpus). A crashing
# input is kept in build-fuzz/ as crash-* and printed. Exit status non-zero if anything failed.
#   bash scripts/test-hardening.sh [report-dir]      (FUZZ_SECONDS=10 for a quick run)
#   bash scripts/test-hardening.sh [report-dir] fuzz|asan   only that part
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(mkdir -p "${1:-.ci/out/reports}" && cd "${1:-.ci/out/reports}" && pwd)
ONLY=${2:-all}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
WORK=$ROOT/build-fuzz
mkdir -p "$WORK"
status=0
report() { echo "{\"passed\":$2,\"failed\":$3${4:+,$4}}" >"$OUT/$1.json"; [ "$3" -eq 0 ] || status=1; }

need_pkgs=()
command -v clang++-14 >/dev/null 2>&1 || need_pkgs+=(clang-14)
[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] || ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need_pkgs+=(libclang-rt-14-dev)
if ((${#need_pkgs[@]})) && [ "$(id -u)" = 0 ]; then
  echo "--- apt-get install ${need_pkgs[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null) || echo "apt-get failed"
fi

# ---------------------------------------------------------------- 1. libFuzzer: addresses
if [ "$ONLY" = all ] || [ "$ONLY" = fuzz ]; then
  echo "--- libFuzzer: native/fuzz/fuzz_address.cc (${FUZZ_SECONDS} s)"
  if ! command -v clang++-14 >/dev/null 2>&1; then
    echo "clang++-14 not found (Debian: apt-get install clang-14 libclang-rt-14-dev)"
    report fuzz-address 0 1
  elif ! clang++-14 -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
      -Wall -Wextra -Inative/core native/fuzz/fuzz_address.cc native/core/address.cc -o "$WORK/fuzz_address" 2>"$WORK/fuzz_address.build.log"; then
    echo "build failed:"; cat "$WORK/fuzz_address.build.log"
    report fuzz-address 0 1
  else
    mkdir -p "$WORK/corpus-address"
    (cd "$WORK" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ./fuzz_address -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      corpus-address "$ROOT/native/fuzz/corpus/address" >fuzz_address.log 2>&1)
    rc=$?
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$WORK/fuzz_address.log" | grep -oE '[0-9]+$')
    cov=$(grep -oE 'cov: [0-9]+' "$WORK/fuzz_address.log" | tail -1 | grep -oE '[0-9]+')
    tail -4 "$WORK/fuzz_address.log"
    if [ $rc -eq 0 ] && [ -n "$execs" ]; then
      echo "fuzz_address: $execs executions, $cov coverage edges, no failure"
      report fuzz-address 1 0 "\"execs\":$execs,\"coverage\":${cov:-0}"
    else
      echo "fuzz_address FAILED (exit $rc):"; grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$WORK/fuzz_address.log" | head -20
      report fuzz-address 0 1 "\"execs\":${execs:-0}"
    fi
  fi

  # -------------------------------------------------------------- 2. JS reader: coverage-guided
  echo "--- coverage-guided fuzzer: native/fuzz/fuzz_http_request.mjs (${FUZZ_SECONDS} s)"
  (cd "$WORK" && node "$ROOT/native/fuzz/fuzz_http_request.mjs" --seconds "$FUZZ_SECONDS" \
    --out "$WORK/corpus-http-request" >fuzz_http_request.json 2>fuzz_http_request.log)
  rc=$?
  tail -3 "$WORK/fuzz_http_request.log"
  line=$(tail -1 "$WORK/fuzz_http_request.json" 2>/dev/null)
  execs=$(echo "$line" | grep -oE '"execs":[0-9]+' | grep -oE '[0-9]+')
  echo "fuzz_http_request: $line"
  if [ $rc -eq 0 ] && [ -n "$execs" ]; then report fuzz-http-request 1 0 "\"execs\":$execs"; else report fuzz-http-request 0 1 "\"execs\":${execs:-0}"; fi
fi

# ---------------------------------------------------------------- 3. JS suite on an ASan+UBSan addon
# What runs: every test file that exercises the addon (the default), except
#   - doctor-*, monitor-*, metrics-*, socket-options-*, example-comet-sse: they run system tools
#     (sysctl, ss, nstat, curl) that inherit LD_PRELOAD and would be leak-checked themselves (ss
#     leaks a few bytes by design); their addon paths are the ones the other files take;
#   - package-*, build-sources-*, bench-harness, net-backend-*: packaging, the C bench and the
#     node:net backend: no addon code of note, the plain run covers them;
#   - hammer-multiprocess runs, for MYRIAD_HAMMER_SECONDS=30 (ASan makes it ~2x slower; its RSS
#     bound is skipped under ASan, whose allocator quarantines freed memory: LeakSanitizer checks
#     each of its processes' exit instead).
# That keeps this step within ~10 minutes on 2 cores. ASAN_TESTS overrides the file list.
if [ "$ONLY" = all ] || [ "$ONLY" = asan ]; then
  echo "--- JS tests against the ASan+UBSan addon"
  libasan=$(readlink -f "$(gcc -print-file-name=libasan.so)")
  if [ ! -e "$libasan" ]; then
    echo "no libasan from gcc"; report vitest-asan 0 1
  elif ! MYRIAD_SANITIZE=address MYRIAD_BUILD_DIR=build-asan/build node scripts/build.mjs --native >"$WORK/asan-build.log" 2>&1; then
    echo "ASan addon build failed:"; tail -30 "$WORK/asan-build.log"; report vitest-asan 0 1
  else
    [ -e dist/index.js ] || node scripts/build.mjs --ts
    if [ -z "${ASAN_TESTS:-}" ]; then
      ASAN_TESTS=$(ls test/*.test.ts | grep -vE 'test/(doctor-|monitor-|metrics-|socket-options-|example-comet-sse|package-|build-sources|bench-harness|net-backend-)')
    fi
    # MYRIAD_PREBUILD: node-gyp-build loads <dir>/build/Release/*.node, the sanitized addon, in
    # this process and every child (fixtures, workers), all of which get the runtime preloaded.
    # halt_on_error: a report fails the test instead of scrolling by; detect_leaks at each exit.
    MYRIAD_PREBUILD=$ROOT/build-asan LD_PRELOAD=$libasan MYRIAD_BACKEND=native MYRIAD_HAMMER_SECONDS=${MYRIAD_HAMMER_SECONDS:-30} \
    ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0 \
    LSAN_OPTIONS=suppressions=$ROOT/native/test-support/lsan-suppressions.txt:print_suppressions=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      timeout 1200 node node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
      --outputFile="$OUT/vitest-asan.json" $ASAN_TESTS 2>&1 | tee "$WORK/asan-tests.log" | grep -vE '^ +✓ ' | tail -60
    rc=${PIPESTATUS[0]}
    # Sanitizer reports printed by node processes (vitest's workers, whose exit status vitest does
    # not check; fixture processes fail their own tests through their exit status). A report
    # whose frames are all in another program (a tool a test ran, e.g. bash, which never frees
    # at exit) is not ours.
    node -e '
      const log = require("fs").readFileSync(process.argv[1], "utf8");
      const reports = log.split(/\n(?==+\n==\d+==ERROR: |\S*runtime error: )/).filter((r) => /==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: /.test(r));
      const ours = reports.filter((r) => /runtime error: |ERROR: AddressSanitizer|\/node\b|myriad\.node|native\/(core|addon)\//.test(r));
      for (const r of ours.slice(0, 5)) console.log(r.slice(0, 3000));
      console.log(`sanitizer reports: ${reports.length}, from node or myriad: ${ours.length}`);
      process.exit(ours.length > 0 ? 1 : 0);
    ' "$WORK/asan-tests.log"
    if [ $? -ne 0 ]; then
      echo '{"passed":0,"failed":1}' >"$OUT/asan-reports.json"
      status=1
    else
      echo '{"passed":1,"failed":0}' >"$OUT/asan-reports.json"
    fi
    [ -s "$OUT/vitest-asan.json" ] || report vitest-asan 0 1
    [ "$rc" -eq 0 ] || status=1
  fi
fi
exit $status
