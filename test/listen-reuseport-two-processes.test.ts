// reusePort: two processes listen on the same endpoint and the kernel spreads connections over
// both; without reusePort the second one fails with EADDRINUSE.
import { afterAll, describe, expect, it } from 'vitest';
import { Dialer, listen } from '../lib/index';
import { netSupportsReusePort } from '../lib/net-binding';
import { child, netBackend, statsUntil, type Child } from './helpers';

// node:net has reusePort from Node 22.12 / 23.1: on older Node the net backend refuses it clearly.
const reusePortMissing = netBackend && !netSupportsReusePort();

// Linux only: Windows has no load-balancing SO_REUSEPORT (myriad reports ENOTSUP there).
describe.runIf(process.platform === 'linux')('reusePort between two processes', () => {
  const kids: Child[] = [];
  afterAll(() => { for (const k of kids) k.kill('SIGKILL'); });

  it('shares one endpoint between two processes', async () => {
    if (reusePortMissing) {
      await expect(listen({ endpoints: ['127.0.0.1:0'], reusePort: true })).rejects.toMatchObject({ code: 'ENOTSUP', syscall: 'listen' });
      return;
    }
    const a = child('server.js', [JSON.stringify({ endpoints: ['127.0.0.1:0'], reusePort: true }), 'hold']);
    kids.push(a);
    const port = (await a.message((m) => m.event === 'listening')).endpoints[0].port;
    const b = child('server.js', [JSON.stringify({ endpoints: [`127.0.0.1:${port}`], reusePort: true }), 'hold']);
    kids.push(b);
    await b.message((m) => m.event === 'listening');
    const conns = await new Dialer({ localAddresses: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] }).connectMany(`127.0.0.1:${port}`, 400);
    // The dialer is done when its side is connected; the servers' accepts land just after.
    const [sa, sb] = await statsUntil([a, b], ([x, y]) => x.accepted + y.accepted >= 400);
    expect(sa.accepted + sb.accepted).toBe(400);
    expect(sa.accepted).toBeGreaterThan(50);
    expect(sb.accepted).toBeGreaterThan(50);
    for (const c of conns) c.destroy();
  });

  it('without reusePort the second listener gets EADDRINUSE', async () => {
    const a = await listen({ endpoints: ['127.0.0.1:0'], reusePort: !reusePortMissing });
    await expect(listen({ endpoints: [a.endpoints[0]] })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await a.close();
  });
});
