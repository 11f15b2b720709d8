// `for await (const conn of server)` yields every new connection, keeps data that arrives before
// the loop body attaches its listener, and ends when the server closes.
import { describe, expect, it } from 'vitest';
import { listen, Dialer } from '../lib/index';
import { roundTrip } from './util-echo';

describe('async iteration over a server', () => {
  it('yields connections and ends on close', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const served: string[] = [];
    const loop = (async () => {
      for await (const conn of server) {
        await new Promise((r) => setTimeout(r, 20)); // late listener: nothing may be lost
        conn.on('data', (d) => conn.write(d));
        served.push(conn.remoteAddress!);
      }
      return 'ended';
    })();
    const d = new Dialer();
    const a = await d.connect(server.endpoints[0], { localAddress: '127.0.0.21' });
    a.write('early bytes');
    const b = await d.connect(server.endpoints[0], { localAddress: '127.0.0.22' });
    const ra = await new Promise<string>((resolve) => { let s = ''; a.on('data', (x) => { s += x; if (s.length >= 11) resolve(s); }); });
    expect(ra).toBe('early bytes');
    expect((await roundTrip(b, 'hi')).toString()).toBe('hi');
    expect(served.sort()).toEqual(['127.0.0.21', '127.0.0.22']); // accepted on different reactors: any order
    a.destroy();
    b.destroy();
    await server.close({ destroyConnections: true });
    expect(await loop).toBe('ended');
  });
});
