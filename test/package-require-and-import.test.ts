// The published entry points: require('myriad') and import 'myriad' both work (one module
// instance), and type declarations ship with the package.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers';

const API = ['listen', 'Dialer', 'configure', 'stats', 'Server', 'Connection'];

describe('package entry points', () => {
  it('require("myriad") exposes the API', () => {
    const out = execFileSync(process.execPath, ['-e', `const m = require('myriad'); console.log(JSON.stringify(${JSON.stringify(API)}.map((k) => typeof m[k])))`], { cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(API.map(() => 'function'));
  });

  it('import "myriad" exposes the same API and the same instance', () => {
    const code = `import { listen, stats } from 'myriad'; import { createRequire } from 'node:module';
      const cjs = createRequire(import.meta.url)('myriad');
      console.log(JSON.stringify([typeof listen, listen === cjs.listen, stats === cjs.stats]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['function', true, true]);
  });

  it('ships type declarations for every export', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const types = join(ROOT, pkg.exports['.'].types);
    expect(existsSync(types)).toBe(true);
    const dts = readFileSync(types, 'utf8');
    for (const name of API) expect(dts).toContain(name);
  });
});
