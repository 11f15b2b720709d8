// Broadcasts racing with destroys, ends and new connections: no crash, no leak; connections
// that stay get every message in order.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, createGroup, stats, type Connection } from '../lib/index';
import { sleep, waitUntil } from './helpers';

describe('broadcast racing closes', () => {
  it('survives destroys and ends mid-broadcast', async () => {
    const accepted: Connection[] = [];
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { accepted.push(c); } });
    const d = new Dialer({ allowHalfOpen: false });
    const clients = await d.connectMany(server.endpoints[0], 400);
    await waitUntil(() => accepted.length === 400, 5000, 'accepted');
    const room = createGroup();
    for (const c of accepted) room.add(c);
    const keep = new Set(clients.slice(0, 100));
    const got = new Map<Connection, string>();
    for (const c of keep) { got.set(c, ''); c.on('data', (b) => got.set(c, got.get(c) + b)); }
    let expected = '';
    for (let k = 0; k < 50; k++) {
      const msg = `${k},`;
      expected += msg;
      if (k % 2) server.broadcast(msg); else room.broadcast(msg);
      // Close some of the others in every way while messages are in flight.
      const victim = clients[100 + k * 6];
      if (k % 3 === 0) victim.destroy();
      else if (k % 3 === 1) victim.end();
      else accepted.find((a) => a.remotePort === victim.localPort)?.destroy();
      if (k % 10 === 0) await sleep(1);
    }
    await waitUntil(() => [...got.values()].every((t) => t === expected), 20_000, 'every kept client got everything');
    for (const c of clients) c.destroy();
    await server.close({ destroyConnections: true });
    await waitUntil(() => stats().connectionsEstablished === 0, 5000, 'all closed');
    expect(room.size).toBe(0);
  });
});
