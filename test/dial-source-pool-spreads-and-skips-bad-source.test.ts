// A dialer's source pool: connections to one destination spread evenly over the sources
// (IP_BIND_ADDRESS_NO_PORT); a source that cannot be used is skipped for the next, and the error
// reaches the caller only when every source has failed.
import { describe, expect, it } from 'vitest';
import { listen, Dialer } from '../lib/index';
import { absentAddress, waitUntil } from './helpers';

describe('source address pool', () => {
  it('spreads connections evenly over the sources', async () => {
    const byRemote: Record<string, number> = {};
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      byRemote[c.remoteAddress!] = (byRemote[c.remoteAddress!] ?? 0) + 1;
    } });
    const d = new Dialer({ localAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] });
    const conns = await d.connectMany(server.endpoints[0], 600);
    expect(conns.length).toBe(600);
    await waitUntil(() => server.connections === 600, 5000, 'all accepted');
    expect(byRemote).toEqual({ '127.0.0.2': 200, '127.0.0.3': 200, '127.0.0.4': 200 });
    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('skips a source this host does not have', async () => {
    const byRemote: Record<string, number> = {};
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      byRemote[c.remoteAddress!] = (byRemote[c.remoteAddress!] ?? 0) + 1;
    } });
    // absentAddress() is not on this host: bind() fails locally with EADDRNOTAVAIL.
    const d = new Dialer({ localAddresses: [absentAddress(), '127.0.0.8'] });
    const conns = await d.connectMany(server.endpoints[0], 100);
    expect(conns.length).toBe(100);
    await waitUntil(() => server.connections === 100, 5000, 'all accepted');
    expect(byRemote).toEqual({ '127.0.0.8': 100 });
    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
  });

  it('fails with EADDRNOTAVAIL only when every source has failed', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ localAddresses: [absentAddress(), absentAddress(1)] });
    const err: any = await d.connect(server.endpoints[0]).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    await server.close();
  });
});
