// Random payloads of random sizes echoed through 300 connections at once, checksummed: every
// byte arrives once and in order, whatever the batching of events and writes.
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Dialer } from '../lib/index';
import { echoServer } from './util-echo';
import { waitUntil } from './helpers';

describe('byte integrity through many connections', () => {
  it('echoes random payloads intact', async () => {
    const server = await echoServer(['127.0.0.1:0']);
    const conns = await new Dialer().connectMany(server.endpoints[0], 300);
    const expected: string[] = [];
    const received = conns.map(() => createHash('sha256'));
    const receivedBytes = conns.map(() => 0);
    const sentBytes: number[] = [];
    conns.forEach((c, i) => c.on('data', (d) => { received[i].update(d); receivedBytes[i] += d.length; }));
    conns.forEach((c, i) => {
      const h = createHash('sha256');
      let total = 0;
      // A mix of tiny writes, strings and large buffers, to cross every path.
      const pieces = 1 + Math.floor(Math.random() * 20);
      for (let k = 0; k < pieces; k++) {
        const size = Math.random() < 0.2 ? 1 + Math.floor(Math.random() * 200_000) : 1 + Math.floor(Math.random() * 2000);
        const chunk = randomBytes(size);
        if (k % 5 === 4) {
          const text = chunk.toString('base64');
          c.write(text);
          h.update(text);
          total += Buffer.byteLength(text);
        } else {
          c.write(chunk);
          h.update(chunk);
          total += size;
        }
      }
      expected[i] = h.digest('hex');
      sentBytes[i] = total;
    });
    await waitUntil(() => receivedBytes.every((n, i) => n >= sentBytes[i]), 60_000, 'all echoes');
    expect(receivedBytes).toEqual(sentBytes);
    expect(received.map((h) => h.digest('hex'))).toEqual(expected);
    for (const c of conns) c.destroy();
    await server.close({ destroyConnections: true });
  });
});
