// Half-close: the peer's FIN gives 'end' and the connection stays writable until end(); it
// closes once both sides have ended. allowHalfOpen: false answers a FIN with end() at once.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { collect, dialer } from './util-echo';
import { waitUntil } from './helpers';

describe('half-close', () => {
  it("keeps the server side writable after the client's FIN", async () => {
    let serverConn!: Connection;
    const events: string[] = [];
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      serverConn = c;
      c.on('data', () => {}); // as in node:net, 'end' follows only once the data before it was read
      c.on('end', () => {
        events.push('end');
        // Still writable after the peer's FIN: answer, then end our side.
        expect(c.writable).toBe(true);
        c.write('reply after your FIN');
        c.end(' bye');
      });
      c.on('close', (hadError) => events.push(`close:${hadError}`));
    } });
    const conn = await dialer().connect(server.endpoints[0]);
    const got = collect(conn);
    conn.end('request');
    await waitUntil(() => got.closed(), 5000, 'client close');
    expect(got.bytes().toString()).toBe('reply after your FIN bye');
    expect(got.ended()).toBe(true);
    await waitUntil(() => events.length === 2, 5000, 'server close');
    expect(events).toEqual(['end', 'close:false']);
    expect(serverConn.destroyed).toBe(true);
    await server.close();
  });

  it('stays half-open (no close) until end() is called', async () => {
    let serverConn!: Connection;
    let serverEnded = false;
    let serverClosed = false;
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      serverConn = c;
      c.on('end', () => { serverEnded = true; });
      c.on('close', () => { serverClosed = true; });
    } });
    const conn = await dialer().connect(server.endpoints[0]);
    const got = collect(conn);
    conn.end();
    await waitUntil(() => serverEnded, 5000, 'server end');
    await new Promise((r) => setTimeout(r, 200));
    expect(serverClosed).toBe(false);
    expect(got.closed()).toBe(false);
    serverConn.write('late');
    await waitUntil(() => got.bytes().length === 4, 5000, 'late bytes');
    serverConn.end();
    await waitUntil(() => serverClosed && got.closed(), 5000, 'both closed');
    await server.close();
  });

  it('allowHalfOpen: false ends automatically on the peer FIN', async () => {
    let closed = false;
    const server = await listen({ endpoints: ['127.0.0.1:0'], allowHalfOpen: false, onConnection: (c) => c.on('close', () => { closed = true; }) });
    const conn = await new Dialer().connect(server.endpoints[0]);
    const got = collect(conn);
    conn.end();
    await waitUntil(() => closed && got.closed() && got.ended(), 5000, 'both sides closed');
    await server.close();
  });
});
