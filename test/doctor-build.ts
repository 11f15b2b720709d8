// Compiles lib/ entry points for tests that must run real processes (the CLI, a child that loads
// the native binding): into a fresh build-vitest-* directory at the repository root (gitignored),
// so compiled files find node_modules and build/Release exactly as dist/ does, with the project's
// own tsconfig settings.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export interface CompiledLib {
  dir: string;
  remove(): void;
}

export function compileLib(entries: string[]): CompiledLib {
  const dir = mkdtempSync(join(repoRoot, 'build-vitest-'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: { outDir: '.', rootDir: '../lib', declaration: false },
      include: [],
      files: entries.map((entry) => `../lib/${entry}`),
    }),
  );
  const tsc = spawnSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], {
    encoding: 'utf8',
  });
  if (tsc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
