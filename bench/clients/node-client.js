'use strict';
// node-client.js - the idiomatic node:net client: net.connect() per connection from the default
// source address (no localAddress, as most node code does), at most --inflight connecting at
// once; then hold. The anchors' netclient.js with the bench's protocol (see myriad-dialer.js).
//   node --expose-gc node-client.js -t 127.0.0.1:9000 -n 15000 [--inflight 1024] [--warm 1000] [--wait-go]
const net = require('node:net');
const { parseArgs } = require('node:util');

const { values: o } = parseArgs({
  options: {
    target: { type: 'string', short: 't' },
    n: { type: 'string', short: 'n', default: '1000' },
    inflight: { type: 'string', default: '1024' },
    warm: { type: 'string', default: '0' },
    'wait-go': { type: 'boolean', default: false },
    'hold-seconds': { type: 'string', default: '120' },
    settle: { type: 'boolean', default: false }, // measure memory once V8 has shrunk its heap (idle scenario)
  },
});
const emit = (obj) => process.stdout.write(JSON.stringify({ tool: 'node-client', ...obj }) + '\n');
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
const i = o.target.lastIndexOf(':');
const host = o.target.slice(0, i), port = Number(o.target.slice(i + 1));
const noop = () => {};

// Opens n connections, at most `inflight` connecting at once. Resolves with the sockets that
// connected and the errors of the others, by code.
function openMany(n, inflight) {
  return new Promise((resolve) => {
    const socks = [];
    const errors = {};
    let started = 0, pending = 0, settled = 0, firstError;
    const settle = () => {
      if (++settled === n) resolve({ socks, errors, firstError });
      else pump();
    };
    const pump = () => {
      while (pending < inflight && started < n) {
        started++;
        pending++;
        let connecting = true;
        const s = net.connect({ host, port });
        s.on('data', noop);
        s.on('connect', () => { connecting = false; pending--; socks.push(s); settle(); });
        s.on('error', (e) => {
          if (!connecting) return;
          connecting = false;
          pending--;
          errors[e.code] = (errors[e.code] || 0) + 1;
          firstError ??= e.code;
          settle();
        });
      }
    };
    if (n === 0) resolve({ socks, errors, firstError });
    else pump();
  });
}

function waitGo() {
  if (!o['wait-go']) return Promise.resolve();
  emit({ event: 'ready', pid: process.pid });
  return new Promise((resolve) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (c) => { buf += c; if (buf.includes('go\n')) resolve(); });
  });
}

let held;
(async () => {
  const N = Number(o.n), inflight = Number(o.inflight), warm = Number(o.warm);
  if (warm > 0) {
    const w = await openMany(warm, inflight);
    await Promise.all(w.socks.map((s) => new Promise((r) => { s.on('close', r); s.destroy(); })));
    await sleep(100);
  }
  // With --settle both figures share a settled baseline; they differ in when the after-point is taken.
  const base = o.settle ? await settledMemory() : mem();
  const baseSettled = base;
  emit({ event: 'baseline', rss_kb: Math.round(base.rss / 1024) });
  await waitGo();
  const t0 = process.hrtime.bigint();
  const r = await openMany(N, inflight);
  held = r.socks;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  emit({ event: 'done', n: N, established: held.length, failed: N - held.length, time_s: +secs.toFixed(4),
    conns_per_s: Math.round(held.length / secs), first_error: r.firstError, errors: r.errors, sources: 0 });
  const n = held.length;
  await sleep(100);
  const mm = mem();
  const ms = o.settle ? await settledMemory() : undefined;
  const per = (a, b) => (n ? +((a - b) / n).toFixed(1) : null);
  emit({ event: 'memory', n, rss_per_conn_b: per(mm.rss, base.rss), heap_per_conn_b: per(mm.heap, base.heap), rss_kb: Math.round(mm.rss / 1024),
    settled_rss_per_conn_b: ms ? per(ms.rss, baseSettled.rss) : null });
  setTimeout(() => process.exit(0), Number(o['hold-seconds']) * 1000);
})();
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
