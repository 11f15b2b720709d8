'use strict';
// myriad-dialer.js - the bench's dialer on myriad's public API (the same code on both backends):
// Dialer.connectMany() to ONE endpoint over a pool of source addresses, then hold.
//   node --expose-gc myriad-dialer.js -t 127.0.0.1:9000 -n 15000 [-s 127.0.0.1,127.0.0.2,...]
//        [--backend native|net] [--threads 1|N|default] [--max-pending 1024] [--warm 1000] [--wait-go] [--hold-seconds 60]
//        [--memory] [--settle]
// --warm N: open and close N connections first, then take the memory baseline (see BENCHMARKS.md).
// --wait-go: print {"event":"ready"} and start when "go" arrives on stdin (so several processes
// start together). --memory (or --settle): measure memory after connectMany (full GCs; off by
// default, since a process done early would run them while the others still connect).
// Output: JSON lines ready / baseline / done / memory.
const { parseArgs } = require('node:util');
const { join } = require('node:path');
const m = require(process.env.MYRIAD_DIST || join(__dirname, '..', '..', 'dist', 'index.js'));

const { values: o } = parseArgs({
  options: {
    target: { type: 'string', short: 't' },
    n: { type: 'string', short: 'n', default: '1000' },
    sources: { type: 'string', short: 's', default: '' },
    backend: { type: 'string', default: 'native' },
    threads: { type: 'string', default: '1' },
    'max-pending': { type: 'string', default: '1024' },
    warm: { type: 'string', default: '0' },
    'wait-go': { type: 'boolean', default: false },
    'hold-seconds': { type: 'string', default: '120' },
    settle: { type: 'boolean', default: false }, // measure memory once V8 has shrunk its heap (idle scenario)
    // Measure memory after connectMany (full GCs). Off by default: in the connect scenario a
    // process that is done early would run them while the others still connect.
    memory: { type: 'boolean', default: false },
  },
});
const emit = (obj) => process.stdout.write(JSON.stringify({ tool: 'myriad-dialer', backend: o.backend, ...obj }) + '\n');
const gc = () => { if (typeof global.gc === 'function') { global.gc(); global.gc(); } };
const mem = () => { gc(); const u = process.memoryUsage(); return { rss: u.rss, heap: u.heapUsed }; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Idle memory is measured once V8 has given back what a burst left behind: its memory reducer
// shrinks the heap once allocation stops (8 s later by default; the bench starts these processes
// with --gc-memory-reducer-start-delay-ms=500). Before that, RSS still holds the garbage of the
// connection storm. Waits (without GCs of its own, which would restart the reducer's clock) until
// RSS drops by 3% or 8 s pass, then measures after a full GC.
async function settledMemory() {
  const first = mem().rss; // one full GC; then hands off, so the reducer's timer is not reset
  for (let t = 0; t < 32 && process.memoryUsage.rss() > first * 0.97; t++) await sleep(250);
  await sleep(500);
  return mem();
}
const N = Number(o.n);
// --threads default: the library's own default (one reactor per CPU, at most 8), as users get it.
m.configure(o.threads === 'default' ? { backend: o.backend } : { backend: o.backend, threads: Number(o.threads) });
const sources = o.sources ? o.sources.split(',') : undefined;
const dialer = new m.Dialer({ localAddresses: sources, maxPending: Number(o['max-pending']) });
let held = [];

function waitGo() {
  if (!o['wait-go']) return Promise.resolve();
  emit({ event: 'ready', pid: process.pid });
  return new Promise((resolve) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c) => { buf += c; if (buf.includes('go\n')) resolve(); });
  });
}

(async () => {
  const warm = Number(o.warm);
  if (warm > 0) {
    const w = await dialer.connectMany(o.target, warm).catch(() => []);
    for (const c of w) c.destroy();
    while (dialer.connections > 0) await sleep(10);
    await sleep(100);
  }
  // With --settle both figures share a settled baseline; they differ in when the after-point is taken.
  const base = o.settle ? await settledMemory() : mem();
  const baseSettled = base;
  emit({ event: 'baseline', rss_kb: Math.round(base.rss / 1024) });
  await waitGo();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let failed = 0, error;
  try {
    held = await dialer.connectMany(o.target, N, { onProgress: (e, f) => { failed = f; } });
  } catch (err) {
    error = { code: err.code, message: err.message };
    failed = N;
  }
  const t1 = process.hrtime.bigint();
  const secs = Number(t1 - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  emit({ event: 'done', n: N, established: held.length, failed, time_s: +secs.toFixed(4), conns_per_s: Math.round(held.length / secs),
    first_error: error?.code, sources: sources?.length ?? 0,
    // CLOCK_MONOTONIC (what uv_hrtime reads), comparable across processes and with the C loadgen's
    start_mono_s: Number(t0) / 1e9, end_mono_s: Number(t1) / 1e9,
    cpu_user_s: cpu.user / 1e6, cpu_sys_s: cpu.system / 1e6 });
  const n = held.length;
  if (!o.memory && !o.settle) return setTimeout(() => process.exit(0), Number(o['hold-seconds']) * 1000);
  await sleep(100);
  const mm = mem();
  const ms = o.settle ? await settledMemory() : undefined;
  const per = (a, b) => (n ? +((a - b) / n).toFixed(1) : null);
  emit({ event: 'memory', n, rss_per_conn_b: per(mm.rss, base.rss), heap_per_conn_b: per(mm.heap, base.heap), rss_kb: Math.round(mm.rss / 1024),
    settled_rss_per_conn_b: ms ? per(ms.rss, baseSettled.rss) : null });
  setTimeout(() => process.exit(0), Number(o['hold-seconds']) * 1000);
})().catch((err) => { emit({ event: 'error', code: err.code, message: err.message }); process.exit(2); });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
