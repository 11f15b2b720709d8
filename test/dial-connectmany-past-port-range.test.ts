// More connections to ONE endpoint than one source address's ephemeral port range allows:
// 2 server processes share the endpoint (reusePort), 2 dialer processes spread over 2 sources.
// (Processes because one process holds at most ~19,900 sockets here.)
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { child, statsUntil, type Child } from './helpers';

const isLinux = process.platform === 'linux';

// Linux only: reusePort (Windows has no load-balancing equivalent) and /proc for the port range.
describe.runIf(isLinux)('connectMany past the port range of one source', () => {
  const children: Child[] = [];
  afterAll(() => { for (const c of children) c.kill('SIGKILL'); });

  it('holds more connections to one endpoint than the port range has ports', async () => {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const range = hi - lo + 1;
    const total = range + 2000; // past the wall of a single source address
    const perDialer = Math.ceil(total / 2);
    expect(perDialer).toBeLessThan(19_000);

    // The servers are not under test here (the dialers are): native on both passes, since node:net
    // has no reusePort on Node 20 (test/listen-reuseport-two-processes.test.ts).
    const native = { env: { MYRIAD_BACKEND: 'native' } };
    const s1 = child('server.js', [JSON.stringify({ endpoints: ['127.0.0.1:0'], reusePort: true }), 'hold'], native);
    children.push(s1);
    const { endpoints } = await s1.message((m) => m.event === 'listening');
    const port = endpoints[0].port;
    const s2 = child('server.js', [JSON.stringify({ endpoints: [`127.0.0.1:${port}`], reusePort: true }), 'hold'], native);
    children.push(s2);
    await s2.message((m) => m.event === 'listening');

    const dialOpts = JSON.stringify({ localAddresses: ['127.0.0.2', '127.0.0.3'] });
    const d1 = child('dialer.js', [`127.0.0.1:${port}`, String(perDialer), dialOpts]);
    const d2 = child('dialer.js', [`127.0.0.1:${port}`, String(perDialer), dialOpts]);
    children.push(d1, d2);
    const [r1, r2] = await Promise.all([d1.message((m) => m.event === 'done', 120_000), d2.message((m) => m.event === 'done', 120_000)]);
    expect(r1.error).toBeUndefined();
    expect(r2.error).toBeUndefined();
    const established = r1.established + r2.established;
    expect(established).toBe(perDialer * 2);
    expect(established).toBeGreaterThan(range);
    // Spread evenly over the two sources in each dialer.
    for (const r of [r1, r2]) {
      expect(Object.keys(r.bySource).sort()).toEqual(['127.0.0.2', '127.0.0.3']);
      expect(Math.abs(r.bySource['127.0.0.2'] - r.bySource['127.0.0.3'])).toBeLessThanOrEqual(1);
    }
    const [a, b] = await statsUntil([s1, s2], ([x, y]) => x.live + y.live >= established);
    expect(a.live + b.live).toBe(established);
    expect(a.live).toBeGreaterThan(0);
    expect(b.live).toBeGreaterThan(0); // reusePort spread the accepts over both processes
  }, 180_000);
});
