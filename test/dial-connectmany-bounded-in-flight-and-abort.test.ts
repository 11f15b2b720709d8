// connectMany() starts its attempts lazily: at most maxPending are in flight (or exist) at once,
// the rest start as earlier ones settle, in one FIFO with connect() calls. Aborting a call drops
// what it has not started, destroys what it opened, and leaves the dialer's accounting at zero.
// onProgress ends with one final call and is not called after it.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { sleep, waitUntil } from './helpers';

function closed(c: Connection): Promise<void> {
  return new Promise((resolve) => {
    if (c.destroyed) setImmediate(resolve);
    else {
      c.once('close', () => resolve());
      c.destroy();
    }
  });
}

async function closedPort(): Promise<number> {
  const s = await listen({ endpoints: ['127.0.0.1:0'] });
  const port = s.endpoints[0].port;
  await s.close(); // refused at once: nothing leaves loopback
  return port;
}

describe('connectMany: bounded attempts in flight, one FIFO with connect(), abort', () => {
  it('keeps at most maxPending connects in flight and starts the rest as earlier ones settle', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ maxPending: 8 });
    let most = 0;
    const p = d.connectMany(server.endpoints[0], 500, { onProgress: () => { most = Math.max(most, d.pending); } });
    expect(d.pending).toBe(8); // started at once, synchronously; the other 492 wait
    const conns = await p;
    expect(conns.length).toBe(500);
    expect(most).toBeLessThanOrEqual(8);
    expect(d.pending).toBe(0);
    expect(d.connections).toBe(500);
    await Promise.all(conns.map(closed));
    expect(d.connections).toBe(0);
    await server.close({ destroyConnections: true });
  });

  it('gives a connectMany() that started behind connect() calls their slots as they settle', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ maxPending: 8 });
    const singles = Array.from({ length: 7 }, () => d.connect(server.endpoints[0]));
    let singlesDone = false;
    void Promise.all(singles).then(() => { singlesDone = true; });
    let most = 0;
    let mostAfterSingles = 0;
    const many = d.connectMany(server.endpoints[0], 2000, { onProgress: () => {
      most = Math.max(most, d.pending);
      if (singlesDone) mostAfterSingles = Math.max(mostAfterSingles, d.pending);
    } });
    expect(d.pending).toBe(8); // 7 connect() calls and the one slot left, for the connectMany()
    const conns = await many;
    expect(conns.length).toBe(2000);
    expect(most).toBeLessThanOrEqual(8);
    expect(mostAfterSingles).toBe(8); // every slot the connect() calls freed went to it
    const ones = await Promise.all(singles);
    expect(d.pending).toBe(0);
    expect(d.connections).toBe(2007);
    await Promise.all([...conns, ...ones].map(closed));
    await server.close({ destroyConnections: true });
  });

  it('serves connect() calls made behind a connectMany() and drops an aborted one from the queue', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ maxPending: 2 });
    const many = d.connectMany(server.endpoints[0], 40);
    const ac = new AbortController();
    const dropped = d.connect(server.endpoints[0], { signal: ac.signal }); // queued behind the 40
    const served = d.connect(server.endpoints[0]);
    expect(d.pending).toBe(2);
    ac.abort();
    await expect(dropped).rejects.toMatchObject({ code: 'ABORT_ERR', name: 'AbortError' });
    const [conns, one] = await Promise.all([many, served]);
    expect(conns.length).toBe(40);
    expect(one.destroyed).toBe(false);
    expect(d.pending).toBe(0);
    expect(d.connections).toBe(41); // the aborted connect() never started
    await Promise.all([...conns, one].map(closed));
    await server.close({ destroyConnections: true });
  });

  it('abort mid-way rejects, starts nothing more and destroys what it opened', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], allowHalfOpen: false }); // a dialer's FIN closes
    const d = new Dialer({ maxPending: 16 });
    const ac = new AbortController();
    let atAbort = -1;
    const p = d.connectMany(server.endpoints[0], 100_000, {
      signal: ac.signal,
      onProgress: (established) => {
        if (atAbort < 0 && established >= 200) {
          atAbort = established;
          ac.abort();
        }
      },
    });
    await expect(p).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(atAbort).toBeGreaterThanOrEqual(200);
    // What was in flight settles (and is destroyed); nothing else starts.
    await waitUntil(() => d.pending === 0 && d.connections === 0, 10_000, 'dialer drained');
    await waitUntil(() => server.connections === 0, 10_000, 'server saw every close');
    await sleep(50);
    expect(d.pending).toBe(0);
    await server.close();
  });

  it('rejects with the first error when every attempt failed, and counts each failure', async () => {
    const port = await closedPort();
    const d = new Dialer({ maxPending: 64 });
    const calls: [number, number][] = [];
    const err: any = await d.connectMany(`127.0.0.1:${port}`, 3000, { onProgress: (e, f) => { calls.push([e, f]); } }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port });
    expect(calls[calls.length - 1]).toEqual([0, 3000]);
    expect(d.pending).toBe(0);
  });

  it('calls onProgress once at the end and never after it', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const d = new Dialer({ maxPending: 32 });
    const calls: [number, number][] = [];
    const conns = await d.connectMany(server.endpoints[0], 300, { onProgress: (e, f) => { calls.push([e, f]); } });
    const atResolve = calls.length;
    expect(calls[atResolve - 1]).toEqual([300, 0]);
    for (let i = 1; i < calls.length; i++) expect(calls[i][0]).toBeGreaterThanOrEqual(calls[i - 1][0]);
    await new Promise((r) => setImmediate(r));
    await sleep(50);
    expect(calls.length).toBe(atResolve);
    // count 0: resolves at once, with its one final call
    const none: [number, number][] = [];
    await expect(d.connectMany(server.endpoints[0], 0, { onProgress: (e, f) => { none.push([e, f]); } })).resolves.toEqual([]);
    expect(none).toEqual([[0, 0]]);
    await Promise.all(conns.map(closed));
    await server.close({ destroyConnections: true });
  });
});
