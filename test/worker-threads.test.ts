// The addon is context-aware: several worker threads load it at once, each with its own engine;
// terminating a worker with live connections tears its engine down cleanly.
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { join } from 'node:path';
import { DIST, FIXTURES, fdCount, fdsAtMost, isLinux, waitUntil } from './helpers';

describe('worker_threads', () => {
  it('runs an engine per worker, at the same time', async () => {
    const fds = fdCount();
    const workers = ['a', 'b', 'c'].map((name) => new Worker(join(FIXTURES, 'worker-echo.js'), { workerData: { dist: DIST, name, n: 200 } }));
    const results = await Promise.all(workers.map((w) => once(w, 'message').then(([m]) => m)));
    for (const r of results) {
      expect(r.ok).toBe(true);
      expect(r.n).toBe(200);
      expect(r.stats.connectionsAccepted).toBe(200); // each engine counts only its own
    }
    for (const w of workers) w.postMessage('close');
    await Promise.all(workers.map((w) => once(w, 'message')));
    await Promise.all(workers.map((w) => w.terminate()));
    await waitUntil(() => fdsAtMost(fds), 5000, 'worker descriptors released');
  });

  it('terminating a worker with live connections closes them all', async () => {
    const fds = fdCount();
    const w = new Worker(join(FIXTURES, 'worker-echo.js'), { workerData: { dist: DIST, name: 'x', n: 300, leaveOpen: true } });
    const [m] = await once(w, 'message');
    expect(m.ok).toBe(true);
    if (isLinux) expect(fdCount()).toBeGreaterThan(fds + 600); // /proc/self/fd: Linux's view
    await w.terminate();
    await waitUntil(() => fdsAtMost(fds), 5000, 'all descriptors closed by teardown');
  });

  it('process.exit() inside a worker with live connections closes them all', async () => {
    // The worker's 'exit' joins its reactors (binding.shutdown) and leaves the sockets; the
    // environment's teardown right after must still close every one: the process lives on.
    const fds = fdCount();
    const w = new Worker(join(FIXTURES, 'worker-echo.js'), { workerData: { dist: DIST, name: 'y', n: 300, exitOnMessage: true } });
    const [m] = await once(w, 'message');
    expect(m.ok).toBe(true);
    if (isLinux) expect(fdCount()).toBeGreaterThan(fds + 600);
    w.postMessage('exit');
    const [code] = await once(w, 'exit');
    expect(code).toBe(0);
    await waitUntil(() => fdsAtMost(fds), 5000, 'all descriptors closed by teardown');
  });
});
