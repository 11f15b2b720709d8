// A connect to a port nobody listens on is refused, even when the source port the socket gets is
// the destination port itself. TCP then "connects" the socket to itself (simultaneous open): a
// dialer that retries a closed port thousands of times meets it by chance (one in the port
// range's size per attempt, seen under Wine in connectMany to a closed port). myriad reports it
// as the ECONNREFUSED it stands for. Forced here by binding the source to the destination.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, stats } from '../lib/index';

async function freePort(host: string): Promise<number> {
  const s = await listen({ endpoints: [{ host, port: 0 }] });
  const port = s.endpoints[0].port;
  await s.close();
  return port;
}

describe('self-connect', () => {
  for (const host of ['127.0.0.1', '::1']) {
    it(`is refused, not handed out as a connection (${host})`, async () => {
      const port = await freePort(host);
      const d = new Dialer();
      const before = stats();
      const err: any = await d.connect({ host, port }, { localAddress: host, localPort: port }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', address: host, port });
      expect(d.pending).toBe(0);
      expect(d.connections).toBe(0);
      const after = stats();
      expect(after.connectionFailures - before.connectionFailures).toBe(1);
      expect(after.connectionsDialed - before.connectionsDialed).toBe(0);
      // The port is free again: a server can take it.
      const s = await listen({ endpoints: [{ host, port }] });
      expect(s.endpoints[0].port).toBe(port);
      await s.close();
    });
  }
});
