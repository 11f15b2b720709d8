// sendmsg() failing with ENOBUFS / ENOMEM (LD_PRELOAD shim, native/test-support/fault_inject.c):
// exactly the connections whose write failed error cleanly ('error' with that code and syscall
// 'write', then 'close' with hadError), the others keep working, and nothing leaks: counters
// balance and the descriptor count returns to where it was. recv() failing with ECONNRESET /
// ENOMEM does the same on the read side.
import { afterEach, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dialer, type Connection } from '../lib/index';
import { child, waitUntil, type Child } from './helpers';
import { onNativeBackend, preload, statsOf } from './fault-helpers';
import { collect, roundTrip } from './util-echo';

const CASES: [string, string, string][] = [
  ['SENDMSG', 'ENOBUFS', 'write'],
  ['SENDMSG', 'ENOMEM', 'write'],
  ['RECV', 'ECONNRESET', 'read'],
  ['RECV', 'ENOMEM', 'read'],
];

describe.runIf(process.platform === 'linux' && onNativeBackend)('send/recv faults (LD_PRELOAD shim; Linux, native backend)', () => {
  let srv: Child | undefined;
  const conns: Connection[] = [];
  afterEach(() => {
    for (const c of conns.splice(0)) c.destroy();
    srv?.kill('SIGKILL');
  });

  it.each(CASES)('%s -> %s: those connections error cleanly, the rest go on', async (call, code, syscall) => {
    const arm = join(tmpdir(), `myriad-fault-${call}-${process.pid}-${code}`);
    rmSync(arm, { force: true });
    const FAILING = 3;
    srv = child('fault-server.js', ['{}'], {
      env: { LD_PRELOAD: preload(), [`MYRIAD_FAULT_${call}`]: code, [`MYRIAD_FAULT_${call}_COUNT`]: String(FAILING), MYRIAD_FAULT_ARM_FILE: arm },
    });
    const { port } = await srv.message((m) => m.event === 'listening');
    const d = new Dialer();
    for (let i = 0; i < 12; i++) conns.push(await d.connect({ host: '127.0.0.1', port }));
    for (const c of conns) expect((await roundTrip(c, 'warm')).toString()).toBe('warm');
    const base = await statsOf(srv, (x) => x.live === 12);

    const seen = conns.map((c) => collect(c));
    writeFileSync(arm, '');
    try {
      for (const c of conns) c.write('x'.repeat(1000));
      // FAILING server connections hit the fault and are closed by it; the peers see the close
      // (a FIN after a send fault, a reset after a read fault left the request unread).
      await waitUntil(() => seen.filter((s) => s.closed() || s.ended()).length === FAILING, 10_000, 'the faulted connections closed');
    } finally {
      rmSync(arm, { force: true });
    }
    const s = await statsOf(srv, (x) => x.live === 12 - FAILING);
    expect(s.connErrors).toEqual({ [`${code}/${syscall}`]: FAILING });
    expect(s.closedWithError).toBe(FAILING);
    // The others got their echo and still work.
    const gone = (i: number) => seen[i].closed() || seen[i].ended();
    expect(conns.filter((_, i) => !gone(i)).length).toBe(12 - FAILING);
    for (const [i, c] of conns.entries()) {
      if (gone(i)) continue;
      await waitUntil(() => seen[i].bytes().length === 1000, 5000, 'echo');
      expect((await roundTrip(c, 'still')).toString()).toBe('still');
    }
    for (const c of conns.splice(0)) c.destroy();
    const end = await statsOf(srv, (x) => x.live === 0);
    expect(end.stats.connectionsAccepted).toBe(end.stats.connectionsClosed);
    expect(end.stats.connectionsEstablished).toBe(0);
    expect(end.stats.bytesBuffered).toBe(0);
    expect(end.fds).toBe(base.fds - 12);
    srv.send({ cmd: 'exit' });
    expect(await srv.exited, srv.stderr()).toBe(0); // (under ASan: no leak report at exit either)
    expect(srv.stderr()).toContain(`injected ${call === 'SENDMSG' ? `accept4=0 sendmsg=${FAILING}` : `accept4=0 sendmsg=0 recv=${FAILING}`}`);
  });
});
