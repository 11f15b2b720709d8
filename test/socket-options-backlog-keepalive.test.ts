// Options whose effect the kernel shows: the listen backlog (ss: Send-Q of a LISTEN socket) and
// keep-alive timers (ss -o: timer:(keepalive,...)), for servers, dialers and setKeepAlive().
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { listen, Dialer } from '../lib/index';
import { waitUntil } from './helpers';

function ss(args: string[]): string {
  return execFileSync('ss', args, { encoding: 'utf8' });
}

// Linux only: read back through iproute2's ss.
describe.runIf(process.platform === 'linux')('socket options seen by the kernel', () => {
  it('backlog: the OS maximum by default, the given value otherwise', async () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
    const a = await listen({ endpoints: ['127.0.0.1:0'] });
    const b = await listen({ endpoints: ['127.0.0.1:0'], backlog: 100 });
    const backlogOf = (port: number) => {
      const line = ss(['-Hltn', `sport = :${port}`]).trim().split('\n')[0];
      return Number(line.trim().split(/\s+/)[2]); // State Recv-Q Send-Q ...: Send-Q is the backlog
    };
    expect(backlogOf(a.endpoints[0].port)).toBe(somaxconn);
    expect(backlogOf(b.endpoints[0].port)).toBe(100);
    await a.close();
    await b.close();
  });

  it('keepAlive on servers, dialers and setKeepAlive() arms the kernel keep-alive timer', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], keepAlive: { initialDelayMs: 7_000 } });
    const port = server.endpoints[0].port;
    const plain = await new Dialer().connect(server.endpoints[0]);
    const ka = await new Dialer({ keepAlive: { initialDelayMs: 9_000 } }).connect(server.endpoints[0]);
    const later = await new Dialer().connect(server.endpoints[0]);
    later.setKeepAlive(true, 11_000);
    // [local port, line] for every established socket of this server, both sides.
    const lines = () => ss(['-Htno', 'state', 'established', `( sport = :${port} or dport = :${port} )`]).trim().split('\n')
      .map((line) => [Number(line.trim().split(/\s+/)[2].split(':').pop()), line] as const);
    const timers = () => new Map(lines().filter(([local]) => local !== port));
    await waitUntil(() => timers().get(later.localPort!)?.includes('keepalive') ?? false, 5000, 'setKeepAlive applied');
    const t = timers();
    expect(t.get(plain.localPort!)).not.toContain('keepalive');
    expect(t.get(ka.localPort!)).toMatch(/timer:\(keepalive,/);
    expect(t.get(later.localPort!)).toMatch(/timer:\(keepalive,/);
    // The server side of every connection has it (from the server option): 7 s idle.
    const serverSide = lines().filter(([local]) => local === port).map(([, line]) => line);
    expect(serverSide.length).toBe(3);
    for (const line of serverSide) {
      // ss prints the time left as seconds.milliseconds (with an "ms" suffix in this version).
      const secs = Number(/timer:\(keepalive,([0-9.]+)/.exec(line)?.[1]);
      expect(secs).toBeGreaterThan(5);
      expect(secs).toBeLessThanOrEqual(7);
    }
    later.setKeepAlive(false);
    await waitUntil(() => !(timers().get(later.localPort!)?.includes('keepalive') ?? true), 5000, 'keep-alive off');
    for (const c of [plain, ka, later]) c.destroy();
    await server.close({ destroyConnections: true });
  });
});
