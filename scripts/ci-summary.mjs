#!/usr/bin/env node
// Sums the JSON reports in a folder (vitest's --reporter=json, and the native core's
// ctest-summary JSON written by scripts/test-core.sh) into "N passed, N failed".
// Exit status 1 if anything failed or nothing ran at all.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const lastOnly = process.argv.includes('--last-line-only');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
  let r;
  try {
    r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  } catch (err) {
    if (!lastOnly) console.log(`${f}: unreadable report (${err.message})`);
    failed++;
    continue;
  }
  // vitest: numPassedTests/numFailedTests; ours: passed/failed
  const p = r.numPassedTests ?? r.passed ?? 0;
  const fl = (r.numFailedTests ?? r.failed ?? 0) + (r.numRuntimeErrorTestSuites ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0);
  const sk = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0) + (r.skipped ?? 0);
  if (!lastOnly) console.log(`${f}: ${p} passed, ${fl} failed${sk ? `, ${sk} not applicable on this platform` : ''}`);
  passed += p;
  failed += fl;
  skipped += sk;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
