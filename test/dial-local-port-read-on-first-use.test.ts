// A dialed connection's local endpoint is right whenever it is read: from a pool source other
// than the destination's address the reactor does not ask the kernel at connect time (the port
// is read on first use), from the destination's own address or the kernel's choice it does (the
// self-connect check needs it). Either way localAddress/localPort match what the server sees,
// also when first read after the socket has closed under a connection still kept open for bytes
// it has not read.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { sleep, waitUntil } from './helpers';

describe('dialed connections: local endpoint', () => {
  it('matches the server side for pool sources, the destination address and no pool', async () => {
    const seen = new Set<string>();
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { seen.add(`${c.remoteAddress}:${c.remotePort}`); } });
    const pooled = new Dialer({ localAddresses: ['127.0.0.1', '127.0.0.2', '127.0.0.3'] });
    const plain = new Dialer();
    const conns: Connection[] = [
      ...(await pooled.connectMany(server.endpoints[0], 300)),
      ...(await plain.connectMany(server.endpoints[0], 30)),
      await pooled.connect(server.endpoints[0]),
    ];
    await waitUntil(() => seen.size === conns.length, 5000, 'all accepted');
    const bySource: Record<string, number> = {};
    for (const c of conns) {
      expect(c.family).toBe('IPv4');
      expect(c.remoteAddress).toBe('127.0.0.1');
      expect(c.remotePort).toBe(server.endpoints[0].port);
      expect(c.localPort).toBeGreaterThan(0);
      expect(seen.has(`${c.localAddress}:${c.localPort}`)).toBe(true);
      bySource[c.localAddress!] = (bySource[c.localAddress!] ?? 0) + 1;
    }
    expect(bySource).toEqual({ '127.0.0.1': 131, '127.0.0.2': 100, '127.0.0.3': 100 });
    // Read twice: the same answer (kept after the first read).
    expect(conns[5].localPort).toBe(conns[5].localPort);
    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('is known when first read after the socket closed, under a connection kept for unread bytes', async () => {
    let seenPort = 0;
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { seenPort ||= c.remotePort!; c.end('bye'); } });
    const d = new Dialer({ localAddresses: ['127.0.0.2'] });
    const conn = await d.connect(server.endpoints[0]);
    conn.end(); // no 'data' listener yet: 'bye' and the FIN are kept for the application
    await waitUntil(() => conn.destroyed && seenPort !== 0, 5000, 'socket closed under the connection');
    // Its slot goes back to the reactor: dial more so that it is taken again meanwhile.
    const more = await d.connectMany(server.endpoints[0], 20);
    await sleep(20);
    expect(conn.localAddress).toBe('127.0.0.2');
    expect(conn.localPort).toBe(seenPort);
    expect(conn.remotePort).toBe(server.endpoints[0].port);
    const got: string[] = [];
    conn.on('data', (b) => got.push(String(b)));
    await new Promise<void>((resolve) => conn.on('close', () => resolve()));
    expect(got.join('')).toBe('bye');
    for (const c of more) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('is the right port or nothing once the application destroyed the connection, never 0', async () => {
    const seen = new Set<string>();
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { seen.add(`${c.remoteAddress}:${c.remotePort}`); } });
    const d = new Dialer({ localAddresses: ['127.0.0.2'] });
    const conns = await d.connectMany(server.endpoints[0], 20);
    await waitUntil(() => seen.size === 20, 5000, 'all accepted');
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (const c of conns) {
      c.destroy();
      Atomics.wait(pause, 0, 0, 5); // the reactor closes the socket meanwhile; JS has not seen it
      const port = c.localPort;
      if (port !== undefined) expect(seen.has(`127.0.0.2:${port}`)).toBe(true);
    }
    await server.close({ destroyConnections: true });
  });
});
