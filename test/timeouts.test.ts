// Idle timeouts run on the reactors' timer wheel: 'timeout' fires for idle connections, not for
// active ones; closeOnTimeout destroys; the server-wide idleTimeoutMs applies to every connection.
import { describe, expect, it } from 'vitest';
import { listen, Dialer, type Connection } from '../lib/index';
import { scaled, sleep, waitUntil } from './helpers';

describe('timeouts', () => {
  it("fires 'timeout' on an idle connection and not on an active one", async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => c.on('data', (d) => c.write(d)) });
    const d = new Dialer();
    const idle = await d.connect(server.endpoints[0]);
    const active = await d.connect(server.endpoints[0]);
    let idleFired = 0;
    let activeFired = 0;
    const t0 = Date.now();
    let firedAt = 0;
    idle.setTimeout(200);
    idle.on('timeout', () => { idleFired++; firedAt ||= Date.now() - t0; });
    active.setTimeout(200, () => { activeFired++; });
    active.on('data', () => {});
    const pinger = setInterval(() => active.write('x'), 50);
    await sleep(700);
    clearInterval(pinger);
    active.setTimeout(0); // 0 turns it off: it stays silent from now on, though idle
    expect(idleFired).toBe(1); // once, not again without new activity
    expect(firedAt).toBeGreaterThanOrEqual(190);
    expect(activeFired).toBe(0);
    // Activity re-arms it.
    idle.on('data', () => {});
    idle.write('wake');
    await waitUntil(() => idleFired === 2, 2000, 'second timeout after activity');
    await sleep(400);
    expect(activeFired).toBe(0);
    idle.destroy();
    active.destroy();
    await server.close({ destroyConnections: true });
  });

  it('closeOnTimeout destroys the connection', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const conn = await new Dialer({ closeOnTimeout: true, idleTimeoutMs: 150 }).connect(server.endpoints[0]);
    const order: string[] = [];
    conn.on('timeout', () => order.push('timeout'));
    conn.on('error', (e: any) => order.push(`error:${e.code}`));
    conn.on('close', (hadError) => order.push(`close:${hadError}`));
    await waitUntil(() => order.length === 3, 3000, 'close after timeout');
    expect(order).toEqual(['timeout', 'error:ETIMEDOUT', 'close:true']);
    await server.close({ destroyConnections: true });
  });

  it('server idleTimeoutMs fires for many idle connections at once, and not for active ones', async () => {
    const fired = new Set<number>();
    const conns: Connection[] = [];
    // Generous margins (ping every 100 ms, timeout 1 s): a loaded CI machine stalls for a while.
    const idleMs = scaled(1000, 3000);
    const server = await listen({ endpoints: ['127.0.0.1:0'], idleTimeoutMs: idleMs, onConnection: (c) => {
      conns.push(c);
      c.on('data', () => {});
      c.on('timeout', () => fired.add(c.remotePort!));
    } });
    const n = scaled(2000, 40);
    const clients = await new Dialer().connectMany(server.endpoints[0], n);
    const active = clients.slice(0, n / 2);
    const pinger = setInterval(() => { for (const c of active) c.write('.'); }, 100);
    const idlePorts = new Set(clients.slice(n / 2).map((c) => c.localPort!));
    await waitUntil(() => fired.size >= n / 2, 10_000 + idleMs, 'the idle half timed out');
    await sleep(idleMs + 200); // the active ones had time to time out too, had they been idle
    clearInterval(pinger);
    expect(conns.length).toBe(n);
    expect(fired.size).toBe(n / 2);
    for (const p of fired) expect(idlePorts.has(p)).toBe(true);
    for (const c of clients) c.destroy();
    await server.close({ destroyConnections: true });
  });
});
