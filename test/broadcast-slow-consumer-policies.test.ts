// A client that stops reading: a broadcast that would push its connection past maxBuffered
// drops the message ('drop', counted), closes it with ERR_SLOW_CONSUMER ('close', the default)
// or queues anyway ('buffer'); the readers next to it keep getting everything.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, stats, type Connection } from '../lib/index';
import { scaled, sleep, waitUntil } from './helpers';

async function setup(policy: 'close' | 'drop' | 'buffer' | undefined) {
  const accepted: Connection[] = [];
  const errors: any[] = [];
  const server = await listen({ endpoints: ['127.0.0.1:0'], maxBuffered: 256 * 1024, ...(policy ? { slowConsumer: policy } : {}),
    onConnection: (c) => { accepted.push(c); c.on('error', (e) => errors.push(e)); } });
  const d = new Dialer();
  const reader = await d.connect(server.endpoints[0]);
  const stalled = await d.connect(server.endpoints[0]);
  await waitUntil(() => accepted.length === 2, 5000, 'accepted');
  stalled.pause(); // stops reading: the kernel buffers fill, then the server's queue grows
  let readerBytes = 0;
  reader.on('data', (b) => { readerBytes += b.length; });
  const slowSide = accepted.find((c) => c.remotePort === stalled.localPort)!;
  // Only the stalled connection is capped: on a busy machine the fast reader can lag too.
  accepted.find((c) => c !== slowSide)!.setMaxBuffered(0);
  // Broadcast well past kernel buffers + maxBuffered, in steps the fast reader keeps up with
  // (under Wine, where every socket call goes through wineserver, in smaller and slower steps).
  const chunk = Buffer.alloc(scaled(64 * 1024, 16 * 1024), 1);
  let sent = 0;
  for (let i = 0; i < scaled(400, 300); i++) {
    server.broadcast(chunk);
    sent += chunk.length;
    if (i % scaled(8, 1) === 0) await sleep(scaled(5, 15));
  }
  await waitUntil(() => readerBytes === sent, 30_000, 'the fast reader gets everything');
  return { server, reader, stalled, slowSide, sent, errors };
}

describe('slow consumers', () => {
  it("'close' (the default) destroys the slow connection with ERR_SLOW_CONSUMER", async () => {
    const before = stats().slowConsumersClosed;
    const { server, slowSide, reader, stalled, errors } = await setup(undefined);
    await waitUntil(() => slowSide.destroyed, 5000, 'slow side closed');
    expect(stats().slowConsumersClosed - before).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['ERR_SLOW_CONSUMER']);
    expect(reader.destroyed).toBe(false);
    reader.destroy();
    stalled.destroy();
    await server.close({ destroyConnections: true });
  });

  it("'drop' skips messages for the slow connection and keeps it open, with bounded memory", async () => {
    const before = stats().messagesDropped;
    const { server, slowSide, reader, stalled } = await setup('drop');
    expect(slowSide.destroyed).toBe(false);
    expect(stats().messagesDropped - before).toBeGreaterThan(0);
    expect(slowSide.bufferedAmount).toBeLessThanOrEqual(256 * 1024);
    reader.destroy();
    stalled.destroy();
    await server.close({ destroyConnections: true });
  });

  it("'buffer' keeps queueing past maxBuffered", async () => {
    const { server, slowSide, reader, stalled, sent } = await setup('buffer');
    expect(slowSide.destroyed).toBe(false);
    expect(slowSide.bufferedAmount).toBeGreaterThan(256 * 1024);
    // Once it reads again, everything arrives.
    let got = 0;
    stalled.on('data', (b) => { got += b.length; });
    stalled.resume();
    await waitUntil(() => got === sent, 30_000, 'the stalled reader catches up');
    reader.destroy();
    stalled.destroy();
    await server.close({ destroyConnections: true });
  });

  it('setMaxBuffered on one connection overrides its server default', async () => {
    const { server, slowSide, reader, stalled } = await setup('buffer');
    slowSide.setMaxBuffered(1024, 'close');
    server.broadcast(Buffer.alloc(4096));
    await waitUntil(() => slowSide.destroyed, 5000, 'closed by its own cap');
    expect(() => slowSide.setMaxBuffered(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    reader.destroy();
    stalled.destroy();
    await server.close({ destroyConnections: true });
  });
});
