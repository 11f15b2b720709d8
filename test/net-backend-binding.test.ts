// The node:net backend (lib/net-binding.ts) keeps the native binding's contract where the shared
// behaviour tests cannot see it: ids (generation, reactor 0, dense slots reused only after JS saw
// Close), one onEvents() call per event-loop turn, writes copied, drain below node's own
// high-water mark, reusePort refused clearly where node:net cannot do it, limits from /proc.
import { describe, expect, it } from 'vitest';
import { createNetBinding, netSupportsReusePort } from '../lib/net-binding';
import { Ev, Flag, SlowPolicy } from '../lib/binding';
import { configure, listen, Dialer, backend, type Connection } from '../lib/index';
import { waitUntil } from './helpers';

configure({ backend: 'net' });

type Rec = [number, number, number, number];

function harness() {
  const b = createNetBinding();
  const calls: Rec[][] = [];
  const chunks: Buffer[][] = [];
  b.init((records, _arena, ch) => {
    const batch: Rec[] = [];
    for (let i = 0; i < records.length; i += 4) batch.push([records[i], records[i + 1], records[i + 2], records[i + 3]]);
    calls.push(batch);
    chunks.push(ch ?? []);
  });
  const all = () => calls.flat();
  const wait = (pred: (r: Rec) => boolean, what: string) => waitUntil(() => all().some(pred), 5000, what).then(() => all().find(pred)!);
  return { b, calls, chunks, all, wait };
}

const slotOf = (id: number) => id % 2 ** 24;
const genOf = (id: number) => Math.floor(id / 2 ** 24);

describe('net backend: binding contract', () => {
  it('ids are generation * 2^24 + slot on reactor 0; a slot is reused only after its Close was delivered, with a new generation', async () => {
    const { b, all, wait } = harness();
    b.listen(1, '127.0.0.1', 0, 7, 511, 64, Flag.ReuseAddress, 0, 0, 0, SlowPolicy.Close);
    const ok = await wait((r) => r[0] === Ev.ListenOk && r[1] === 1, 'listen');
    const port = ok[3];
    b.connect(2, '127.0.0.1', port, null, 0, 0, 0, 0, 9, 0, 0, 0, 0, SlowPolicy.Close);
    const dialed = await wait((r) => r[0] === Ev.Connected && r[2] === 2, 'connected');
    const accepted = await wait((r) => r[0] === Ev.Accept, 'accept');
    expect(accepted[2]).toBe(7); // owner
    for (const id of [dialed[1], accepted[1]]) {
      expect((id % 2 ** 24) >>> 20).toBe(0); // reactor 0
      expect(genOf(id)).toBeGreaterThan(0);
    }
    const slots = new Set([slotOf(dialed[1]), slotOf(accepted[1])]);
    expect(slots).toEqual(new Set([0, 1])); // dense
    b.destroy(dialed[1]);
    await wait((r) => r[0] === Ev.Close && r[1] === dialed[1], 'close');
    await new Promise((r) => setImmediate(r)); // the batch with the Close has been delivered
    b.connect(3, '127.0.0.1', port, null, 0, 0, 0, 0, 9, 0, 0, 0, 0, SlowPolicy.Close);
    const again = await wait((r) => r[0] === Ev.Connected && r[2] === 3, 'connected again');
    expect(slotOf(again[1])).toBe(slotOf(dialed[1])); // the freed slot, from the free list
    expect(genOf(again[1])).toBe(genOf(dialed[1]) + 1);
    expect(b.write(dialed[1], 'stale id', 1024)).toBe(0); // the old id names nothing now
    b.destroy(again[1]);
    b.destroy(accepted[1]);
    b.closeListener(ok[2]);
    await wait((r) => r[0] === Ev.ListenerClosed, 'listener closed');
  });

  it('hands a turn of the event loop to JS in one onEvents() call, Data chunks beside the records', async () => {
    const { b, calls, chunks, all, wait } = harness();
    b.listen(1, '127.0.0.1', 0, 1, 511, 64, Flag.ReuseAddress, 0, 0, 0, SlowPolicy.Close);
    const port = (await wait((r) => r[0] === Ev.ListenOk, 'listen'))[3];
    for (let i = 0; i < 200; i++) b.connect(10 + i, '127.0.0.1', port, null, 0, 0, 0, 0, 2, 0, 0, 0, 0, SlowPolicy.Close);
    await waitUntil(() => all().filter((r) => r[0] === Ev.Connected).length === 200 && all().filter((r) => r[0] === Ev.Accept).length === 200, 10_000, '200 each');
    // (Accepts arrive one per loop turn: libuv accepts one connection per wake-up, libuv PR #3696.)
    const dialed = all().filter((r) => r[0] === Ev.Connected).map((r) => r[1]);
    const before = calls.length;
    for (const id of dialed) b.write(id, Buffer.from(`hello ${id}`), 65536);
    await waitUntil(() => all().filter((r) => r[0] === Ev.Data).length >= 200, 10_000, 'data');
    expect(calls.length - before).toBeLessThan(20); // 200 reads in one or a few loop turns, one call each
    const k = calls.findIndex((batch) => batch.some((r) => r[0] === Ev.Data));
    const d = calls[k].find((r) => r[0] === Ev.Data)!;
    expect(chunks[k][d[2]].length).toBe(d[3]); // a = chunk index, b = length
    expect(chunks[k][d[2]].toString()).toMatch(/^hello \d+$/);
    for (const id of dialed) b.destroy(id);
  });

  it('copies writes, so a Buffer may be reused as soon as write() returns', async () => {
    const chunks: Buffer[] = [];
    let ended = false;
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      c.pause(); // the kernel buffers fill: most of the write waits in the sender's queue
      setTimeout(() => c.resume(), 300);
      c.on('data', (d) => chunks.push(Buffer.from(d)));
      c.on('end', () => { ended = true; });
    } });
    expect(backend()).toBe('net');
    const conn = await new Dialer().connect(server.endpoints[0]);
    const buf = Buffer.alloc(8 * 1024 * 1024, 1);
    conn.write(buf); // node:net alone would keep a reference to buf until it is sent
    buf.fill(2);
    conn.end();
    await waitUntil(() => ended, 20_000, 'all bytes');
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(buf.length);
    expect(got.every((x) => x === 1)).toBe(true);
    await server.close({ destroyConnections: true });
  });
});

describe('net backend: node:net limits', () => {
  it('drains past a high-water mark below node:net\'s own 16 KiB', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], highWaterMark: 1000, onConnection: (c) => {
      c.pause();
      setTimeout(() => c.resume(), 200);
      c.on('data', () => {});
    } });
    const conn = await new Dialer({ highWaterMark: 1000 }).connect(server.endpoints[0]);
    let drained = 0;
    conn.on('drain', () => drained++);
    let ok = true;
    for (let i = 0; i < 200 && ok; i++) ok = conn.write(Buffer.alloc(64 * 1024, 3));
    expect(ok).toBe(false);
    await waitUntil(() => drained === 1, 10_000, 'drain');
    expect(conn.bufferedAmount).toBe(0);
    conn.destroy();
    await server.close({ destroyConnections: true });
  });

  it.runIf(!netSupportsReusePort())('refuses reusePort with ENOTSUP where node:net has no server.listen({ reusePort })', async () => {
    await expect(listen({ endpoints: ['127.0.0.1:0'], reusePort: true })).rejects.toMatchObject({ code: 'ENOTSUP', syscall: 'listen' });
  });

  it('knows which Node versions have reusePort', () => {
    expect(netSupportsReusePort('20.20.2')).toBe(false);
    expect(netSupportsReusePort('22.11.0')).toBe(false);
    expect(netSupportsReusePort('22.12.0')).toBe(true);
    expect(netSupportsReusePort('23.1.0')).toBe(true);
    expect(netSupportsReusePort('24.0.0')).toBe(true);
  });

  it.runIf(process.platform === 'linux')('reads the open-file limit from /proc and cannot raise it', () => {
    const b = createNetBinding();
    const lim = b.rlimitNofile(true)!;
    expect(lim[0]).toBeGreaterThan(0);
    expect(lim[1]).toBeGreaterThanOrEqual(lim[0]);
    expect(b.errorName(-111)).toEqual(['ECONNREFUSED', 'connection refused']);
  });
});
