// cmake-js (CMakeLists.txt) is the primary build; binding.gyp must name the same sources so a
// node-gyp source install builds the same addon.
import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers';

function cmakeSources(): string[] {
  const text = readFileSync(join(ROOT, 'CMakeLists.txt'), 'utf8');
  return [...text.matchAll(/native\/[\w/]+\.cc/g)].map((m) => m[0]);
}

function gypSources(): string[] {
  const text = readFileSync(join(ROOT, 'binding.gyp'), 'utf8').replace(/#.*$/gm, '');
  const gyp = JSON.parse(text); // this gyp file is kept to JSON syntax (double quotes, no trailing commas)
  const t = gyp.targets[0];
  const all = [...t.sources];
  for (const cond of t.conditions ?? []) for (const branch of cond.slice(1)) all.push(...(branch.sources ?? []));
  return all;
}

describe('build files', () => {
  it('CMakeLists.txt and binding.gyp name the same sources, and they exist', () => {
    const cm = new Set(cmakeSources());
    const gy = new Set(gypSources());
    expect([...gy].sort()).toEqual([...cm].sort());
    for (const f of cm) {
      if (f.includes('/win/') && !existsSync(join(ROOT, f))) continue; // built by the Windows cross build
      expect(existsSync(join(ROOT, f)), f).toBe(true);
    }
  });
});
