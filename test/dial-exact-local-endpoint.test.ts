// localAddress + localPort binds exactly there (and SO_REUSEADDR lets the same port be taken
// again at once); localAddress alone lets the kernel pick the port per 4-tuple.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { waitUntil } from './helpers';

describe('explicit local endpoints', () => {
  it('binds the exact source address and port, and again right after a close', async () => {
    const seen: { addr?: string; port?: number }[] = [];
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      seen.push({ addr: c.remoteAddress, port: c.remotePort });
      c.on('end', () => c.end());
    } });
    const d = new Dialer({ allowHalfOpen: false });
    const port = 20000 + Math.floor(Math.random() * 10000);
    for (let round = 0; round < 2; round++) {
      const conn: Connection = await d.connect(server.endpoints[0], { localAddress: '127.0.0.5', localPort: port });
      expect(conn.localAddress).toBe('127.0.0.5');
      expect(conn.localPort).toBe(port);
      await waitUntil(() => seen.length === round + 1, 5000, 'accept');
      expect(seen[round]).toEqual({ addr: '127.0.0.5', port });
      let closed = false;
      conn.on('close', () => { closed = true; });
      conn.end();
      await waitUntil(() => closed, 5000, 'close');
    }
    await server.close({ destroyConnections: true });
  });

  it('localAddress alone: the kernel picks the port', async () => {
    const server = await listen({ endpoints: ['[::1]:0', '127.0.0.1:0'] });
    const d = new Dialer();
    const a = await d.connect(server.endpoints[1], { localAddress: '127.0.0.6' });
    const b = await d.connect(server.endpoints[1], { localAddress: '127.0.0.6' });
    expect(a.localAddress).toBe('127.0.0.6');
    expect(b.localAddress).toBe('127.0.0.6');
    expect(a.localPort).not.toBe(b.localPort);
    const c = await d.connect(server.endpoints[0], { localAddress: '::1' });
    expect(c.localAddress).toBe('::1');
    for (const x of [a, b, c]) x.destroy();
    await server.close({ destroyConnections: true });
  });

  it('EADDRINUSE when the exact endpoint is taken by a live connection to the same destination', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer();
    const port = 30000 + Math.floor(Math.random() * 10000);
    const first = await d.connect(server.endpoints[0], { localAddress: '127.0.0.7', localPort: port });
    const err: any = await d.connect(server.endpoints[0], { localAddress: '127.0.0.7', localPort: port }).catch((e) => e);
    expect(['EADDRINUSE', 'EADDRNOTAVAIL']).toContain(err.code);
    first.destroy();
    await server.close({ destroyConnections: true });
  });
});
