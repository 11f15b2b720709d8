#!/usr/bin/env node
// The hammer: several processes (test/fixtures/hammer-node.js), each a server and a dialer to
// the others, drive thousands of connections through a random, seeded sequence of connect,
// write, broadcast, group join/leave, pause, resume, half-close, end, destroy, timeouts and
// server close, checking every received byte (see the fixture for the wire protocol). At the
// end every process closes everything, and the run fails on:
//   - any byte lost, duplicated, reordered or corrupted (a frame check in a receiver), or a stream
//     cut short that its sender did not cut (destroy, timeout, slow-consumer close, reset);
//   - counters that do not balance (accepted + dialed = closed + established, in stats() and in
//     the JS 'connection'/'close' events), a connection that never closed, bytes left buffered;
//   - a descriptor leaked (/proc/self/fd before and after), memory not back near the start.
//
//   node bench/hammer.mjs --minutes 10 [--processes 3] [--conns 400] [--seed 12345]
//   (also: --seconds N; `npm run bench -- hammer ...` once bench/run.mjs forwards to this file)
// The seed is printed first; the same seed replays the same random choices (timing still varies).
// test/hammer-multiprocess.test.ts runs a short version of this through runHammer().
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs the hammer; resolves with { seed, ms, totals, failures } (failures empty = passed).
 * @param {{ processes?: number, perPeer?: number, seconds?: number, seed?: number, dist?: string,
 *           log?: (line: string) => void, checkEveryMs?: number }} o
 */
export async function runHammer(o = {}) {
  const processes = o.processes ?? 3;
  const perPeer = o.perPeer ?? 300;
  const seconds = o.seconds ?? 45;
  const seed = o.seed ?? (Date.now() % 1_000_000_000);
  const dist = o.dist ?? join(ROOT, 'dist', 'index.js');
  const log = o.log ?? ((l) => console.log(l));
  const checkEveryMs = o.checkEveryMs ?? 5000;
  const fixture = join(ROOT, 'test', 'fixtures', 'hammer-node.js');
  log(`hammer: seed ${seed} (replay: node bench/hammer.mjs --seed ${seed} --processes ${processes} --conns ${perPeer} --seconds ${seconds})`);

  const failures = [];
  const kids = [];
  const ports = [];
  const t0 = Date.now();
  for (let i = 0; i < processes; i++) {
    const proc = fork(fixture, [String(i), String(seed + i), String(perPeer)], {
      // A fixed mmap threshold: glibc's default (a threshold that grows after big blocks are
      // freed) keeps the 256 KiB batch arenas and large writes on the heap after a burst, so the
      // RSS check would measure allocator policy, not leaks. With it, RSS returns to within a few MiB.
      env: { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536', ...process.env, MYRIAD_DIST: dist },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const kid = { proc, out: '', messages: [], waiters: [], exited: false };
    proc.stdout.on('data', (d) => { kid.out += d; });
    proc.stderr.on('data', (d) => { kid.out += d; });
    proc.on('exit', (code, sig) => {
      kid.exited = true;
      kid.exitCode = code;
      if (!kid.expectExit) failures.push(`process ${i} exited (${code ?? sig}) during the run:\n${kid.out.slice(-3000)}`);
      for (const w of kid.waiters.splice(0)) w.reject(new Error(`process ${i} exited`));
    });
    proc.on('message', (msg) => {
      if (msg.event === 'port') {
        ports[msg.index][msg.slot] = msg.port;
        sendPeers();
        return;
      }
      if (msg.event === 'fatal') failures.push(`process ${i}: ${msg.message}`);
      const w = kid.waiters.findIndex((x) => x.event === msg.event);
      if (w >= 0) kid.waiters.splice(w, 1)[0].resolve(msg);
      else kid.messages.push(msg);
    });
    kids.push(kid);
  }
  const next = (kid, event, timeoutMs = 60_000) => {
    const i = kid.messages.findIndex((m) => m.event === event);
    if (i >= 0) return Promise.resolve(kid.messages.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
      kid.waiters.push({ event, resolve: (m) => { clearTimeout(t); resolve(m); }, reject });
    });
  };
  function sendPeers() {
    kids.forEach((kid, i) => {
      if (kid.exited) return;
      const theirs = ports.flatMap((p, j) => (j === i || p === undefined ? [] : p.filter((x) => x !== undefined)));
      kid.proc.send({ cmd: 'peers', ports: theirs });
    });
  }

  const totals = { maxLive: 0, checks: 0, maxBalanceDiff: 0 };
  // Each process hands over its ledger (streams it did not end gracefully, streams it saw cut
  // short, servers it closed) with every check; it is matched across processes at the end.
  const ledgers = [];
  const keep = (i, l) => {
    const L = (ledgers[i] ??= { notGraceful: [], endWithoutFin: [], closedPorts: [] });
    L.notGraceful.push(...l.notGraceful);
    L.endWithoutFin.push(...l.endWithoutFin);
    L.closedPorts.push(...l.closedPorts);
  };
  try {
    for (let i = 0; i < processes; i++) {
      const m = await next(kids[i], 'listening');
      ports[i] = m.ports;
    }
    sendPeers();
    for (const kid of kids) kid.proc.send({ cmd: 'go' });
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end && failures.length === 0) {
      await new Promise((r) => setTimeout(r, Math.min(checkEveryMs, Math.max(0, end - Date.now()))));
      const checks = await Promise.all(kids.map((k) => { k.proc.send({ cmd: 'check' }); return next(k, 'check', 90_000); }));
      for (const c of checks) keep(c.index, c.ledger);
      const live = checks.reduce((n, c) => n + c.live, 0);
      totals.maxLive = Math.max(totals.maxLive, live);
      totals.checks++;
      for (const c of checks) {
        // Taken while reactors run, the counters may be mid-update by a few (one per reactor
        // and connection being closed right now); a growing difference would be a leak.
        totals.maxBalanceDiff = Math.max(totals.maxBalanceDiff, Math.abs(c.diff));
        if (Math.abs(c.diff) > 64) failures.push(`process ${c.index}: stats() does not balance during the run (off by ${c.diff})`);
        if (c.violations > 0) failures.push(`process ${c.index}: ${c.violations} byte-stream violations so far`);
      }
      const frames = checks.reduce((n, c) => n + c.counts.framesChecked, 0);
      const opened = checks.reduce((n, c) => n + c.counts.opened, 0);
      log(`hammer: ${Math.round((Date.now() - t0) / 1000)} s  live ends ${live}  opened ends ${opened}  frames checked ${frames}  ` +
        `rss ${checks.map((c) => Math.round(c.rss / 1048576)).join('/')} MiB`);
    }
    const reports = await Promise.all(kids.map((k) => { k.proc.send({ cmd: 'stop' }); return next(k, 'report', 120_000); }));
    for (const r of reports) keep(r.index, r.ledger);
    const notGraceful = new Set(ledgers.flatMap((l) => l.notGraceful));
    // A connection accepted by the kernel into the backlog of a server that then closed never
    // reached that server's application: it is reset or closed with not one frame sent.
    const closedPorts = new Set(ledgers.flatMap((l) => l.closedPorts.map((port) => `127.0.0.1:${port}`)));
    let cutShort = 0;
    for (const r of reports) {
      const p = `process ${r.index} (seed ${r.seed})`;
      for (const v of r.violations) failures.push(`${p}: ${v.what} ${JSON.stringify(v)}`);
      for (const e of ledgers[r.index].endWithoutFin) {
        if (e.key === undefined && e.partial === 0 && closedPorts.has(e.id.split('>')[0])) continue;
        if (!notGraceful.has(e.id)) {
          cutShort++;
          if (cutShort <= 10) failures.push(`${p}: stream ${e.id} (key ${e.key}) stopped short (${JSON.stringify(e)}) but its sender ended it gracefully`);
        }
      }
      if (r.stuck > 0) failures.push(`${p}: ${r.stuck} connections still open 20 s after both sides ended them: ${JSON.stringify(r.stuckDetails)}`);
      if (r.live !== 0) failures.push(`${p}: ${r.live} connections never reported closed`);
      if (r.jsOpened !== r.jsClosed) failures.push(`${p}: ${r.jsOpened} connections opened in JS, ${r.jsClosed} closed`);
      const b = r.balance;
      if (b.diff !== 0 || b.established !== 0) failures.push(`${p}: stats() does not balance at the end ${JSON.stringify(b)}`);
      if (b.bytesBuffered !== 0) failures.push(`${p}: ${b.bytesBuffered} bytes still buffered`);
      if (r.fds.after !== r.fds.before) failures.push(`${p}: descriptors ${r.fds.before} before, ${r.fds.after} after`);
      const mb = (x) => Math.round(x / 1048576);
      const d = { heap: r.mem.after.heapUsed - r.mem.before.heapUsed, external: r.mem.after.external - r.mem.before.external,
        rss: r.mem.after.rss - r.mem.before.rss };
      // Under ASan (scripts/test-hardening.sh) the allocator keeps freed memory in quarantine, so
      // RSS says nothing there; LeakSanitizer checks every allocation at each process's exit instead.
      const rssChecked = !/libasan/.test(process.env.LD_PRELOAD ?? '');
      if (d.heap > 32 * 1048576 || d.external > 16 * 1048576 || (rssChecked && d.rss > 96 * 1048576)) {
        failures.push(`${p}: memory not back near the start: heap +${mb(d.heap)} MiB, external +${mb(d.external)} MiB, rss +${mb(d.rss)} MiB`);
      }
      log(`hammer: ${p}: opened ${r.jsOpened}, frames ${r.counts.framesChecked}, bytes ${r.counts.bytesChecked}, broadcasts ${r.counts.broadcasts}, ` +
        `server closes ${r.counts.serverCloses}, closes missed by connect() ${r.counts.missedCloses}, timeouts ${r.counts.timeouts}, destroys ${r.counts.destroys}, half-closes ${r.counts.halfCloses}, ` +
        `dropped by policy ${b.messagesDropped}, slow closed ${b.slowConsumersClosed}, errors ${JSON.stringify(r.errors)}; ` +
        `fds ${r.fds.before}->${r.fds.after}, heap ${mb(d.heap)} MiB, external ${mb(d.external)} MiB, rss ${mb(d.rss)} MiB`);
    }
    totals.connectionsOpened = reports.reduce((n, r) => n + r.jsOpened, 0);
    totals.framesChecked = reports.reduce((n, r) => n + r.counts.framesChecked, 0);
    totals.bytesChecked = reports.reduce((n, r) => n + r.counts.bytesChecked, 0);
    totals.broadcasts = reports.reduce((n, r) => n + r.counts.broadcasts, 0);
    totals.serverCloses = reports.reduce((n, r) => n + r.counts.serverCloses, 0);
    totals.cutShortChecked = ledgers.reduce((n, l) => n + l.endWithoutFin.length, 0);
  } catch (err) {
    failures.push(`driver: ${err.stack}`);
    kids.forEach((k, i) => { if (k.out) failures.push(`process ${i} output:\n${k.out.slice(-3000)}`); });
  } finally {
    for (const kid of kids) {
      kid.expectExit = true;
      if (!kid.exited) kid.proc.send({ cmd: 'exit' });
    }
    // A clean exit, status 0: under ASan (scripts/test-hardening.sh) this is where LeakSanitizer
    // reports, and its report makes the status non-zero.
    const deadline = Date.now() + 20_000;
    while (kids.some((k) => !k.exited) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    kids.forEach((kid, i) => {
      if (!kid.exited) {
        kid.proc.kill('SIGKILL');
        failures.push(`process ${i} did not exit within 20 s of its 'exit' command`);
      } else if (kid.exitCode !== 0 && failures.length === 0) {
        failures.push(`process ${i} exited with status ${kid.exitCode}:\n${kid.out.slice(-4000)}`);
      }
    });
  }
  const ms = Date.now() - t0;
  // Every TCP connection has an end in two of the processes, and each end counts once.
  log(`hammer: ${failures.length === 0 ? 'PASSED' : 'FAILED'} in ${Math.round(ms / 1000)} s: ${processes} processes, ` +
    `${totals.connectionsOpened ?? '?'} connection ends opened (${Math.round((totals.connectionsOpened ?? 0) / 2)} TCP connections), ` +
    `at most ${totals.maxLive} ends live at once (~${Math.round(totals.maxLive / 2)} connections), ` +
    `${totals.framesChecked ?? '?'} frames (${Math.round((totals.bytesChecked ?? 0) / 1048576)} MiB) checked, seed ${seed}`);
  for (const f of failures) log(`hammer: FAILURE: ${f}`);
  return { seed, ms, totals, failures };
}

// ---- command line ----
/**
 * `npm run bench -- hammer [--minutes N | --seconds N] [--processes P] [--conns C] [--seed S]`:
 * bench/run.mjs hands its arguments after 'hammer' to this. Resolves with the exit status.
 */
export async function hammerMain(args) {
  const opt = (name, dflt) => {
    const i = args.indexOf(`--${name}`);
    if (i < 0) return dflt;
    const v = Number(args[i + 1]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
    return v;
  };
  const minutes = opt('minutes', undefined);
  const seconds = minutes !== undefined ? minutes * 60 : opt('seconds', 60);
  const r = await runHammer({ seconds, processes: opt('processes', 3), perPeer: opt('conns', 400), seed: opt('seed', undefined) });
  return r.failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exit(await hammerMain(process.argv.slice(2)));
}
