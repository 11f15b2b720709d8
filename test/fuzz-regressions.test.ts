// Failures the property-based tests (test/fuzz-public-api.test.ts) found, pinned down.
import { describe, expect, it } from 'vitest';
import { child } from './helpers';

describe('fuzz regressions', () => {
  // connectMany(target, count) accepts count up to 1e8, then creates every attempt (a promise,
  // closures, an Attempt record: ~500 bytes) at once, synchronously: 1e6 blocks the thread ~10 s
  // and takes ~500 MiB; 1e8 ends in V8's "heap out of memory" abort. maxPending already bounds
  // what is in flight, so attempts can be created as earlier ones finish: O(maxPending) memory.
  // Run in a child with a 256 MiB heap: the unfixed code would abort a test worker.
  it('connectMany() with a huge valid count neither blocks nor exhausts memory', async () => {
    const c = child('fault-connectmany-huge.js', ['100000000'], { env: { NODE_OPTIONS: '--max-old-space-size=256' } });
    const r = await c.message((m) => m.event === 'result', 60_000).catch((err) => ({ error: String(err.message).slice(0, 400) }));
    c.kill('SIGKILL');
    expect(r).toMatchObject({ outcome: 'ABORT_ERR' });
    expect((r as any).blockedMs).toBeLessThan(500);
    expect((r as any).heapMiB).toBeLessThan(64);
  }, 90_000);
});
