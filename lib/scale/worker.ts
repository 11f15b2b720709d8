// worker.ts - one process of a scale run: a server sharing the endpoint (reusePort) or a dialer
// opening its share of the connections. Started by orchestrator.ts with an IPC channel.
import { listen, Dialer, configure, raiseOpenFileLimit, type Connection } from '../index';

let held: Connection[] = [];
import type { MemoryReport, OrchestratorMessage, Role, WorkerMessage } from './protocol';

const send = (m: WorkerMessage) => process.send!(m);

function memory(): MemoryReport {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
}

async function main(role: Role): Promise<void> {
  raiseOpenFileLimit(); // soft limit up to the hard one, as Go's runtime does
  if (role.threads !== undefined) configure({ threads: role.threads });
  let live = () => 0;
  process.on('message', (m: OrchestratorMessage) => {
    if (m.cmd === 'report') send({ type: 'report', live: live(), ...memory() });
    if (m.cmd === 'exit') process.exit(0);
  });

  // No per-connection listeners: this process measures what an idle connection costs.
  if (role.role === 'server') {
    const server = await listen({ endpoints: [{ host: role.host, port: role.port }], reusePort: role.reusePort });
    live = () => server.connections;
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
    send({ type: 'done', established: conns.length, failed: role.count - conns.length, ms: performance.now() - t0 });
  } catch (err) {
    const e = err as { code?: string; message: string };
    send({ type: 'done', established: 0, failed: role.count, ms: performance.now() - t0, error: { code: e.code, message: e.message } });
  }
}

process.once('message', (role: Role) => {
  main(role).catch((err: { message: string; code?: string }) => {
    send({ type: 'fatal', message: err.message, code: err.code });
    process.exit(1);
  });
});
