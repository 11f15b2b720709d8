// A connectMany() whose onProgress throws on its final call: the throw reaches the process as an
// uncaught exception (as an EventEmitter handler's would), the promise still settles, and the
// call lets go of everything it held: no connect slots counted as pending, nothing keeping the
// process alive. (Found in review: the reactors' "share done" report threw before its
// bookkeeping, and the process never exited.)
import { describe, expect, it } from 'vitest';
import { child } from './helpers';

describe('connectMany: a throwing onProgress', () => {
  it('settles the call, reports the throw once, and releases what the call held', async () => {
    const c = child('connectmany-throwing-progress.js');
    const rejected = await c.message((m) => m.event === 'rejected' || m.event === 'resolved');
    expect(rejected).toMatchObject({ event: 'rejected', code: 'EADDRNOTAVAIL', syscall: 'bind' });
    const uncaught = await c.message((m) => m.event === 'uncaught');
    expect(uncaught.message).toBe('boom from onProgress');
    const idle = await c.message((m) => m.event === 'idle');
    expect(idle).toMatchObject({ pending: 0, connections: 0, uncaught: 1 });
    const code = await Promise.race([c.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    c.kill('SIGKILL');
    expect(code).toBe(0);
  });
});
