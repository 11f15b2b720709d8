// The hammer, short: 3 processes, each a server and a dialer to the others, thousands of
// connections through random (seeded) connect, write, broadcast, group join/leave, pause, resume,
// half-close, end, destroy, timeouts and server close, every received byte checked; then
// counters, descriptors and memory checked after everything closed. See bench/hammer.mjs (the
// long mode: node bench/hammer.mjs --minutes N) and test/fixtures/hammer-node.js (the protocol).
//   MYRIAD_HAMMER_SECONDS (default 60), MYRIAD_HAMMER_SEED (default: random, printed) replay it.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DIST, ROOT } from './helpers';

// 60 s on the native backend; the node:net backend's run of the suite gets a shorter one.
const seconds = Number(process.env.MYRIAD_HAMMER_SECONDS ?? (process.env.MYRIAD_BACKEND === 'net' ? 20 : 60));
const seed = process.env.MYRIAD_HAMMER_SEED !== undefined ? Number(process.env.MYRIAD_HAMMER_SEED) : Date.now() % 1_000_000_000;

// Linux: the fixture reads /proc/self/fd and binds 127.0.x.y source addresses (loopback /8).
describe.runIf(process.platform === 'linux')('hammer (3 processes)', () => {
  it(`keeps every byte, balances its counters, leaks nothing (seed ${seed})`, async () => {
    // Loaded here, not with a static import: the file is Linux-only, and under Wine vite's
    // Windows resolver failed to load the .mjs at collection time, failing the whole file.
    const { runHammer } = await import(pathToFileURL(join(ROOT, 'bench', 'hammer.mjs')).href);
    const r = await runHammer({ processes: 3, perPeer: 250, seconds, seed, dist: DIST, log: (l: string) => console.log(l) });
    expect(r.failures, `hammer failures (seed ${seed}):\n${r.failures.join('\n')}`).toEqual([]);
    // It did real work: thousands of connections, hundreds of thousands of frames checked.
    expect(r.totals.connectionsOpened).toBeGreaterThan(3000);
    expect(r.totals.maxLive).toBeGreaterThan(1000);
    expect(r.totals.framesChecked).toBeGreaterThan(10_000);
  }, (seconds + 240) * 1000);
});
