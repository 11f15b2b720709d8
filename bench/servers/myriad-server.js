'use strict';
// myriad-server.js - the bench's server on myriad's public API. The SAME code runs on both
// backends (--backend native | net), so the two are compared through identical scenario code.
// Modes and output are those of the anchors' cserver.c / netserver.js (one JSON line per event):
//   hold       accept and keep (no per-connection listeners: what an idle connection costs)
//   echo       write back what arrives (noDelay)
//   broadcast  hold N, then R rounds of server.broadcast(64 bytes), --pause-ms apart
//   churn      answer the peer's FIN with FIN (allowHalfOpen: false), i.e. open/close cycles
// stdin commands (one per line): "baseline" (gc, take the memory baseline now: sent after a
// warm-up storm so node's own lazily compiled code is not counted per connection), "exit".
// Run: node --expose-gc myriad-server.js -p PORT -m MODE [-n N] [--backend native|net] [--threads 1]
const { parseArgs } = require('node:util');
const { join } = require('node:path');
const m = require(process.env.MYRIAD_DIST || join(__dirname, '..', '..', 'dist', 'index.js'));

const { values: o } = parseArgs({
  options: {
    port: { type: 'string', short: 'p' },
    addr: { type: 'string', short: 'a', default: '127.0.0.1' },
    mode: { type: 'string', short: 'm', default: 'hold' },
    n: { type: 'string', short: 'n', default: '0' },
    rounds: { type: 'string', short: 'R', default: '3' },
    'pause-ms': { type: 'string', default: '1000' },
    backend: { type: 'string', default: 'native' },
    threads: { type: 'string', default: '1' },
    reuseport: { type: 'boolean', default: false },
    'wait-baseline': { type: 'boolean', default: false },
    settle: { type: 'boolean', default: false }, // measure memory once V8 has shrunk its heap (idle scenario)
  },
});
const mode = o.mode, N = Number(o.n), rounds = Number(o.rounds), pauseMs = Number(o['pause-ms']);
if (!o.port || !['hold', 'echo', 'broadcast', 'churn'].includes(mode)) {
  console.error('usage: node --expose-gc myriad-server.js -p port -m hold|echo|broadcast|churn [-n N] [--backend native|net]');
  process.exit(2);
}
const emit = (obj) => process.stdout.write(JSON.stringify({ tool: 'myriad-server', backend: o.backend, ...obj }) + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e9;
const gc = () => { if (typeof global.gc === 'function') { global.gc(); global.gc(); } };
const mem = () => { gc(); const u = process.memoryUsage(); return { rss: u.rss, heap: u.heapUsed, external: u.external }; };
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
const msg = Buffer.from('broadcast-message-0123456789abcdef0123456789abcdef0123456789abc\n'); // 64 bytes

m.configure({ backend: o.backend, threads: Number(o.threads) });
let server;
let base, baseSettled;
let counting = !o['wait-baseline'];
let accepted = 0, tFirst = -1, done = false;

function onConnection(c) {
  if (mode === 'echo') c.on('data', (d) => c.write(d));
  if (!counting) return;
  if (tFirst < 0) tFirst = now();
  if (++accepted === N && N > 0) reached(now());
}

async function reached(t) {
  const acceptS = t - tFirst;
  emit({ event: 'reached', mode, n: N, live: server.connections, accept_s: +acceptS.toFixed(4), accepts_per_s: Math.round(N / acceptS) });
  await sleep(50);
  const mm = mem();
  const ms = o.settle ? await settledMemory() : undefined;
  emit({
    event: 'memory', n: N, live: server.connections, rss_base_kb: Math.round(base.rss / 1024), rss_kb: Math.round(mm.rss / 1024),
    rss_per_conn_b: +((mm.rss - base.rss) / N).toFixed(1), heap_per_conn_b: +((mm.heap - base.heap) / N).toFixed(1),
    external_per_conn_b: +((mm.external - base.external) / N).toFixed(1),
    settled_rss_per_conn_b: ms ? +((ms.rss - baseSettled.rss) / N).toFixed(1) : null,
  });
  if (mode !== 'broadcast') return;
  for (let r = 1; r <= rounds; r++) {
    await sleep(pauseMs);
    const t0 = now();
    const sent = server.broadcast(msg);
    const t1 = now();
    emit({ event: 'broadcast', round: r, conns: server.connections, sent, failed: 0, send_loop_ms: +((t1 - t0) * 1e3).toFixed(3) });
  }
}

(async () => {
  server = await m.listen({
    endpoints: [{ host: o.addr, port: Number(o.port) }],
    reusePort: o.reuseport,
    noDelay: mode === 'echo',
    allowHalfOpen: false, // as node:net's default: the peer's FIN is answered with ours, then it closes
    onConnection,
  });
  base = mem();
  emit({ event: 'listening', mode, port: server.endpoints[0].port, pid: process.pid, rss_kb: Math.round(base.rss / 1024) });
})().catch((err) => {
  emit({ event: 'error', code: err.code, message: err.message });
  process.exit(2);
});

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buf += chunk;
  let i;
  while ((i = buf.indexOf('\n')) >= 0) {
    const line = buf.slice(0, i).trim();
    buf = buf.slice(i + 1);
    if (line === 'baseline') {
      base = mem();
      if (o.settle) { settledMemory().then((b) => { base = b; baseSettled = b; counting = true; emit({ event: 'baseline', live: server ? server.connections : 0, rss_kb: Math.round(base.rss / 1024), settled_rss_kb: Math.round(b.rss / 1024) }); }); continue; }
      counting = true;
      emit({ event: 'baseline', live: server ? server.connections : 0, rss_kb: Math.round(base.rss / 1024), heap_kb: Math.round(base.heap / 1024) });
    } else if (line === 'exit') finish();
  }
});
process.stdin.on('end', () => {}); // stdin closing does not end the server

function finish() {
  if (done) return;
  done = true;
  emit({ event: 'exit', mode, accepted, live: server ? server.connections : 0, stats: m.stats() });
  process.exit(0);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, finish);
