// stats(): accepted, dialed, established now, closed, failures and bytes add up as connections
// come and go; per-reactor counters show where events were handled.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, stats, configure } from '../lib/index';
import { netBackend, waitUntil } from './helpers';
import { roundTrip } from './util-echo';

describe('stats()', () => {
  it('is all zero before first use, and configure() works only before it', async () => {
    expect(stats()).toMatchObject({ connectionsEstablished: 0, connectionsAccepted: 0, reactors: [] });
    configure({ threads: 3 });
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => c.on('data', (d) => c.write(d)) });
    // The node:net backend has one "reactor": the JS thread (threads is accepted and ignored).
    expect(stats().reactors.length).toBe(netBackend ? 1 : 3);
    expect(() => configure({ threads: 2 })).toThrow(expect.objectContaining({ code: 'ERR_MYRIAD_STARTED' }));

    const d = new Dialer({ allowHalfOpen: false });
    const conns = await d.connectMany(server.endpoints[0], 30);
    await waitUntil(() => stats().connectionsEstablished === 60, 5000, '60 established');
    let s = stats();
    expect(s.connectionsAccepted).toBe(30);
    expect(s.connectionsDialed).toBe(30);
    expect(s.reactors.reduce((n, r) => n + r.connections, 0)).toBe(60);
    expect(s.reactors.filter((r) => r.connections > 0).length).toBeGreaterThan(netBackend ? 0 : 1); // spread over reactors
    await roundTrip(conns[0], 'x'.repeat(1000));
    s = stats();
    expect(s.bytesRead).toBe(2000);
    expect(s.bytesWritten).toBe(2000);

    await d.connect('127.0.0.1:1').catch(() => {});
    expect(stats().connectionFailures).toBe(1);

    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
    s = stats();
    expect(s.connectionsEstablished).toBe(0);
    expect(s.connectionsClosed).toBe(60);
    expect(s.connectionsAccepted + s.connectionsDialed).toBe(s.connectionsClosed + s.connectionsEstablished);
    expect(s.reactors.every((r) => r.eventsHandled > 0 && r.batches > 0 && r.wakeups > 0)).toBe(true);
  });
});
