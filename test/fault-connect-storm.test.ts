// A connect storm past the listen backlog: the server (stopped with SIGSTOP, so its accept queue
// of 8 fills at once) sees thousands of SYNs it cannot queue. Nothing crashes; the drops show in
// the counters (the kernel's ListenOverflows, which `myriad monitor` reports, and the dialer's
// connectionFailures for the connects that timed out); every connection the server accepted is
// served once it runs again; every attempt is accounted for (dialed + failed = attempts); a
// second wave of connects paced to the backlog is established and served in full. The storm's
// connect timeout (2 s) ends before the server resumes (2.5 s), so failures are certain.
// Runs in its own network namespace (unshare -n), so the kernel counters are this test's alone.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { child } from './helpers';

// (LD_PRELOAD dropped for these helper tools: under scripts/test-hardening.sh it holds the ASan
// runtime, which is for node, not for unshare and ip.)
const toolEnv = { ...process.env, LD_PRELOAD: '' };
const canUnshare = process.platform === 'linux' && spawnSync('unshare', ['-n', '--', 'ip', 'link', 'set', 'lo', 'up'], { env: toolEnv }).status === 0;

describe.runIf(process.platform === 'linux')('connect storm past the listen backlog (Linux)', () => {
  it('no crash, drops counted, every accepted connection served', async () => {
    // Needs root (CAP_SYS_ADMIN) for unshare -n and iproute2's ip; CI runs as root with both.
    expect(canUnshare, 'unshare -n and ip link set lo up must work (root, iproute2)').toBe(true);
    const COUNT = 3000;
    const c = child('fault-connect-storm.js', [String(COUNT), '2500', '2000'], {
      prefix: ['unshare', '-n', '--', 'sh', '-c', 'LD_PRELOAD= ip link set lo up && exec "$0" "$@"'],
    });
    const r = await c.message((m) => m.event === 'result' || m.event === 'error', 90_000).finally(() => setTimeout(() => c.kill(), 5000));
    console.log('connect storm:', JSON.stringify({ ...r, dialer: undefined }));
    expect(r.event).toBe('result');
    expect(r.serverAlive).toBe(true);
    expect(r.overflows).toBeGreaterThan(0);                              // the kernel dropped SYNs/ACKs
    expect(r.failed).toBeGreaterThan(0);                                 // some connects timed out ...
    expect(r.dialer.connectionFailures).toBe(r.failed);                  // ... and the counters say so
    expect(r.established + r.failed).toBe(COUNT);                        // every attempt accounted for
    expect(r.dialer.connectionsDialed).toBe(r.established);
    expect(r.established).toBeGreaterThan(0);
    expect(r.served).toBeGreaterThan(0);
    expect(r.served).toBe(r.serverAccepted);                             // every accepted one served
    expect(r.serverAccepted).toBeLessThanOrEqual(r.established);         // (see the fixture on ACK drops)
    expect(r.serverLive).toBe(r.serverAccepted);
    expect(r.wave).toBe(500);                                            // the server recovered
    expect(r.waveServed).toBe(500);
    expect(await c.exited).toBe(0);
  }, 120_000);
});
