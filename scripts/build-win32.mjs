#!/usr/bin/env node
// build-win32.mjs - cross-builds the Windows addon on Linux with mingw-w64 (`npm run build:win32`).
//
//   node scripts/build-win32.mjs [--debug] [--jobs N]
//     -> prebuilds/win32-x64/myriad.node, which node-gyp-build picks on win32-x64.
//
// The source list is read from CMakeLists.txt (MYRIAD_CORE_SOURCES, its WIN32 branch and
// MYRIAD_ADDON_SOURCES), so this build and the CMake/gyp builds cannot drift apart. Node-API
// symbols resolve against node.exe through an import library generated from node-api-headers'
// def/node_api.def with dlltool; libgcc, libstdc++ and winpthread are linked statically so the
// .node needs no DLL beyond node.exe and the system's. Incremental: an object is rebuilt when its
// source or any header under native/ is newer.
//
// Needs the Debian packages g++-mingw-w64-x86-64 (the *-posix compiler: node-addon-api and the
// core need std::mutex/std::thread) and binutils-mingw-w64-x86-64 (scripts/wine-env.sh installs both).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, renameSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const argv = process.argv.slice(2);
const debug = argv.includes('--debug');
const jobsArg = argv.indexOf('--jobs');
const jobs = jobsArg >= 0 ? Math.max(1, Number(argv[jobsArg + 1]) || 1) : availableParallelism();

const TRIPLE = 'x86_64-w64-mingw32';
const CXX = process.env.MYRIAD_MINGW_CXX || `${TRIPLE}-g++-posix`;
const DLLTOOL = process.env.MYRIAD_MINGW_DLLTOOL || `${TRIPLE}-dlltool`;
const OBJDUMP = `${TRIPLE}-objdump`;
const buildDir = join(root, 'build-win32');
const outDir = join(root, 'prebuilds', 'win32-x64');
const out = join(outDir, 'myriad.node');

function fail(msg) {
  console.error(`build-win32: ${msg}`);
  process.exit(1);
}

function need(tool, pkg) {
  const r = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) fail(`${tool} not found: apt-get install ${pkg} (or source scripts/wine-env.sh)`);
}

// ---- sources, from CMakeLists.txt ----
function cmakeList(text, name) {
  // set(NAME a b c) and list(APPEND NAME ...) inside if(WIN32) ... else() ... endif()
  const set = new RegExp(`set\\(\\s*${name}\\b([^)]*)\\)`).exec(text);
  if (!set) fail(`CMakeLists.txt has no set(${name} ...)`);
  const files = set[1].split(/\s+/).filter(Boolean);
  const win = /if\s*\(\s*WIN32\s*\)([\s\S]*?)(?:else\s*\(\s*\)|endif\s*\(\s*\))/g;
  for (let m; (m = win.exec(text)) !== null;) {
    const app = new RegExp(`list\\(\\s*APPEND\\s+${name}\\b([^)]*)\\)`).exec(m[1]);
    if (app) files.push(...app[1].split(/\s+/).filter(Boolean));
  }
  return files;
}
const cmake = readFileSync(join(root, 'CMakeLists.txt'), 'utf8');
const coreSources = cmakeList(cmake, 'MYRIAD_CORE_SOURCES');
const addonSources = cmakeList(cmake, 'MYRIAD_ADDON_SOURCES');
const sources = [...coreSources, ...addonSources];
for (const s of sources) if (!existsSync(join(root, s))) fail(`source listed in CMakeLists.txt is missing: ${s}`);
if (!coreSources.some((s) => s.includes('/win/'))) fail('CMakeLists.txt lists no Windows backend under if(WIN32)');

need(CXX, 'g++-mingw-w64-x86-64');
need(DLLTOOL, 'binutils-mingw-w64-x86-64');

// ---- flags ----
const napiInclude = require('node-api-headers').include_dir;
const addonApiInclude = join(root, require('node-addon-api').include_dir.replace(/^"|"$/g, ''));
const nodeApiDef = require('node-api-headers').def_paths.node_api_def;
const warnings = ['-Wall', '-Wextra', '-Wshadow', '-Wno-unused-parameter'];
const common = [
  '-std=c++17', debug ? '-O0' : '-O2', '-g0', ...warnings,
  '-D_WIN32_WINNT=0x0A00', '-DWINVER=0x0A00', '-DNOMINMAX', '-DWIN32_LEAN_AND_MEAN',
  '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED',
  '-I', join(root, 'native', 'core'),
  // System headers: their warnings are not ours.
  '-isystem', napiInclude, '-isystem', addonApiInclude,
];
if (process.env.MYRIAD_WERROR === '1') common.push('-Werror');

// ---- incremental compile ----
function newestHeader(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestHeader(p));
    else if (e.name.endsWith('.h')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const headersTime = Math.max(newestHeader(join(root, 'native')), statSync(fileURLToPath(import.meta.url)).mtimeMs);

function objectFor(src) {
  return join(buildDir, src.replace(/[\\/]/g, '_').replace(/\.cc$/, '.o'));
}

function compile(src) {
  const obj = objectFor(src);
  if (existsSync(obj)) {
    const t = statSync(obj).mtimeMs;
    if (t > statSync(join(root, src)).mtimeMs && t > headersTime) return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const args = [...common, '-c', join(root, src), '-o', obj];
    const p = spawn(CXX, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
    console.log(`  CXX ${src}`);
    p.on('close', (code) => resolve(code === 0));
    p.on('error', () => resolve(false));
  });
}

async function compileAll() {
  const queue = [...sources];
  let ok = true;
  const worker = async () => {
    while (queue.length > 0) if (!(await compile(queue.shift()))) ok = false;
  };
  await Promise.all(Array.from({ length: Math.min(jobs, sources.length) }, worker));
  return ok;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error || r.status !== 0) fail(`${cmd} ${args.join(' ')} failed`);
}

mkdirSync(buildDir, { recursive: true });
mkdirSync(outDir, { recursive: true });
console.log(`build-win32: ${sources.length} sources with ${CXX}`);
if (!(await compileAll())) fail('compilation failed');

// Import library for node.exe's Node-API exports.
const implib = join(buildDir, 'libnode.a');
if (!existsSync(implib) || statSync(implib).mtimeMs < statSync(nodeApiDef).mtimeMs)
  run(DLLTOOL, ['-d', nodeApiDef, '-l', implib, '-D', 'node.exe']);

const tmp = `${out}.tmp`;
run(CXX, [
  '-shared', '-static', '-static-libgcc', '-static-libstdc++', '-s',
  '-o', tmp, ...sources.map(objectFor), implib,
  '-lws2_32', '-lmswsock',
  '-Wl,--no-undefined', '-Wl,--enable-auto-image-base',
]);
renameSync(tmp, out);

// The result must load with nothing but node.exe and system DLLs beside it.
const dump = spawnSync(OBJDUMP, ['-p', out], { encoding: 'utf8' });
if (dump.status === 0) {
  const dlls = [...dump.stdout.matchAll(/DLL Name:\s*(\S+)/g)].map((m) => m[1]);
  const system = /^(node\.exe|kernel32\.dll|msvcrt\.dll|ws2_32\.dll|mswsock\.dll|user32\.dll|advapi32\.dll|api-ms-win-.*\.dll)$/i;
  const extra = dlls.filter((d) => !system.test(d));
  if (extra.length > 0) fail(`${basename(out)} imports non-system DLLs: ${extra.join(', ')}`);
  console.log(`build-win32: ${out} (imports ${dlls.join(', ')})`);
} else {
  console.log(`build-win32: ${out}`);
}
