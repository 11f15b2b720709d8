// Backpressure: write() returns false once bufferedAmount reaches the high-water mark, 'drain'
// follows when the queue empties, and no byte is lost or reordered on the way.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { listen, Dialer, type Connection } from '../lib/index';
import { waitUntil } from './helpers';

describe('backpressure and drain', () => {
  it('returns false past the high-water mark and drains once the reader catches up', async () => {
    let serverConn!: Connection;
    const server = await listen({ endpoints: ['127.0.0.1:0'], highWaterMark: 64 * 1024, onConnection: (c) => { serverConn = c; } });
    const client = await new Dialer().connect(server.endpoints[0]);
    client.pause(); // the reader stops: kernel buffers fill, then ours
    const received = createHash('sha256');
    let receivedBytes = 0;
    client.on('data', (d) => { received.update(d); receivedBytes += d.length; });
    await waitUntil(() => serverConn !== undefined, 5000, 'accept');

    const sent = createHash('sha256');
    const chunk = Buffer.alloc(64 * 1024);
    let sentBytes = 0;
    // Write until write() says stop AND the kernel's buffers are surely full (the reader is
    // paused, so whatever passes them stays with us): 32 MiB is far past loopback's buffers.
    let ok = true;
    let i = 0;
    while (ok || sentBytes < 32 << 20) {
      chunk.fill(i++ & 0xff);
      sent.update(chunk);
      sentBytes += chunk.length;
      ok = serverConn.write(chunk);
      if (i % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(ok).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(serverConn.bufferedAmount).toBeGreaterThanOrEqual(64 * 1024);
    expect(serverConn.write(Buffer.alloc(0))).toBe(false); // still over the mark

    let drained = false;
    serverConn.once('drain', () => { drained = true; });
    client.resume();
    await waitUntil(() => drained, 20_000, "'drain'");
    expect(serverConn.bufferedAmount).toBe(0);
    await waitUntil(() => receivedBytes === sentBytes, 20_000, 'all bytes');
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    client.destroy();
    await server.close({ destroyConnections: true });
  });
});
