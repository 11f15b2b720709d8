// The bench harness (bench/run.mjs) must not rot: run its quickest scenario (churn, 1 s) at a tiny
// size on myriad (both backends) and check the figures, the table and the chart come out. Not a
// performance test: no fresh network namespace, no quiet-machine wait, no thresholds.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers';

const hasCc = process.platform === 'linux' && spawnSync('gcc', ['--version']).status === 0;

describe.runIf(hasCc)('bench harness', () => {
  const out = mkdtempSync(join(tmpdir(), 'myriad-bench-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs a scenario on both backends and writes figures, table and chart', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'run.mjs'), 'churn', '--quick', '--impls', 'myriad,myriad-net',
      '--no-netns', '--quiet-wait', '0', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 50_000, env: { ...process.env, MYRIAD_BENCH_BIN: join(out, 'bin') } });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('churn: server CPU per open+close cycle');
    const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.measurements).toHaveLength(2);
    for (const m of report.measurements) {
      expect(m.ok, m.error).toBe(true);
      expect(m.result.completed).toBeGreaterThan(0);
      expect(m.result.failed).toBe(0);
    }
    const s = report.summaries['churn/cycles/conns_per_s'];
    expect(s.impls.myriad.median).toBeGreaterThan(0);
    expect(s.impls['myriad-net'].median).toBeGreaterThan(0);
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain('| churn: cycles per second');
    if (existsSync(join(ROOT, 'node_modules', 'vega'))) expect(readFileSync(join(out, 'chart.svg'), 'utf8')).toMatch(/^<svg/);
  }, 60_000);
});
