// win32-smoke.cjs - a smoke test of the raw binding, meant for the Windows build under Wine
// (also runs on Linux against build/Release):
//   bash scripts/test-win32.sh --smoke        or
//   source scripts/wine-env.sh && wine "$NODE_EXE" scripts/win32-smoke.cjs [connections] > out.txt 2>&1
// Checks: echo over one connection, N connections at once (default 2000) each echoing, a large
// transfer with backpressure, ECONNREFUSED, EADDRINUSE, reusePort -> ENOTSUP (Windows only), a
// connect timeout, an explicit local endpoint and a localPortRange. Exits non-zero on failure.
'use strict';
const path = require('node:path');
const root = path.join(__dirname, '..');
const b = require('node-gyp-build')(root);

const N = Number(process.argv[2] || 2000);
const EV = { Accept: 1, Connected: 2, ConnectFailed: 3, Data: 4, End: 5, Drain: 6, Error: 7, Close: 8,
  Timeout: 9, ListenOk: 10, ListenFailed: 11, ListenerClosed: 12, AcceptError: 13 };
const F = { reuseAddress: 1, reusePort: 2, noDelay: 8 };

let nextReq = 1;
const requests = new Map(); // request id -> {resolve}
const conns = new Map();    // conn id -> handler object
const servers = new Map();  // owner -> onAccept(id)
const log = [];

if (process.env.MYRIAD_SMOKE_THREADS) b.configure(Number(process.env.MYRIAD_SMOKE_THREADS));
b.init((records, arena) => {
  for (let i = 0; i < records.length; i += 4) {
    const [type, id, a, bb] = [records[i], records[i + 1], records[i + 2], records[i + 3]];
    switch (type) {
      case EV.ListenOk: case EV.ListenFailed: case EV.Connected: case EV.ConnectFailed: {
        const req = type === EV.Connected ? a : id; // Connected: id = connection, a = request
        const r = requests.get(req);
        requests.delete(req);
        if (type === EV.Connected) conns.set(id, {});
        r && r({ type, id, a, b: bb });
        break;
      }
      case EV.Accept: {
        const h = {};
        conns.set(id, h);
        const onAccept = servers.get(a);
        onAccept && onAccept(id, h);
        break;
      }
      case EV.Data: {
        const h = conns.get(id);
        h && h.data && h.data(Buffer.from(arena.subarray(a, a + bb)));
        break;
      }
      case EV.End: { const h = conns.get(id); h && h.end && h.end(); break; }
      case EV.Drain: { const h = conns.get(id); h && h.drain && h.drain(); break; }
      case EV.Error: { const h = conns.get(id); log.push(`error ${b.errorName(a)[0]} on ${b.syscalls[bb]}`); h && h.error && h.error(b.errorName(a)[0]); break; }
      case EV.Close: { const h = conns.get(id); conns.delete(id); h && h.close && h.close(a); break; }
      case EV.AcceptError: log.push(`accept error ${b.errorName(a)[0]}`); break;
      case EV.ListenerClosed: { const r = requests.get(`lc${id}`); r && r(); break; }
      default: break;
    }
  }
});
b.ref(true);

function request(fn) {
  const id = nextReq++;
  return new Promise((resolve) => { requests.set(id, resolve); fn(id); });
}
function listen(port, flags = F.reuseAddress, owner = 1, onAccept = () => {}) {
  servers.set(owner, onAccept);
  return request((id) => b.listen(id, '127.0.0.1', port, owner, 511, 64, flags, 0, 0));
}
function connect(port, opts = {}) {
  return request((id) => b.connect(id, '127.0.0.1', port, opts.localHost ?? null, opts.localPort ?? 0,
    opts.portLo ?? 0, opts.portHi ?? 0, opts.timeout ?? 0, 7, 32 | (opts.flags ?? 0), 0, 0));
}
function closeListener(lid) {
  return new Promise((resolve) => { requests.set(`lc${lid}`, resolve); b.closeListener(lid); });
}
const echo = (id, h) => { h.data = (d) => b.write(id, d, 1 << 20); h.end = () => b.end(id); };
function assert(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }
function withTimeout(p, ms, what) {
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// Connects, sends `payload`, collects the echo until the server's FIN, resolves with the bytes.
async function roundTrip(port, payload, opts) {
  const r = await connect(port, opts);
  if (r.type !== EV.Connected) throw new Error(`connect failed: ${b.errorName(r.a)[0]}`);
  const id = r.id;
  const h = conns.get(id);
  const chunks = [];
  const done = new Promise((resolve, reject) => {
    h.data = (d) => chunks.push(d);
    h.error = (code) => reject(new Error(code));
    h.close = () => resolve(Buffer.concat(chunks));
  });
  b.write(id, payload, 1 << 20);
  b.end(id);
  return { id, bytes: await done };
}

const results = [];
async function test(name, fn) {
  const t0 = Date.now();
  try {
    await withTimeout(fn(), 120000, name);
    results.push([name, 'ok']);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push([name, 'FAIL']);
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}

(async () => {
  console.log(`platform ${process.platform} node ${process.version} threads ${b.threads()}`);
  const srv = await listen(0, F.reuseAddress | F.noDelay, 1, echo);
  assert(srv.type === EV.ListenOk, `listen: ${b.errorName(srv.a)}`);
  const port = srv.b;
  const lid = srv.a;
  console.log(`listening on ${port}`);

  await test('echo', async () => {
    const { bytes } = await roundTrip(port, Buffer.from('hello myriad'));
    assert(bytes.toString() === 'hello myriad', `got ${bytes}`);
  });

  await test('endpoints', async () => {
    const r = await connect(port);
    assert(r.type === EV.Connected, 'connected');
    const ep = b.endpoints(r.id);
    assert(ep && ep[0] === '127.0.0.1' && ep[1] > 0 && ep[2] === '127.0.0.1' && ep[3] === port, JSON.stringify(ep));
    await new Promise((resolve) => { conns.get(r.id).close = resolve; b.destroy(r.id); });
  });

  await test('large transfer (8 MiB, backpressure)', async () => {
    const big = Buffer.alloc(8 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
    const { bytes } = await roundTrip(port, big);
    assert(bytes.length === big.length && bytes.equals(big), `got ${bytes.length} bytes`);
  });

  await test(`${N} connections at once`, async () => {
    const ps = [];
    for (let i = 0; i < N; i++) ps.push(roundTrip(port, Buffer.from(`conn ${i}`)));
    const all = await Promise.all(ps);
    all.forEach((r, i) => assert(r.bytes.toString() === `conn ${i}`, `conn ${i}: ${r.bytes}`));
    const s = b.stats();
    console.log(`     stats: accepted ${s.connectionsAccepted} dialed ${s.connectionsDialed} per reactor ${s.reactors.map((x) => x.eventsHandled).join('/')}`);
  });

  await test(`${N} connections held open, then closed`, async () => {
    const ids = [];
    for (let i = 0; i < N; i++) {
      const r = await connect(port);
      assert(r.type === EV.Connected, `connect ${i}: ${b.errorName(r.a)[0]}`);
      ids.push(r.id);
    }
    // every one still answers
    const answers = ids.map((id, i) => new Promise((resolve) => {
      const h = conns.get(id);
      h.data = (d) => { if (d.toString() === `ping ${i}`) resolve(); };
      b.write(id, `ping ${i}`, 65536);
    }));
    await Promise.all(answers);
    assert(b.stats().connectionsEstablished >= 2 * N, `established ${b.stats().connectionsEstablished}`);
    await Promise.all(ids.map((id) => new Promise((resolve) => { conns.get(id).close = resolve; b.destroy(id); })));
  });

  await test('churn: destroy with reads and writes in flight, slots reused', async () => {
    // The server pushes 256 KiB at each client; clients destroy at once or mid-transfer.
    // Completions of the closed sockets' operations must land on nothing (slots are reused).
    const pushOwner = 5;
    const push = await listen(0, F.reuseAddress, pushOwner, (id, h) => {
      b.write(id, Buffer.alloc(256 * 1024, 1), 1 << 30);
      h.data = () => {};
    });
    assert(push.type === EV.ListenOk, 'push listener');
    for (let round = 0; round < 10; round++) {
      const ps = [];
      for (let i = 0; i < 200; i++) {
        ps.push(connect(push.b).then((r) => new Promise((resolve) => {
          assert(r.type === EV.Connected, `connect: ${b.errorName(r.a)}`);
          const h = conns.get(r.id);
          h.close = resolve;
          if (i % 2 === 0) b.destroy(r.id);
          else setTimeout(() => b.destroy(r.id), i % 7);  // mid-transfer
        })));
      }
      await Promise.all(ps);
    }
    await closeListener(push.a);
    const { bytes } = await roundTrip(port, Buffer.from('still fine'));
    assert(bytes.toString() === 'still fine', 'echo after churn');
  });

  await test('ECONNREFUSED', async () => {
    const tmp = await listen(0, 0, 2);
    const deadPort = tmp.b;
    await closeListener(tmp.a);
    const r = await connect(deadPort);
    assert(r.type === EV.ConnectFailed, 'connect should fail');
    assert(b.errorName(r.a)[0] === 'ECONNREFUSED', `got ${b.errorName(r.a)} via ${b.syscalls[r.b]}`);
    assert(b.syscalls[r.b] === 'connect', `syscall ${b.syscalls[r.b]}`);
  });

  await test('EADDRINUSE', async () => {
    const r = await listen(port, 0, 3);
    assert(r.type === EV.ListenFailed, 'second listen should fail');
    assert(b.errorName(r.a)[0] === 'EADDRINUSE', `got ${b.errorName(r.a)} via ${b.syscalls[r.b]}`);
  });

  if (process.platform === 'win32') {
    await test('reusePort -> ENOTSUP', async () => {
      const r = await listen(0, F.reusePort, 4);
      assert(r.type === EV.ListenFailed && b.errorName(r.a)[0] === 'ENOTSUP', `got ${b.errorName(r.a)}`);
    });
  }

  await test('connect timeout', async () => {
    const t0 = Date.now();
    const r = await request((id) => b.connect(id, '127.0.0.1', port, null, 0, 0, 0, 1, 7, 0, 0, 0));
    // Loopback connects may beat a 1 ms timer; either outcome is legal, but it must resolve.
    assert(r.type === EV.Connected || (r.type === EV.ConnectFailed && b.errorName(r.a)[0] === 'ETIMEDOUT'),
      `got ${r.type} ${b.errorName(r.a)}`);
    if (r.type === EV.Connected) b.destroy(r.id);
    assert(Date.now() - t0 < 5000, 'took too long');
  });

  await test('explicit local address 127.0.0.2', async () => {
    const r = await connect(port, { localHost: '127.0.0.2' });
    assert(r.type === EV.Connected, `connect: ${b.errorName(r.a)} via ${b.syscalls[r.b]}`);
    const ep = b.endpoints(r.id);
    assert(ep[0] === '127.0.0.2', `local ${ep[0]}`);
    await new Promise((resolve) => { conns.get(r.id).close = resolve; b.destroy(r.id); });
  });

  await test('localPortRange', async () => {
    // A fresh range each run: ports of an earlier run may still be in TIME_WAIT.
    const lo = 20000 + Math.floor(Math.random() * 8000) * 5;
    const range = { localHost: '127.0.0.3', portLo: lo, portHi: lo + 4 };
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const r = await connect(port, range);
      assert(r.type === EV.Connected, `connect ${i}: ${b.errorName(r.a)} via ${b.syscalls[r.b]}`);
      const lp = b.endpoints(r.id)[1];
      assert(lp >= lo && lp <= lo + 4, `local port ${lp}`);
      ids.push(r.id);
    }
    const r = await connect(port, range);
    assert(r.type === EV.ConnectFailed && b.errorName(r.a)[0] === 'EADDRNOTAVAIL', `6th: ${r.type} ${b.errorName(r.a)}`);
    await Promise.all(ids.map((id) => new Promise((resolve) => { conns.get(id).close = resolve; b.destroy(id); })));
  });

  await closeListener(lid);
  const failed = results.filter((r) => r[1] !== 'ok').length;
  if (log.length) console.log(`log: ${[...new Set(log)].join('; ')}`);
  console.log(`${results.length - failed} passed, ${failed} failed`);
  b.ref(false);
  process.exitCode = failed ? 1 : 0;
})().catch((e) => { console.log(`FAIL ${e.stack}`); process.exitCode = 1; b.ref(false); });
