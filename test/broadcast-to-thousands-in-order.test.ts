// server.broadcast() and group.broadcast() to thousands of connections held by other processes:
// every member gets every message exactly once and in order, mixed with per-connection writes.
import { afterAll, describe, expect, it } from 'vitest';
import { listen, createGroup, stats, type Connection } from '../lib/index';
import { child, scaled, waitUntil, type Child } from './helpers';

describe('broadcast to thousands', () => {
  const kids: Child[] = [];
  afterAll(() => { for (const k of kids) k.kill('SIGKILL'); });

  it('delivers every message to every connection, in order', async () => {
    const conns: Connection[] = [];
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { conns.push(c); } });
    const port = server.endpoints[0].port;
    const per = scaled(3000, 400);
    for (let i = 0; i < 2; i++) kids.push(child('receiver.js', [`127.0.0.1:${port}`, String(per), '{}']));
    await Promise.all(kids.map((k) => k.message((m) => m.event === 'ready')));
    await waitUntil(() => server.connections === 2 * per, 10_000, 'all accepted');

    const room = createGroup();
    conns.forEach((c, i) => { if (i % 2 === 0) room.add(c); });
    expect(room.size).toBe(per);

    // Server-wide broadcasts, group broadcasts to half, and a per-connection write in between:
    // each connection must see exactly its own sequence.
    const expected = new Map<Connection, string>();
    for (const c of conns) expected.set(c, '');
    const s0 = stats();
    for (let k = 0; k < 20; k++) {
      const all = `all-${k};`;
      expect(server.broadcast(all)).toBe(2 * per);
      for (const c of conns) expected.set(c, expected.get(c) + all);
      if (k % 4 === 0) {
        const half = Buffer.from(`room-${k};`);
        expect(room.broadcast(half)).toBe(per);
        for (const c of room) expected.set(c, expected.get(c) + half.toString());
      }
      if (k === 10) {
        conns[1].write('solo;');
        expected.set(conns[1], expected.get(conns[1]) + 'solo;');
      }
    }
    expect(stats().broadcasts - s0.broadcasts).toBe(25);

    // The receivers cannot tell which server-side connection is theirs; but the set of distinct
    // expected texts is small: check each receiver-side connection against one of them.
    const texts = new Set(expected.values());
    expect(texts.size).toBe(3); // even (room), odd, and conns[1]
    const totalBytes = [...expected.values()].reduce((n, t) => n + t.length, 0);
    await waitUntil(async () => {
      const totals = await Promise.all(kids.map(async (k) => { k.send({ cmd: 'bytes' }); return (await k.message((m) => m.event === 'bytes' && m.total >= 0, 5000)).total; }));
      kids.forEach((k) => { k.messages.length = 0; });
      return totals.reduce((a, b) => a + b, 0) >= totalBytes;
    }, 30_000, 'all bytes delivered');
    const tally = new Map<string, number>();
    for (const t of expected.values()) tally.set(t, (tally.get(t) ?? 0) + 1);
    let matched = 0;
    for (const [text, n] of tally) {
      const results = await Promise.all(kids.map(async (k) => {
        k.send({ cmd: 'check', expect: text });
        const r = await k.message((m) => m.event === 'check', 10_000);
        k.messages.length = 0;
        return r.ok as number;
      }));
      const ok = results.reduce((a, b) => a + b, 0);
      expect(ok).toBe(n);
      matched += ok;
    }
    expect(matched).toBe(2 * per);
    expect(stats().messagesQueued - s0.messagesQueued).toBe(20 * 2 * per + 5 * per);
    await server.close({ destroyConnections: true });
  });
});
