// Port 0 picks a free port; close() stops accepting (new connects are refused) and resolves;
// close({ destroyConnections }) also ends every live connection.
import { describe, expect, it } from 'vitest';
import { Dialer, stats } from '../lib/index';
import { echoServer } from './util-echo';
import { waitUntil } from './helpers';

describe('port 0, close() and close({ destroyConnections })', () => {
  it('gets a real port and refuses connections after close', async () => {
    const server = await echoServer(['127.0.0.1:0']);
    const port = server.endpoints[0].port;
    expect(port).toBeGreaterThan(1023);
    const d = new Dialer();
    const conn = await d.connect(`127.0.0.1:${port}`);
    await waitUntil(() => server.connections === 1, 5000, 'server sees the connection');
    let closeEvent = false;
    server.on('close', () => { closeEvent = true; });
    await server.close();
    expect(closeEvent).toBe(true);
    expect(server.listening).toBe(false);
    await expect(d.connect(`127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    // Existing connections survive a plain close().
    expect(conn.destroyed).toBe(false);
    conn.destroy();
  });

  it('destroyConnections ends every connection and waits for them', async () => {
    const server = await echoServer(['127.0.0.1:0']);
    const d = new Dialer({ allowHalfOpen: false }); // answer the server's FIN, so 'close' follows
    const conns = await d.connectMany(server.endpoints[0], 50);
    await waitUntil(() => server.connections === 50, 5000, '50 accepted');
    const closedClientSide: boolean[] = [];
    for (const c of conns) c.on('close', () => closedClientSide.push(true));
    await server.close({ destroyConnections: true });
    expect(server.connections).toBe(0);
    await waitUntil(() => closedClientSide.length === 50, 5000, 'clients see the close');
    await waitUntil(() => stats().connectionsEstablished === 0, 5000, 'no connection left');
  });
});
