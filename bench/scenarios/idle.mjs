// idle: memory per idle connection. Server side: 19,000 connections from the C load generator
// held by each server implementation; dialer side: 19,000 connections opened by each dialer and
// held by a C server. Process memory growth (RSS, after gc) per connection, measured from a
// baseline taken after a warm-up storm of 1,000 connections opened and closed (node's own code
// pages and first-use allocations are then not counted as per-connection cost; slot tables that
// grow with the count still are). Both the baseline and the figure are taken once V8's memory
// reducer has shrunk the heap after the storm (up to 10 s idle; the connections are idle anyway),
// so the transient garbage of a connection storm is not counted as what an idle connection holds.
// Kernel memory: slab growth (host-wide) per connection pair.
import { startServer, warmUpAndBaseline, startLoadgen, startDialer, SRC4 } from '../lib/ctx.mjs';
import { slabBytes } from '../lib/system.mjs';
import { sleep } from '../lib/proc.mjs';

export default {
  name: 'idle',
  title: 'Idle connections: process memory per connection',
  cases: (o) => [
    { case: 'server', impls: ['c', 'myriad', 'myriad-net', 'node'], params: { n: o.connections ?? 19_000, warm: 1000 } },
    { case: 'dialer', impls: ['myriad', 'myriad-net', 'node'], params: { n: o.connections ?? 19_000, warm: 1000 } },
  ],
  async measure(kase, impl, p) {
    if (kase === 'server') {
      const server = await startServer(impl, 'hold', { n: p.n, waitBaseline: impl !== 'c', settle: true });
      if (impl !== 'c') await warmUpAndBaseline(server, p.warm);
      await sleep(200);
      const s0 = slabBytes();
      const lg = startLoadgen(['-m', 'connect', '-n', String(p.n), '-s', SRC4, '-i', '1000', '--hold-seconds', '100']);
      const l = await lg.event('loadgen', 90_000);
      const reached = await server.event('reached', 60_000);
      const mem = impl === 'c' ? reached : await server.event('memory', 40_000);
      const s1 = slabBytes();
      return {
        n: p.n, established: l.established, rss_per_conn_b: mem.rss_per_conn_b, heap_per_conn_b: mem.heap_per_conn_b ?? null,
        settled_rss_per_conn_b: impl === 'c' ? mem.rss_per_conn_b : mem.settled_rss_per_conn_b,
        slab_per_pair_b: Math.round((s1 - s0) / p.n), accepts_per_s: reached.accepts_per_s, lg_conns_per_s: l.conns_per_s,
      };
    }
    // dialer side: a C server holds; the dialer under test opens p.n and holds them.
    await startServer('c', 'hold', { n: 0 });
    const d = startDialer(impl, { n: p.n, sources: impl === 'node' ? undefined : SRC4, warm: p.warm, cpu: 0, settle: true });
    const done = await d.event('done', 120_000);
    const mem = await d.event('memory', 40_000);
    if (done.established < p.n) throw new Error(`dialer established ${done.established} of ${p.n} (${done.first_error ?? 'no error'})`);
    return { n: p.n, established: done.established, rss_per_conn_b: mem.rss_per_conn_b, settled_rss_per_conn_b: mem.settled_rss_per_conn_b,
      heap_per_conn_b: mem.heap_per_conn_b, conns_per_s: done.conns_per_s };
  },
  metrics: [
    { case: 'server', key: 'rss_per_conn_b', label: 'server: process memory per idle connection, right after the storm', unit: 'B', better: 'lower', chart: true, chartTitle: 'idle: server memory per connection (B)' },
    { case: 'server', key: 'settled_rss_per_conn_b', label: 'server: same, once V8 has shrunk its heap (settled)', unit: 'B', better: 'lower' },
    { case: 'server', key: 'heap_per_conn_b', label: 'server: V8 heap per idle connection', unit: 'B', better: 'lower' },
    { case: 'server', key: 'slab_per_pair_b', label: 'kernel slab per connection pair (host-wide)', unit: 'B', better: 'lower' },
    { case: 'dialer', key: 'rss_per_conn_b', label: 'dialer: process memory per idle connection, right after the storm', unit: 'B', better: 'lower', chart: true, chartTitle: 'idle: dialer memory per connection (B)' },
    { case: 'dialer', key: 'settled_rss_per_conn_b', label: 'dialer: same, once V8 has shrunk its heap (settled)', unit: 'B', better: 'lower' },
    { case: 'dialer', key: 'heap_per_conn_b', label: 'dialer: V8 heap per idle connection', unit: 'B', better: 'lower' },
  ],
};
