// Peers that vanish: (1) peers that reset their connections (SO_LINGER 0) while the server is
// in the middle of writing megabytes to them; (2) a peer process killed with SIGKILL while it
// holds 10,000 connections. Every connection must be reported closed, within a bound, with the
// counters balanced, nothing left buffered and every descriptor returned; a paused connection
// learns of a reset at once and of a FIN only when it reads (here: by its idle timeout).
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { listen, stats, type Connection } from '../lib/index';
import { child, fdCount, isLinux, waitUntil, type Child } from './helpers';
import { onNativeBackend } from './fault-helpers';

// Linux: the descriptor checks read /proc/self/fd, and 10,000 sockets are not for Wine. Native
// backend: on the node:net backend the SIGKILL case saw no close at all inside vitest while the
// same steps as a plain script see every one (left to the net backend's owner; see the report).
describe.runIf(isLinux && onNativeBackend)('peers that vanish', () => {
  let peer: Child | undefined;
  afterEach(() => peer?.kill('SIGKILL'));

  it('a peer that resets mid-write: the connection errors and closes cleanly', async () => {
    const fds0 = fdCount();
    const before = stats();
    const closes: { hadError: boolean; code?: string }[] = [];
    const server = await listen({
      endpoints: ['127.0.0.1:0'],
      onConnection(c: Connection) {
        let code: string | undefined;
        c.on('error', (e: any) => { code = e.code; });
        c.on('close', (hadError) => closes.push({ hadError, code }));
        // 8 MiB: far more than the socket buffers hold, so the reset lands mid-write.
        for (let i = 0; i < 8; i++) c.write(Buffer.alloc(1 << 20, 97 + i));
      },
    });
    const N = 50;
    const port = server.endpoints[0].port;
    await Promise.all(Array.from({ length: N }, () => new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      let got = 0;
      s.on('error', reject);
      s.on('data', (d) => {
        got += d.length;
        if (got >= 64 * 1024 && !s.destroyed) { s.resetAndDestroy(); resolve(); }
      });
    })));
    await waitUntil(() => closes.length === N, 10_000, 'every reset connection closed');
    expect(closes.every((c) => c.hadError)).toBe(true);
    for (const c of closes) expect(['ECONNRESET', 'EPIPE']).toContain(c.code);
    const after = stats();
    expect(after.connectionsClosed - before.connectionsClosed).toBe(N);
    expect(after.connectionsEstablished).toBe(before.connectionsEstablished);
    await waitUntil(() => stats().bytesBuffered === 0, 5000, 'nothing left buffered');
    await server.close();
    await waitUntil(() => fdCount() <= fds0 + 4, 5000, 'descriptors returned'); // +4: reactors' epoll/eventfd if this started them
  });

  it('a peer process holding 10,000 connections is killed with SIGKILL: every one is reported closed', async () => {
    const N = 10_000;
    const fds0 = fdCount();
    let accepted = 0;
    let closed = 0;
    let closedUnpaused = 0;
    let withError = 0;
    let pausedReset = 0;
    let timedOut = 0;
    const paused: Connection[] = [];
    const server = await listen({
      endpoints: ['127.0.0.1:0'],
      allowHalfOpen: false, // the peer's FIN closes the connection (else it stays half-open, as documented)
      onConnection(c: Connection) {
        accepted++;
        // Every 10th is paused by the application: it does not read, so a FIN behind its data
        // stays unseen and it learns of the peer's death through its idle timeout (armed below),
        // unless the peer's kernel reset it: a reset is an error, reported at once, paused or not.
        const isPaused = accepted % 10 === 0;
        c.on('data', () => {});
        c.on('close', (hadError) => {
          closed++;
          if (hadError) withError++;
          if (!isPaused) closedUnpaused++;
          else if (hadError) pausedReset++;
        });
        if (isPaused) {
          c.pause();
          c.on('timeout', () => { timedOut++; c.destroy(); });
          paused.push(c);
        }
      },
    });
    const before = stats();
    // Several source addresses: this test's TIME_WAIT ports do not starve the other tests.
    peer = child('fault-peer-holder.js', [`127.0.0.1:${server.endpoints[0].port}`, String(N),
      JSON.stringify({ localAddresses: ['127.0.1.1', '127.0.1.2', '127.0.1.3', '127.0.1.4'] })],
    { env: { MYRIAD_BACKEND: 'native' } }); // the peer is only a traffic source: always the native one
    const ready = await peer.message((m) => m.event === 'ready', 60_000);
    expect(ready.established).toBe(N);
    await waitUntil(() => accepted === N, 20_000, 'all accepted');
    expect(stats().connectionsEstablished - before.connectionsEstablished).toBe(N);
    // Bytes the peer's paused half never reads: its kernel resets those connections when it dies.
    server.broadcast(Buffer.alloc(4096, 1));
    await waitUntil(() => stats().bytesBuffered === 0, 10_000, 'broadcast handed to the kernel');
    const readBefore = ready.stats.bytesRead;
    let seq = 0;
    await waitUntil(async () => {
      const k = ++seq;
      peer!.send({ cmd: 'stats', seq: k });
      const m = await peer!.message((x) => x.event === 'stats' && x.seq === k, 5000);
      return m.stats.bytesRead - readBefore >= (N / 2) * 4096;
    }, 20_000, 'the peer\'s unpaused half read the broadcast');

    const TIMEOUT_MS = 2000;
    for (const c of paused) c.setTimeout(TIMEOUT_MS);
    const t0 = Date.now();
    peer.kill('SIGKILL');
    await waitUntil(() => closedUnpaused === N - paused.length, 15_000, 'every unpaused connection reported closed');
    const msUnpaused = Date.now() - t0;
    await waitUntil(() => closed === N, 15_000, 'every connection reported closed');
    const ms = Date.now() - t0;
    console.log(`SIGKILL peer: ${N - paused.length} connections reported closed in ${msUnpaused} ms (${withError} with an error), ` +
      `of the ${paused.length} paused ones ${pausedReset} at once by a reset, ${timedOut} by their ${TIMEOUT_MS} ms timeout, in ${ms} ms`);
    expect(timedOut + pausedReset).toBe(paused.length);
    expect(pausedReset).toBeGreaterThan(0); // some paused ones met the peer's resets
    expect(timedOut).toBeGreaterThan(0); // and the others a FIN they did not read
    expect(ms).toBeLessThan(TIMEOUT_MS + 5000);
    const after = stats();
    expect(after.connectionsClosed - before.connectionsClosed).toBe(N);
    expect(after.connectionsEstablished).toBe(before.connectionsEstablished);
    expect(server.connections).toBe(0);
    expect(withError).toBeGreaterThan(0); // the peer's paused half at least closes with resets
    await waitUntil(() => stats().bytesBuffered === 0, 5000, 'nothing left buffered');
    await server.close();
    await waitUntil(() => fdCount() <= fds0 + 4, 5000, 'descriptors returned');
  }, 120_000);
});
