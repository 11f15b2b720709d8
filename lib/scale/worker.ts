// worker.ts - one process of a scale run: a server sharing the endpoint (reusePort) or a dialer
// opening its share of the connections. Started by orchestrator.ts with an IPC channel; exits
// when that channel goes away, so a run whose orchestrator is killed leaves nothing behind.
import { listen, Dialer, configure, raiseOpenFileLimit, type Connection, type Server } from '../index';
import { monotonicMs, type MemoryReport, type OrchestratorMessage, type Role, type WorkerMessage } from './protocol';

let held: Connection[] = [];

const send = (m: WorkerMessage) => process.send!(m);

function memory(): MemoryReport {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

// Broadcast delivery, dialer side: bytes received per connection (index in `held`), and how many
// connections have reached the target. Listeners are attached on the first 'arm' only, after the
// memory was measured: an idle connection has none.
let got: Uint32Array | undefined;
let want = 0;
let reached = 0;
let firstAt = 0;
let armTimer: NodeJS.Timeout | undefined;

function arm(bytes: number, timeoutMs: number): void {
  if (got === undefined) {
    got = new Uint32Array(held.length);
    held.forEach((c, i) => c.on('data', (d: Buffer) => {
      const before = got![i];
      got![i] += d.length;
      if (firstAt === 0) firstAt = monotonicMs();
      if (before < want && got![i] >= want && ++reached === held.length) finishRound(true);
    }));
  }
  want = bytes;
  reached = 0;
  firstAt = 0;
  for (let i = 0; i < got.length; i++) if (got[i] >= want) reached++;
  send({ type: 'armed', connections: held.length });
  if (held.length === 0 || reached === held.length) {
    finishRound(true);
    return;
  }
  armTimer = setTimeout(() => finishRound(false), timeoutMs);
}

function finishRound(complete: boolean): void {
  const at = monotonicMs();
  if (armTimer !== undefined) clearTimeout(armTimer);
  armTimer = undefined;
  send({ type: 'received', at, connections: held.length, complete: reached, first: firstAt });
  void complete;
}

async function main(role: Role): Promise<void> {
  raiseOpenFileLimit(); // soft limit up to the hard one, as Go's runtime does
  if (role.threads !== undefined || role.backend !== undefined) configure({ threads: role.threads, backend: role.backend });
  let live = () => 0;
  let server: Server | undefined;
  process.on('message', (m: OrchestratorMessage) => {
    if (m.cmd === 'report') send({ type: 'report', live: live(), ...memory() });
    if (m.cmd === 'exit') process.exit(0);
    if (m.cmd === 'arm') arm(m.bytes, m.timeoutMs);
    if (m.cmd === 'broadcast' && server !== undefined) {
      const data = Buffer.alloc(m.bytes, 0x61);
      const t0 = monotonicMs();
      const sent = server.broadcast(data);
      const t1 = monotonicMs();
      send({ type: 'broadcasted', sent, t0, t1 });
    }
  });

  // No per-connection listeners: this process measures what an idle connection costs.
  if (role.role === 'server') {
    server = await listen({ endpoints: [{ host: role.host, port: role.port }], reusePort: role.reusePort, allowHalfOpen: false });
    const s = server;
    live = () => s.connections;
    send({ type: 'listening', port: server.endpoints[0].port });
    return;
  }

  const dialer = new Dialer({ localAddresses: role.sources, maxPending: role.maxPending });
  live = () => dialer.connections;
  const t0 = performance.now();
  let last = 0;
  try {
    const conns = await dialer.connectMany(role.target, role.count, {
      onProgress(established, failed) {
        const now = performance.now();
        if (now - last > 100) {
          last = now;
          send({ type: 'progress', established, failed });
        }
      },
    });
    held = conns; // kept referenced, as an application would
    const ms = performance.now() - t0;
    let error: { code?: string; message: string } | undefined;
    if (conns.length < role.count) {
      // connectMany() counts failures without their errors: one more attempt names what gave out.
      error = await dialer.connect(role.target).then((c) => { c.destroy(); return undefined; },
        (e: { code?: string; message: string }) => ({ code: e.code, message: e.message }));
    }
    send({ type: 'done', established: conns.length, failed: role.count - conns.length, ms, error });
  } catch (err) {
    const e = err as { code?: string; message: string };
    send({ type: 'done', established: 0, failed: role.count, ms: performance.now() - t0, error: { code: e.code, message: e.message } });
  }
}

// The orchestrator is gone (exited, killed): so is this process, with every socket it holds.
process.on('disconnect', () => process.exit(0));

process.once('message', (role: Role) => {
  main(role).catch((err: { message: string; code?: string }) => {
    send({ type: 'fatal', message: err.message, code: err.code });
    process.exit(1);
  });
});
