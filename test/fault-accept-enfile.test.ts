// accept() failing with ENFILE / EMFILE / ENOMEM / ENOBUFS (injected by the LD_PRELOAD shim,
// native/test-support/fault_inject.c, only while the test arms it): the server keeps serving the
// connections it has, reports the failures ('error' on the server, stats().acceptErrors), takes
// nothing off the backlog meanwhile, and accepts every waiting connection once accept() works again.
// (The real EMFILE, through a small descriptor limit, is test/accept-emfile-keeps-serving.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dialer, type Connection } from '../lib/index';
import { child, sleep, type Child } from './helpers';
import { onNativeBackend, preload, statsOf } from './fault-helpers';
import { roundTrip } from './util-echo';

describe.runIf(process.platform === 'linux' && onNativeBackend)('accept() faults (LD_PRELOAD shim; Linux, native backend)', () => {
  let srv: Child | undefined;
  const conns: Connection[] = [];
  afterEach(() => {
    for (const c of conns.splice(0)) c.destroy();
    srv?.kill('SIGKILL');
  });

  it.each(['ENFILE', 'EMFILE', 'ENOMEM', 'ENOBUFS'])('%s: keeps serving, then accepts the backlog', async (code) => {
    const arm = join(tmpdir(), `myriad-fault-accept-${process.pid}-${code}`);
    rmSync(arm, { force: true });
    srv = child('fault-server.js', ['{}'], {
      env: { LD_PRELOAD: preload(), MYRIAD_FAULT_ACCEPT: code, MYRIAD_FAULT_ARM_FILE: arm },
    });
    const { port } = await srv.message((m) => m.event === 'listening');
    const d = new Dialer();
    for (let i = 0; i < 20; i++) conns.push(await d.connect({ host: '127.0.0.1', port }));
    for (const c of conns) expect((await roundTrip(c, 'before')).toString()).toBe('before');

    writeFileSync(arm, '');
    try {
      // Connects complete in the kernel's backlog; accept() now fails for every one of them.
      const late = await Promise.all(Array.from({ length: 30 }, () => d.connect({ host: '127.0.0.1', port })));
      conns.push(...late);
      const s = await statsOf(srv, (x) => (x.acceptErrors[code] ?? 0) >= 2);
      expect(s.stats.acceptErrors).toBeGreaterThanOrEqual(2);
      expect(s.accepted).toBe(20);
      // Still serving the first 20 while accept() keeps failing (the listener retries every 100 ms).
      for (const c of conns.slice(0, 20)) expect((await roundTrip(c, 'during')).toString()).toBe('during');
      await sleep(300);
      expect((await statsOf(srv)).accepted).toBe(20);
    } finally {
      rmSync(arm, { force: true });
    }
    // accept() works again: the 30 waiting connections are accepted and served.
    const after = await statsOf(srv, (x) => x.accepted === 50);
    expect(after.live).toBe(50);
    for (const c of conns.slice(20)) expect((await roundTrip(c, 'after')).toString()).toBe('after');
    for (const c of conns.splice(0)) c.destroy();
    const end = await statsOf(srv, (x) => x.live === 0);
    expect(end.stats.connectionsAccepted).toBe(end.stats.connectionsClosed);
    expect(end.stats.connectionsEstablished).toBe(0);
    srv.send({ cmd: 'exit' });
    expect(await srv.exited, srv.stderr()).toBe(0); // (under ASan: no leak report at exit either)
    expect(srv.stderr()).toMatch(new RegExp(`myriad-fault: accept4 fd=\\d+ -> ${code}`));
    expect(srv.stderr()).not.toMatch(/myriad-fault: injected accept4=0 /);
  });
});
