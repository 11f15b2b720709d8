// openFileLimit() / raiseOpenFileLimit() through the native binding: checked against what the
// kernel reports in /proc/<pid>/limits, in this process and in a child started with a low soft limit.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProcLimits } from '../lib/doctor-linux';
import { openFileLimit, raiseOpenFileLimit } from '../lib/limits';
import { compileLib, type CompiledLib } from './doctor-build';

const kernelLimits = () => parseProcLimits(readFileSync('/proc/self/limits', 'utf8'))!;

// RLIMIT_NOFILE exists on Linux (and other POSIX systems); on Windows both functions return null.
describe.runIf(process.platform === 'linux')('open-file limit', () => {
  let lib: CompiledLib;
  beforeAll(() => {
    lib = compileLib(['limits.ts']);
  }, 60_000);
  afterAll(() => lib?.remove());

  it('reads the limits the kernel reports', () => {
    expect(openFileLimit()).toEqual(kernelLimits());
  });

  it('lifts the soft limit to the hard one in this process', () => {
    const raised = raiseOpenFileLimit()!;
    expect(raised.soft).toBe(raised.hard);
    expect(raised.before).toBeLessThanOrEqual(raised.soft);
    expect(kernelLimits()).toEqual({ soft: raised.hard, hard: raised.hard });
  });

  // Node itself lifts the soft limit while starting (PlatformInit in src/node.cc), so a child
  // started under `prlimit --nofile=1024:hard` is already at hard when JavaScript runs. The limit is
  // lowered from outside once the child runs, the situation raiseOpenFileLimit() is for (an
  // embedder that does not raise it, or a limit lowered later).
  it('takes a running process whose soft limit was lowered to 1024 up to its hard limit', async () => {
    const { hard } = kernelLimits();
    const probe = [
      `const limits = require(${JSON.stringify(join(lib.dir, 'limits.js'))});`,
      "process.stdout.write('ready\\n');",
      "process.stdin.once('data', () => {",
      '  const before = limits.openFileLimit();',
      '  const raised = limits.raiseOpenFileLimit();',
      "  const kernel = /Max open files\\s+(\\d+)\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/limits', 'utf8'));",
      '  console.log(JSON.stringify({ before, raised, kernel: [Number(kernel[1]), Number(kernel[2])] }));',
      '  process.exit(0);',
      '});',
    ].join('\n');
    const child = spawn(process.execPath, ['-e', probe], { stdio: ['pipe', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.setEncoding('utf8');
    await new Promise<void>((resolve) => child.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output === 'ready\n') resolve();
    }));
    const lowered = spawnSync('prlimit', ['--pid', String(child.pid), `--nofile=1024:${hard}`], { encoding: 'utf8' });
    expect(lowered.status, lowered.stderr).toBe(0);
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    child.stdin.end('go\n');
    expect(await exited).toBe(0);
    expect(JSON.parse(output.slice('ready\n'.length))).toEqual({
      before: { soft: 1024, hard },
      raised: { soft: hard, hard, before: 1024 },
      kernel: [hard, hard],
    });
  });
});
