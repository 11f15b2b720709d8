// destroy() with megabytes queued for a peer that does not read: closes at once, discards the
// queue, frees the descriptor, and later writes fail cleanly.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { fdCount, fdsAtMost, sleep, waitUntil } from './helpers';

describe('destroy with writes pending', () => {
  it('closes at once and releases everything', async () => {
    let serverConn!: Connection;
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { serverConn = c; } });
    const fdsBefore = fdCount(); // the reactors and the listener are already open
    const client = await new Dialer().connect(server.endpoints[0]);
    client.pause();
    await waitUntil(() => serverConn !== undefined, 5000, 'accept');
    const big = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 16; i++) serverConn.write(big);
    await sleep(100);
    expect(serverConn.bufferedAmount).toBeGreaterThan(0);
    const events: string[] = [];
    serverConn.on('close', (hadError) => events.push(`close:${hadError}`));
    serverConn.on('error', (e: any) => events.push(`error:${e.code}`));
    serverConn.destroy();
    expect(serverConn.destroyed).toBe(true);
    expect(serverConn.bufferedAmount).toBe(0);
    expect(serverConn.write('more')).toBe(false);
    await waitUntil(() => events.includes('close:false'), 5000, 'close');
    await sleep(20);
    expect(events).toEqual(['close:false']); // a write after destroy() returns false, quietly
    client.destroy();
    await waitUntil(() => fdsAtMost(fdsBefore), 5000, 'descriptors released');
    await server.close({ destroyConnections: true });
  });

  it("destroy(err) emits 'error' then 'close' with hadError", async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const client = await new Dialer().connect(server.endpoints[0]);
    const events: string[] = [];
    client.on('error', (e) => events.push(`error:${e.message}`));
    client.on('close', (hadError) => events.push(`close:${hadError}`));
    client.destroy(new Error('enough'));
    await waitUntil(() => events.length === 2, 5000, 'events');
    expect(events).toEqual(['error:enough', 'close:true']);
    await server.close({ destroyConnections: true });
  });
});
