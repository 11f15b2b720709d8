// The source pool's bookkeeping over time: a closed connection gives its (source, destination)
// place back, so the next connections go to the source with the fewest live ones. And when no
// source of the pool is usable, a connectMany() of any size fails at once: what it has not
// started would find the same, so it is not tried one attempt at a time.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { absentAddress, waitUntil } from './helpers';

function closed(c: Connection): Promise<void> {
  return new Promise((resolve) => {
    c.once('close', () => resolve());
    c.destroy();
  });
}

function bySource(conns: Connection[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of conns) out[c.localAddress!] = (out[c.localAddress!] ?? 0) + 1;
  return out;
}

describe('source pool over time', () => {
  it("a closed connection frees its source's place: the next ones go where fewest are live", async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ localAddresses: ['127.0.0.2', '127.0.0.3'] });
    const first = await d.connectMany(server.endpoints[0], 10);
    expect(bySource(first)).toEqual({ '127.0.0.2': 5, '127.0.0.3': 5 });
    const onTwo = first.filter((c) => c.localAddress === '127.0.0.2');
    await Promise.all(onTwo.map(closed));
    expect(d.connections).toBe(5);
    // 127.0.0.2 has 0 live, 127.0.0.3 has 5: the first five go to .2, then the tie goes to the first.
    const more = await d.connectMany(server.endpoints[0], 6);
    expect(bySource(more)).toEqual({ '127.0.0.2': 6 });
    // A single connect() follows the same count: .2 has 6, .3 has 5.
    const one = await d.connect(server.endpoints[0]);
    expect(one.localAddress).toBe('127.0.0.3');
    await Promise.all([...first.filter((c) => !c.destroyed), ...more, one].map(closed));
    expect(d.connections).toBe(0);
    // Everything closed: the spread starts even again.
    const again = await d.connectMany(server.endpoints[0], 4);
    expect(bySource(again)).toEqual({ '127.0.0.2': 2, '127.0.0.3': 2 });
    await Promise.all(again.map(closed));
    await server.close({ destroyConnections: true });
  });

  it('keeps each destination its own count', async () => {
    const a = await listen({ endpoints: ['127.0.0.1:0'] });
    const b = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ localAddresses: ['127.0.0.2', '127.0.0.3'] });
    const toA = await d.connectMany(a.endpoints[0], 3); // .2 2, .3 1
    const toB = await d.connectMany(b.endpoints[0], 3); // B counts from zero: .2 2, .3 1 again
    expect(bySource(toA)).toEqual({ '127.0.0.2': 2, '127.0.0.3': 1 });
    expect(bySource(toB)).toEqual({ '127.0.0.2': 2, '127.0.0.3': 1 });
    await Promise.all([...toA, ...toB].map(closed));
    await a.close({ destroyConnections: true });
    await b.close({ destroyConnections: true });
  });

  it('fails a huge connectMany() at once when no source of the pool is usable', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    // Not on this host: bind() fails locally with EADDRNOTAVAIL, nothing is sent.
    const d = new Dialer({ localAddresses: [absentAddress(), absentAddress(1)] });
    let last: [number, number] | undefined;
    const t0 = Date.now();
    const err: any = await d.connectMany(server.endpoints[0], 1_000_000, { onProgress: (e, f) => { last = [e, f]; } }).catch((e) => e);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(err).toMatchObject({ code: 'EADDRNOTAVAIL' });
    expect(last).toEqual([0, 1_000_000]);
    expect(d.pending).toBe(0);
    expect(d.connections).toBe(0);
    await waitUntil(() => d.pending === 0, 1000, 'nothing in flight');
    await server.close();
  });
});
