'use strict';
// node-server.js - the idiomatic node:net server: net.createServer, a per-socket 'data' listener,
// socket.write, a Set of sockets looped over for a broadcast. The anchors' netserver.js
// (../shared/anchors) with the bench's memory protocol added: the same modes, the same JSON lines
// as cserver.c and myriad-server.js, and the "baseline" stdin command (see myriad-server.js).
// Run: node --expose-gc node-server.js -p PORT -m hold|echo|broadcast|churn [-n N] [-R rounds] [--pause-ms ms]
const net = require('node:net');
const { parseArgs } = require('node:util');

const { values: o } = parseArgs({
  options: {
    port: { type: 'string', short: 'p' },
    addr: { type: 'string', short: 'a', default: '127.0.0.1' },
    mode: { type: 'string', short: 'm', default: 'hold' },
    n: { type: 'string', short: 'n', default: '0' },
    rounds: { type: 'string', short: 'R', default: '3' },
    'pause-ms': { type: 'string', default: '1000' },
    backlog: { type: 'string', default: '65535' }, // as cserver and myriad; the kernel caps it at somaxconn (node's default is 511)
    'wait-baseline': { type: 'boolean', default: false },
    settle: { type: 'boolean', default: false }, // measure memory once V8 has shrunk its heap (idle scenario)
  },
});
const mode = o.mode, N = Number(o.n), rounds = Number(o.rounds), pauseMs = Number(o['pause-ms']);
if (!o.port || !['hold', 'echo', 'broadcast', 'churn'].includes(mode)) {
  console.error('usage: node --expose-gc node-server.js -p port -m hold|echo|broadcast|churn [-n N] [-R rounds] [--pause-ms ms]');
  process.exit(2);
}
const emit = (obj) => process.stdout.write(JSON.stringify({ tool: 'node-server', ...obj }) + '\n');
const now = () => Number(process.hrtime.bigint()) / 1e9;
const gc = () => { if (typeof global.gc === 'function') { global.gc(); global.gc(); } };
const mem = () => { gc(); const m = process.memoryUsage(); return { rss: m.rss, heap: m.heapUsed, external: m.external }; };
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
const noop = () => {};

const conns = new Set();
let accepted = 0, closed = 0, tFirst = -1, base, baseSettled, counting = !o['wait-baseline'], done = false;
const msg = Buffer.from('broadcast-message-0123456789abcdef0123456789abcdef0123456789abc\n'); // 64 bytes

const server = net.createServer((sock) => {
  conns.add(sock);
  sock.on('error', noop);
  sock.on('close', () => { conns.delete(sock); closed++; });
  if (mode === 'echo') {
    sock.setNoDelay(true);
    sock.on('data', (d) => sock.write(d));
  } else {
    sock.on('data', noop); // discard input; in churn mode the peer's FIN ends the socket (allowHalfOpen: false)
  }
  if (!counting) return;
  if (tFirst < 0) tFirst = now();
  if (++accepted === N && N > 0) reached(now());
});

async function reached(t) {
  const acceptS = t - tFirst;
  emit({ event: 'reached', mode, n: N, live: conns.size, accept_s: +acceptS.toFixed(4), accepts_per_s: Math.round(N / acceptS) });
  await sleep(50);
  const m = mem();
  const ms = o.settle ? await settledMemory() : undefined;
  emit({
    event: 'memory', n: N, live: conns.size, rss_base_kb: Math.round(base.rss / 1024), rss_kb: Math.round(m.rss / 1024),
    rss_per_conn_b: +((m.rss - base.rss) / N).toFixed(1), heap_per_conn_b: +((m.heap - base.heap) / N).toFixed(1),
    external_per_conn_b: +((m.external - base.external) / N).toFixed(1),
    settled_rss_per_conn_b: ms ? +((ms.rss - baseSettled.rss) / N).toFixed(1) : null,
  });
  if (mode !== 'broadcast') return;
  for (let r = 1; r <= rounds; r++) {
    await sleep(pauseMs);
    let sent = 0;
    const t0 = now();
    for (const s of conns) { s.write(msg); sent++; }
    const t1 = now();
    emit({ event: 'broadcast', round: r, conns: conns.size, sent, failed: 0, send_loop_ms: +((t1 - t0) * 1e3).toFixed(3) });
  }
}

server.on('error', (e) => { emit({ event: 'error', code: e.code, message: e.message }); process.exit(2); });
server.listen({ port: Number(o.port), host: o.addr, backlog: Number(o.backlog) }, () => {
  base = mem();
  emit({ event: 'listening', mode, port: server.address().port, pid: process.pid, rss_kb: Math.round(base.rss / 1024) });
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
      if (o.settle) { settledMemory().then((b) => { base = b; baseSettled = b; counting = true; emit({ event: 'baseline', live: conns.size, rss_kb: Math.round(base.rss / 1024), settled_rss_kb: Math.round(b.rss / 1024) }); }); continue; }
      counting = true;
      emit({ event: 'baseline', live: conns.size, rss_kb: Math.round(base.rss / 1024), heap_kb: Math.round(base.heap / 1024) });
    } else if (line === 'exit') finish();
  }
});
function finish() {
  if (done) return;
  done = true;
  emit({ event: 'exit', mode, accepted, closed, live: conns.size });
  process.exit(0);
}
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, finish);
