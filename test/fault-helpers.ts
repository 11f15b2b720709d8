// Helpers for the fault tests (test/fault-*.test.ts): the LD_PRELOAD fault-injection shim
// (native/test-support/fault_inject.c), built on demand, and a child's stats on request.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, type Child } from './helpers';

/**
 * The suite also runs on the node:net backend (MYRIAD_BACKEND=net). The shim's faults are the
 * native reactor's syscalls (accept4, sendmsg, recv); libuv reads and writes with read/writev
 * and answers EMFILE with its own reserve-descriptor trick, so those tests are native-only.
 */
export const onNativeBackend = process.env.MYRIAD_BACKEND !== 'net';

/** Builds (if needed) and returns the path of fault_inject.so. */
export function faultShim(): string {
  const src = join(ROOT, 'native', 'test-support', 'fault_inject.c');
  const dir = join(ROOT, 'build-fault');
  const out = join(dir, 'fault_inject.so');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dir, { recursive: true });
    execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-o', out, src, '-ldl'], { stdio: 'inherit' });
  }
  return out;
}

/**
 * LD_PRELOAD for a child with the shim: after whatever is preloaded already (the ASan runtime,
 * in scripts/test-hardening.sh's run, must stay first).
 */
export function preload(): string {
  return [process.env.LD_PRELOAD, faultShim()].filter((x) => x !== undefined && x !== '').join(' ');
}

/** Asks a fixture for {cmd:'stats'} and waits for the answer that satisfies pred. */
export async function statsOf(c: Child, pred: (s: any) => boolean = () => true, timeoutMs = 10_000): Promise<any> {
  const end = Date.now() + timeoutMs;
  let last: any;
  for (;;) {
    c.send({ cmd: 'stats' });
    const seen = c.messages.length;
    last = await c.message((m) => m.event === 'stats' && c.messages.indexOf(m) >= seen, 5000);
    if (pred(last)) return last;
    if (Date.now() > end) throw new Error(`stats never matched; last: ${JSON.stringify(last)}\n${c.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
