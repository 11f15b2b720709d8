#!/usr/bin/env node
// `npm test`: every test.
//   1. the behaviour tests (vitest) on the native backend
//   2. the same tests on the node:net backend (MYRIAD_BACKEND=net), where lib/net-binding exists
//   3. the native core's own C++ tests: plain, ASan+UBSan, TSan (scripts/test-core.sh; Linux)
// Options: --report-dir DIR  write each runner's JSON report there (CI sums them);
//          --quick           skip 2 and 3;  any other argument is passed to vitest (file filters).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
let reportDir;
let quick = false;
const passthrough = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--report-dir') reportDir = resolve(argv[++i]);
  else if (argv[i] === '--quick') quick = true;
  else passthrough.push(argv[i]);
}
if (reportDir) mkdirSync(reportDir, { recursive: true });
const filtered = passthrough.some((a) => !a.startsWith('-'));
const failures = [];

function vitest(name, env) {
  console.log(`\n=== vitest: ${name}`);
  const args = [join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...passthrough];
  if (reportDir) args.push('--reporter=default', '--reporter=json', `--outputFile=${join(reportDir, `vitest-${name}.json`)}`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) failures.push(`vitest (${name})`);
}

vitest('native', { MYRIAD_BACKEND: 'native' });
if (!quick && !filtered && existsSync(join(root, 'lib', 'net-binding.ts'))) vitest('net', { MYRIAD_BACKEND: 'net' });
if (!quick && !filtered && process.platform === 'linux') {
  console.log('\n=== native core tests (plain, ASan+UBSan, TSan)');
  const r = spawnSync('bash', [join(root, 'scripts/test-core.sh'), reportDir ?? join(root, 'build-core-reports')], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) failures.push('native core tests');
}
if (failures.length) {
  console.error(`\nfailed: ${failures.join(', ')}`);
  process.exit(1);
}
