// Groups: membership after closes, several groups per connection, connections from servers and
// dialers alike, empty groups, empty and 1 MiB messages, `except`, and bad input.
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { listen, Dialer, createGroup, type Connection } from '../lib/index';
import { sleep, waitUntil } from './helpers';

async function pair(n: number) {
  const accepted: Connection[] = [];
  const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { accepted.push(c); } });
  const clients = await new Dialer().connectMany(server.endpoints[0], n);
  await waitUntil(() => accepted.length === n, 5000, 'accepted');
  return { server, accepted, clients };
}

describe('groups', () => {
  it('tracks membership through closes, across several groups', async () => {
    const { server, accepted, clients } = await pair(10);
    const a = createGroup();
    const b = createGroup();
    for (const c of accepted) a.add(c);
    for (const c of accepted.slice(0, 5)) b.add(c);
    a.add(accepted[0]); // adding twice is a no-op
    expect(a.size).toBe(10);
    expect(b.size).toBe(5);
    expect(a.delete(accepted[9])).toBe(true);
    expect(a.delete(accepted[9])).toBe(false);
    expect(a.has(accepted[9])).toBe(false);
    const closed: boolean[] = [];
    accepted[0].on('close', () => closed.push(true));
    accepted[0].destroy();
    await waitUntil(() => closed.length === 1, 5000, 'close');
    expect(a.has(accepted[0])).toBe(false);
    expect(a.size).toBe(8);
    expect(b.size).toBe(4);
    // Only live members get a broadcast.
    const got = clients.map(() => '');
    clients.forEach((c, i) => c.on('data', (d) => { got[i] += d; }));
    expect(a.broadcast('x')).toBe(8);
    await sleep(200);
    expect(got.filter((t) => t === 'x').length).toBe(8);
    b.clear();
    expect(b.size).toBe(0);
    expect(b.broadcast('y')).toBe(0);
    await sleep(100);
    expect(got.some((t) => t.includes('y'))).toBe(false);
    for (const c of clients) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('mixes accepted and dialed connections, skips `except`', async () => {
    const { server, accepted, clients } = await pair(3);
    // Each connection's other end: accepted and dialed lists are not in the same order.
    const peer = (c: Connection) => [...accepted, ...clients].find((x) => x.localPort === c.remotePort && x.remotePort === c.localPort)!;
    const room = createGroup();
    room.add(accepted[0]).add(clients[1]).add(clients[2]);
    const got = new Map<Connection, string>();
    for (const c of [...accepted, ...clients]) { got.set(c, ''); c.on('data', (d) => got.set(c, got.get(c) + d)); }
    expect(room.broadcast('hi', { except: clients[2] })).toBe(2);
    await waitUntil(() => got.get(peer(accepted[0])) === 'hi' && got.get(peer(clients[1])) === 'hi', 5000, 'delivery');
    await sleep(100);
    expect(got.get(peer(clients[2]))).toBe('');
    for (const c of clients) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('broadcasts an empty buffer (nothing arrives) and a 1 MiB one (intact)', async () => {
    const { server, clients } = await pair(20);
    const hashes = clients.map(() => createHash('sha256'));
    const sizes = clients.map(() => 0);
    clients.forEach((c, i) => c.on('data', (d) => { hashes[i].update(d); sizes[i] += d.length; }));
    expect(server.broadcast(Buffer.alloc(0))).toBe(20);
    const big = randomBytes(1 << 20);
    expect(server.broadcast(big)).toBe(20);
    await waitUntil(() => sizes.every((n) => n === big.length), 20_000, '1 MiB everywhere');
    const want = createHash('sha256').update(big).digest('hex');
    expect(hashes.map((h) => h.digest('hex'))).toEqual(clients.map(() => want));
    for (const c of clients) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('an empty group and an idle server broadcast to nobody', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    expect(server.broadcast('nobody')).toBe(0);
    expect(createGroup().broadcast('nobody')).toBe(0);
    await server.close();
  });

  it('rejects bad input', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const g = createGroup();
    expect(() => g.add({} as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => g.broadcast(5 as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => g.broadcast('x', { except: 'nope' as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => server.broadcast(null as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    await expect(listen({ endpoints: ['127.0.0.1:0'], slowConsumer: 'maybe' as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], maxBuffered: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await server.close();
  });
});
