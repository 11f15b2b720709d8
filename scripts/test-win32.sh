#!/usr/bin/env bash
# test-win32.sh - runs the test suite against the Windows build, under Wine and the official
# Windows node.exe (scripts/wine-env.sh sets both up), and prints the counts.
#
#   bash scripts/test-win32.sh                  build (scripts/build-win32.mjs), then every test file
#   bash scripts/test-win32.sh out.json         the same, vitest's JSON report written to out.json
#   bash scripts/test-win32.sh test/x.test.ts   only those files (any vitest arguments pass through)
#   bash scripts/test-win32.sh --smoke [N]      the raw-binding smoke test (scripts/win32-smoke.cjs)
#   MYRIAD_WIN32_NO_BUILD=1 ...                 skip the build step
#
# The Linux node_modules serve both platforms; the Windows builds of vite's native parts
# (esbuild's executable, rollup's addon) are added to it from the npm registry, at the versions
# package-lock.json pins. node-gyp-build is told to take prebuilds/win32-x64 (PREBUILDS_ONLY), not a
# Linux build/Release that may sit in the same tree. Results: build-win32/vitest-win32.json (vitest's
# JSON report) and build-win32/vitest-win32.log (the console). Exits non-zero when a test failed.
#
# What a pass here means: Winsock behaviour as Wine implements it, over Linux sockets. Wine accepts
# and ignores SO_PORT_SCALABILITY, SO_REUSE_UNICASTPORT and SO_UPDATE_*_CONTEXT, and its timings
# say nothing about Windows performance.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# shellcheck source=wine-env.sh
source "$root/scripts/wine-env.sh" || exit 1
export PREBUILDS_ONLY=1
export NO_COLOR=1 FORCE_COLOR=0
# Lets a test tell Wine (every socket call through wineserver: slow) from a real Windows.
export MYRIAD_UNDER_WINE=1
out_dir="$root/build-win32"
mkdir -p "$out_dir"

if [ "${MYRIAD_WIN32_NO_BUILD:-0}" != 1 ]; then
  node scripts/build-win32.mjs || exit 1
fi
[ -f prebuilds/win32-x64/myriad.node ] || { echo "test-win32: prebuilds/win32-x64/myriad.node is missing" >&2; exit 1; }

# Runs node.exe with its output in a file (console output to some descriptors fails under Wine),
# echoing that file afterwards. Usage: run_wine LOG node-args...
run_wine() {
  local log="$1"
  shift
  wine "$NODE_EXE" "$@" >"$log" 2>&1 </dev/null
  local rc=$?
  tr -d '\r' <"$log"
  return $rc
}

if [ "${1:-}" = --smoke ]; then
  shift
  run_wine "$out_dir/smoke-win32.log" scripts/win32-smoke.cjs "$@"
  exit $?
fi

# The Windows builds of vite's native dependencies, extracted next to the Linux ones.
ensure_pkg() {
  local name="$1" dir="$root/node_modules/$1"
  local version
  version="$(node -e "const l=require('./package-lock.json').packages;const p=l['node_modules/$name'];process.stdout.write(p?p.version:'')")"
  [ -n "$version" ] || { echo "test-win32: $name is not in package-lock.json" >&2; return 1; }
  if [ -f "$dir/package.json" ] && [ "$(node -p "require('$dir/package.json').version")" = "$version" ]; then
    return 0
  fi
  local cache="$MYRIAD_WINE_CACHE/npm/$name@$version"
  if [ ! -f "$cache/package/package.json" ]; then
    echo "test-win32: fetching $name@$version (npm pack)" >&2
    rm -rf "$cache" && mkdir -p "$cache" || return 1
    (cd "$cache" && npm pack --silent "$name@$version" >/dev/null && tar xzf ./*.tgz) ||
      { echo "test-win32: npm pack $name@$version failed" >&2; return 1; }
  fi
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && cp -r "$cache/package" "$dir"
}
ensure_pkg @esbuild/win32-x64 || exit 1
ensure_pkg @rollup/rollup-win32-x64-msvc || exit 1

# dist/ (children and fixtures load the built package, as users do).
if [ -d lib ] && [ -f node_modules/typescript/bin/tsc ]; then
  node scripts/build.mjs --ts || exit 1
fi

json="$out_dir/vitest-win32.json"
if [[ "${1:-}" == *.json ]]; then
  json="$(cd "$(dirname "$1")" 2>/dev/null && pwd)/$(basename "$1")" || { echo "test-win32: no folder for $1" >&2; exit 1; }
  shift
fi
log="${json%.json}.log"
rm -f "$json"
# Wine maps / to drive Z:, so node.exe takes the Linux paths as they are.
run_wine "$log" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json \
  --outputFile.json="$json" "$@"
rc=$?

if [ ! -f "$json" ]; then
  echo "test-win32: vitest wrote no report (exit $rc); see $log" >&2
  exit $(( rc == 0 ? 1 : rc ))
fi
node - "$json" <<'EOF'
const r = require(process.argv[2]);
const files = r.testResults || [];
const failed = [];
for (const f of files) {
  const rel = f.name.replace(/\\/g, '/').replace(/^.*?\/test\//, 'test/');
  const bad = (f.assertionResults || []).filter((a) => a.status === 'failed');
  if (f.status === 'failed' && bad.length === 0) failed.push(`${rel}: ${String(f.message || 'failed to run').split('\n')[0]}`);
  for (const a of bad) failed.push(`${rel} > ${a.fullName}: ${String((a.failureMessages || [''])[0]).split('\n')[0]}`);
}
if (failed.length) console.log(`\nwin32 failures:\n  ${failed.join('\n  ')}`);
const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
console.log(`\nwin32 (Wine, node ${process.env.MYRIAD_NODE_WIN_VERSION}): ${files.length} files`);
console.log(`win32: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
EOF
if [ "$rc" = 0 ]; then
  node -e "process.exit(require('$json').numFailedTests > 0 || require('$json').success === false ? 1 : 0)" || rc=1
fi
exit "$rc"
