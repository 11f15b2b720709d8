// One server on three endpoints at once (two IPv4 addresses and IPv6 loopback): every endpoint
// accepts, reports its real port, and connections carry the right addresses and family.
import { afterAll, describe, expect, it } from 'vitest';
import { Dialer, type Server } from '../lib/index';
import { echoServer, roundTrip } from './util-echo';

describe('listen on three endpoints (IPv4 and IPv6)', () => {
  let server: Server;
  afterAll(() => server?.close({ destroyConnections: true }));

  it('binds every endpoint and reports the real ports where 0 was asked', async () => {
    server = await echoServer(['127.0.0.1:0', { host: '127.0.0.2', port: 0 }, '[::1]:0']);
    expect(server.endpoints.map((e) => [e.host, e.family])).toEqual([['127.0.0.1', 4], ['127.0.0.2', 4], ['::1', 6]]);
    for (const e of server.endpoints) expect(e.port).toBeGreaterThan(0);
    expect(server.listening).toBe(true);
  });

  it('accepts and echoes on each of them, with the right addresses', async () => {
    const d = new Dialer();
    for (const ep of server.endpoints) {
      const conn = await d.connect(ep);
      expect(conn.remoteAddress).toBe(ep.host);
      expect(conn.remotePort).toBe(ep.port);
      expect(conn.family).toBe(ep.family === 6 ? 'IPv6' : 'IPv4');
      expect(conn.localAddress).toMatch(ep.family === 6 ? /^::1$/ : /^127\./);
      expect(conn.localPort).toBeGreaterThan(0);
      const reply = await roundTrip(conn, `hello ${ep.host}`);
      expect(reply.toString()).toBe(`hello ${ep.host}`);
      conn.destroy();
    }
  });

  it('lists each endpoint as given, even the same port on two addresses', async () => {
    const port = server.endpoints[0].port;
    const other = await echoServer([`127.0.0.3:${port}`, `127.0.0.4:${port}`]);
    expect(other.endpoints.map((e) => `${e.host}:${e.port}`)).toEqual([`127.0.0.3:${port}`, `127.0.0.4:${port}`]);
    await other.close();
  });
});
