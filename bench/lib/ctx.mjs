// ctx.mjs - building blocks of a measurement: start a server of any implementation, run the C
// load generator, start dialer processes. Everything started here is bounded in time and killed
// by killAll() when the measurement ends.
import { cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Proc, sleep } from './proc.mjs';

export const BENCH = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = join(BENCH, '..');
export const BIN = process.env.MYRIAD_BENCH_BIN || '/tmp/myriad-bench-bin';
// 9000 inside a fresh network namespace (as the anchors); run.mjs picks a free one with --no-netns.
export const PORT = Number(process.env.MYRIAD_BENCH_PORT) || 9000;
export const TARGET = `127.0.0.1:${PORT}`;
export const SRC4 = '127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5';
export const SRC5 = '127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5';
export const SRC8 = '127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4,127.0.1.5,127.0.1.6,127.0.1.7,127.0.1.8';

// Idle-memory runs: V8's memory reducer (which gives back the heap a connection storm grew) starts
// 0.5 s after the last full GC instead of 8 s, so "settled" memory is reached in seconds.
const REDUCER = '--gc-memory-reducer-start-delay-ms=500';

/** Implementations: the C anchor, myriad on each backend (the same scenario code), idiomatic node:net. */
export const IMPLS = {
  c: 'C epoll (anchor)',
  myriad: 'myriad (native)',
  'myriad-net': 'myriad on node:net',
  node: 'node:net (idiomatic)',
};

/**
 * Starts a server: impl c | myriad | myriad-net | node, mode hold | echo | broadcast | churn.
 * opts: n, rounds, pauseMs, cpu (default 1), reuseport, waitBaseline, settle (memory once V8 shrank its heap),
 * threads (myriad, default 1).
 */
export async function startServer(impl, mode, opts = {}) {
  const port = String(opts.port ?? PORT);
  const common = ['-p', port, '-m', mode, '-n', String(opts.n ?? 0), '-R', String(opts.rounds ?? 3), '--pause-ms', String(opts.pauseMs ?? 1000)];
  let cmd, args;
  if (impl === 'c') {
    cmd = join(BIN, 'cserver');
    args = [...common, ...(opts.reuseport ? ['--reuseport'] : [])];
  } else if (impl === 'node') {
    cmd = process.execPath;
    args = ['--expose-gc', ...(opts.settle ? [REDUCER] : []), join(BENCH, 'servers', 'node-server.js'), ...common, ...(opts.waitBaseline ? ['--wait-baseline'] : []), ...(opts.settle ? ['--settle'] : [])];
  } else {
    cmd = process.execPath;
    args = ['--expose-gc', ...(opts.settle ? [REDUCER] : []), join(BENCH, 'servers', 'myriad-server.js'), ...common, '--backend', impl === 'myriad' ? 'native' : 'net',
      '--threads', String(opts.threads ?? 1), ...(opts.reuseport ? ['--reuseport'] : []), ...(opts.waitBaseline ? ['--wait-baseline'] : []),
      ...(opts.settle ? ['--settle'] : [])];
  }
  const p = new Proc(cmd, args, { cpu: opts.cpu === null ? undefined : (opts.cpu ?? 1), timeoutS: opts.timeoutS ?? 300, name: `${impl} server`, onLine: opts.onLine });
  await p.event('listening', 20_000);
  return p;
}

/**
 * Warm-up before a memory baseline: open and close `n` connections (so node's lazily compiled
 * code and first-use allocations are paid), then ask the server for its baseline until it reports
 * no live connections.
 */
export async function warmUpAndBaseline(server, n = 1000) {
  await runLoadgen(['-m', 'connect', '-n', String(n), '-s', SRC4, '-i', '1000', '--hold-seconds', '0'], { cpu: 0 });
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const before = server.json.filter((j) => j.event === 'baseline').length;
    server.send('baseline');
    const b = await server.waitFor((_l, j) => j?.event === 'baseline' && server.json.filter((x) => x.event === 'baseline').length > before, 30_000, 'baseline');
    if (b.live === 0) return b;
  }
  throw new Error('server still has live connections after the warm-up');
}

/** Runs the C load generator to completion; resolves with its JSON line. */
export async function runLoadgen(args, opts = {}) {
  const p = startLoadgen(args, opts);
  const j = await p.event('loadgen', (opts.timeoutS ?? 120) * 1000);
  await p.exited;
  return j;
}

/** Starts the C load generator (target 127.0.0.1:9000 unless given). */
export function startLoadgen(args, opts = {}) {
  const target = opts.targets ?? [TARGET];
  return new Proc(join(BIN, 'loadgen'), [...target.flatMap((t) => ['-t', t]), ...args], {
    cpu: opts.cpu === null ? undefined : (opts.cpu ?? 0), timeoutS: opts.timeoutS ?? 120, name: 'loadgen', onLine: opts.onLine,
  });
}

/**
 * Starts a dialer process: impl myriad | myriad-net | node | c (the loadgen in connect mode).
 * opts: n, sources (comma list; node ignores it: default source), warm, waitGo, cpu, maxPending, settle,
 *   memory (myriad: measure memory after connectMany; settle implies it),
 *   threads (myriad's reactor threads: a number, or 'default' for the library's default, one per CPU; default 1).
 */
export function startDialer(impl, opts) {
  if (impl === 'c') {
    return startLoadgen(['-m', 'connect', '-n', String(opts.n), ...(opts.sources ? ['-s', opts.sources] : []), '-i', String(opts.maxPending ?? 1024),
      '--hold-seconds', String(opts.holdS ?? 120)], { cpu: opts.cpu ?? null, timeoutS: opts.timeoutS ?? 200 });
  }
  const script = impl === 'node' ? join(BENCH, 'clients', 'node-client.js') : join(BENCH, 'clients', 'myriad-dialer.js');
  const args = ['--expose-gc', ...(opts.settle ? [REDUCER] : []), script, '-t', opts.target ?? TARGET, '-n', String(opts.n), '--warm', String(opts.warm ?? 0), '--hold-seconds', String(opts.holdS ?? 120)];
  if (impl === 'node') args.push('--inflight', String(opts.maxPending ?? 1024));
  else args.push('--backend', impl === 'myriad' ? 'native' : 'net', '--max-pending', String(opts.maxPending ?? 1024), ...(opts.sources ? ['-s', opts.sources] : []));
  if (opts.waitGo) args.push('--wait-go');
  if (opts.settle) args.push('--settle');
  if (opts.memory && impl !== 'node') args.push('--memory');
  if (opts.threads !== undefined && impl !== 'node') args.push('--threads', String(opts.threads));
  return new Proc(process.execPath, args, { cpu: opts.cpu ?? undefined, timeoutS: opts.timeoutS ?? 200, name: `${impl} dialer` });
}

/**
 * taskset's list of every CPU of this machine. "Unpinned" has to be said explicitly: measure.mjs
 * runs pinned to CPU 0 and a child inherits that, which would crowd every process onto one CPU.
 */
export const ALL_CPUS = `0-${cpus().length - 1}`;

/** Several cserver processes sharing 127.0.0.1:PORT with SO_REUSEPORT (hold mode), on every CPU. */
export async function startReusePortServers(k) {
  const servers = [];
  for (let i = 0; i < k; i++) servers.push(await startServer('c', 'hold', { reuseport: true, cpu: ALL_CPUS }));
  return servers;
}
