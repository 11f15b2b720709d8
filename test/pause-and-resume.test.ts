// pause() stops 'data' (what arrives meanwhile is kept, in order) and resume() delivers it;
// data that arrives before anyone listens for 'data' is kept too, not dropped.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { sleep, waitUntil } from './helpers';

describe('pause and resume', () => {
  it('holds data while paused and delivers it in order on resume', async () => {
    let serverConn!: Connection;
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => { serverConn = c; } });
    const client = await new Dialer().connect(server.endpoints[0]);
    const got: string[] = [];
    client.on('data', (d) => got.push(d.toString()));
    await waitUntil(() => serverConn !== undefined, 5000, 'accept');
    serverConn.write('one,');
    await waitUntil(() => got.join('') === 'one,', 5000, 'first chunk');
    client.pause();
    expect(client.paused).toBe(true);
    serverConn.write('two,');
    serverConn.write('three');
    await sleep(200);
    expect(got.join('')).toBe('one,');
    client.resume();
    await waitUntil(() => got.join('') === 'one,two,three', 5000, 'held data');
    client.destroy();
    await server.close({ destroyConnections: true });
  });

  it("keeps data that arrives before a 'data' listener exists", async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => c.write('greeting') });
    const client = await new Dialer().connect(server.endpoints[0]);
    await sleep(150); // the greeting arrives while nobody listens
    const got: string[] = [];
    client.on('data', (d) => got.push(d.toString()));
    await waitUntil(() => got.join('') === 'greeting', 5000, 'kept greeting');
    client.destroy();
    await server.close({ destroyConnections: true });
  });

  it('delivers kept data before a kept end', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => c.end('last words') });
    const client = await new Dialer().connect(server.endpoints[0]);
    client.pause();
    await sleep(150);
    const order: string[] = [];
    client.on('data', (d) => order.push(`data:${d}`));
    client.on('end', () => order.push('end'));
    client.resume();
    await waitUntil(() => order.includes('end'), 5000, 'end');
    expect(order).toEqual(['data:last words', 'end']);
    client.destroy();
    await server.close();
  });
});
