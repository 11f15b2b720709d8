// acceptBatch caps accepts per reactor wake-up: with acceptBatch 1 a connect storm can never be
// accepted faster than one per wake-up; with the default, a storm is taken in batches.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, stats } from '../lib/index';
import { child, waitUntil } from './helpers';

function wakeups(): number {
  return stats().reactors.reduce((n, r) => n + r.wakeups, 0);
}

describe('acceptBatch', () => {
  it('acceptBatch 1: at most one accept per wake-up', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], acceptBatch: 1 });
    const w0 = wakeups();
    const a0 = stats().connectionsAccepted;
    // The storm comes from another process, so our reactors only accept.
    const d = child('dialer.js', [`127.0.0.1:${server.endpoints[0].port}`, '1000', '{}']);
    const done = await d.message((m) => m.event === 'done');
    expect(done.established).toBe(1000);
    await waitUntil(() => server.connections === 1000, 10_000, 'all accepted');
    const accepted = stats().connectionsAccepted - a0;
    expect(accepted).toBe(1000);
    expect(wakeups() - w0).toBeGreaterThanOrEqual(accepted);
    d.kill('SIGKILL');
    await server.close({ destroyConnections: true });
  });

  it('accepts a storm of 3,000 with the default batch', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const conns = await new Dialer({ maxPending: 3000 }).connectMany(server.endpoints[0], 3000);
    await waitUntil(() => server.connections === 3000, 10_000, 'all accepted');
    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
  });
});
