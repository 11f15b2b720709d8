// orchestrator.ts - a many-process connection run: server processes sharing ONE endpoint with
// reusePort, dialer processes spreading over several 127.0.0.x sources, memory measured before
// and after. The `npm start` demo and the bench's scale run are both this, at different sizes.
// Every child is killed on exit, on Ctrl-C and on failure: nothing outlives the run.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DialerRole, OrchestratorMessage, Role, ServerRole, WorkerMessage } from './protocol';

export interface ScaleOptions {
  connections: number;
  /** Connections per process at most (the fd limit: 20,000 here, minus headroom). */
  perProcess?: number;
  /** Source addresses for the dialers; default enough 127.0.0.x that no source passes half the port range. */
  sources?: string[];
  host?: string;
  port?: number;
  /** Reactor threads per process. Default 1: the processes already use every core. */
  threads?: number;
  maxPending?: number;
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  established: number;
  failed: number;
  target: number;
  elapsedMs: number;
}

export interface ProcessMemory {
  role: 'server' | 'dialer';
  pid: number;
  connections: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
}

export interface ScaleResult {
  target: number;
  established: number;
  failed: number;
  setupMs: number;
  connectionsPerSecond: number;
  servers: number;
  dialers: number;
  sources: string[];
  port: number;
  processes: ProcessMemory[];
  /** Process memory growth per connection, server side and dialer side (bytes). */
  serverBytesPerConnection: number;
  dialerBytesPerConnection: number;
  /** Kernel slab growth (/proc/meminfo, host-wide) per connection pair, bytes. */
  kernelBytesPerPair: number | undefined;
  firstError?: { code?: string; message: string };
}

interface Worker {
  proc: ChildProcess;
  role: Role;
  messages: WorkerMessage[];
  waiters: { pred: (m: WorkerMessage) => boolean; resolve: (m: WorkerMessage) => void; reject: (e: Error) => void }[];
  exited: boolean;
}

/** The ephemeral port range: how many ports one source address has toward one destination. */
export function ephemeralPortRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return [lo, hi];
  } catch {
    return [49152, 65535]; // Windows' default dynamic range (netsh int ipv4 show dynamicport tcp)
  }
}

// Kernel slab memory (host-wide, /proc/meminfo): sockets, TCP control blocks, epoll items.
// Idle sockets hold no buffer pages, so /proc/net/sockstat's TCP "mem" barely moves; Slab does.
function kernelSlabBytes(): number | undefined {
  try {
    const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Sources 127.0.0.2.. so that each carries at most `perSource` connections. */
export function loopbackSources(connections: number, perSource: number): string[] {
  const n = Math.max(1, Math.ceil(connections / perSource));
  return Array.from({ length: n }, (_, i) => `127.0.${Math.floor((i + 2) / 250)}.${(i + 2) % 250}`);
}

export class ScaleRun {
  private workers: Worker[] = [];
  private cleanedUp = false;
  private readonly onSignal = () => {
    this.cleanup();
    process.exit(130);
  };

  constructor(private readonly opts: ScaleOptions) {}

  private spawn(role: Role): Worker {
    const proc = fork(join(__dirname, 'worker.js'), [], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const w: Worker = { proc, role, messages: [], waiters: [], exited: false };
    proc.on('message', (m: WorkerMessage) => {
      w.messages.push(m);
      for (let i = 0; i < w.waiters.length; i++) {
        if (w.waiters[i].pred(m)) {
          w.waiters[i].resolve(m);
          w.waiters.splice(i--, 1);
        }
      }
    });
    proc.on('exit', (code) => {
      w.exited = true;
      for (const x of w.waiters.splice(0)) x.reject(new Error(`${role.role} process ${proc.pid} exited (${code})`));
    });
    proc.send(role);
    this.workers.push(w);
    return w;
  }

  private next<T extends WorkerMessage['type']>(w: Worker, type: T, fresh = false): Promise<Extract<WorkerMessage, { type: T }>> {
    if (!fresh) {
      const found = w.messages.find((m) => m.type === type);
      if (found) return Promise.resolve(found as Extract<WorkerMessage, { type: T }>);
    }
    if (w.exited) return Promise.reject(new Error(`${w.role.role} process exited`));
    return new Promise((resolve, reject) => w.waiters.push({ pred: (m) => m.type === type, resolve: resolve as (m: WorkerMessage) => void, reject }));
  }

  private async report(w: Worker) {
    w.proc.send({ cmd: 'report' } satisfies OrchestratorMessage);
    return this.next(w, 'report', true);
  }

  async run(): Promise<ScaleResult> {
    const o = this.opts;
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
    try {
      const perProcess = o.perProcess ?? 19_000;
      const [lo, hi] = ephemeralPortRange();
      const sources = o.sources ?? loopbackSources(o.connections, Math.floor((hi - lo + 1) / 2));
      const nServers = Math.max(1, Math.ceil(o.connections / perProcess));
      const nDialers = Math.max(1, Math.ceil(o.connections / perProcess));
      const host = o.host ?? '127.0.0.1';
      const threads = o.threads ?? 1;

      // Servers: the first picks the port, the rest share it.
      const first = this.spawn({ role: 'server', host, port: o.port ?? 0, reusePort: true, threads } satisfies ServerRole);
      const port = (await this.next(first, 'listening')).port;
      const servers = [first];
      for (let i = 1; i < nServers; i++) servers.push(this.spawn({ role: 'server', host, port, reusePort: true, threads }));
      await Promise.all(servers.map((s) => this.next(s, 'listening')));
      const serverBefore = await Promise.all(servers.map((s) => this.report(s)));
      const kernelBefore = kernelSlabBytes();

      // Dialers: each takes its share of the connections and every source.
      const t0 = performance.now();
      const dialers: Worker[] = [];
      const share = Math.ceil(o.connections / nDialers);
      for (let i = 0; i < nDialers; i++) {
        const count = Math.min(share, o.connections - i * share);
        dialers.push(this.spawn({ role: 'dialer', target: `${host}:${port}`, count, sources, maxPending: o.maxPending ?? 1024, threads } satisfies DialerRole));
      }
      const ticker = setInterval(() => {
        let established = 0;
        let failed = 0;
        for (const d of dialers) {
          const last = [...d.messages].reverse().find((m) => m.type === 'progress' || m.type === 'done') as { established: number; failed: number } | undefined;
          established += last?.established ?? 0;
          failed += last?.failed ?? 0;
        }
        o.onProgress?.({ established, failed, target: o.connections, elapsedMs: performance.now() - t0 });
      }, 100);
      const done = await Promise.all(dialers.map((d) => this.next(d, 'done')));
      const setupMs = performance.now() - t0;
      clearInterval(ticker);
      const established = done.reduce((n, d) => n + d.established, 0);
      const failed = done.reduce((n, d) => n + d.failed, 0);
      o.onProgress?.({ established, failed, target: o.connections, elapsedMs: setupMs });

      // Let the accepts land, then measure.
      const deadline = Date.now() + 10_000;
      let serverAfter = await Promise.all(servers.map((s) => this.report(s)));
      while (serverAfter.reduce((n, r) => n + r.live, 0) < established && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        serverAfter = await Promise.all(servers.map((s) => this.report(s)));
      }
      const dialerAfter = await Promise.all(dialers.map((d) => this.report(d)));
      const kernelAfter = kernelSlabBytes();

      const processes: ProcessMemory[] = [
        ...servers.map((s, i) => ({ role: 'server' as const, pid: s.proc.pid!, connections: serverAfter[i].live,
          rssBefore: serverBefore[i].rss, rssAfter: serverAfter[i].rss, heapBefore: serverBefore[i].heapUsed, heapAfter: serverAfter[i].heapUsed })),
        // A dialer's baseline is an idle process like the servers' before they had connections.
        ...dialers.map((d, i) => ({ role: 'dialer' as const, pid: d.proc.pid!, connections: dialerAfter[i].live,
          rssBefore: serverBefore[0].rss, rssAfter: dialerAfter[i].rss, heapBefore: serverBefore[0].heapUsed, heapAfter: dialerAfter[i].heapUsed })),
      ];
      const perConn = (role: 'server' | 'dialer') => {
        const ps = processes.filter((p) => p.role === role);
        const conns = ps.reduce((n, p) => n + p.connections, 0);
        return conns === 0 ? 0 : ps.reduce((n, p) => n + (p.rssAfter - p.rssBefore), 0) / conns;
      };
      return {
        target: o.connections,
        established,
        failed,
        setupMs,
        connectionsPerSecond: established / (setupMs / 1000),
        servers: nServers,
        dialers: nDialers,
        sources,
        port,
        processes,
        serverBytesPerConnection: perConn('server'),
        dialerBytesPerConnection: perConn('dialer'),
        kernelBytesPerPair: kernelBefore === undefined || kernelAfter === undefined || established === 0
          ? undefined : (kernelAfter - kernelBefore) / established,
        firstError: done.find((d) => d.error)?.error,
      };
    } finally {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    }
  }

  /**
   * Ends every child process. SIGKILL on purpose: it must work from a signal handler, at once,
   * and the kernel closes a killed process's sockets anyway. Safe to call more than once.
   */
  cleanup(): void {
    if (this.cleanedUp) return;
    this.cleanedUp = true;
    for (const w of this.workers) if (!w.exited) w.proc.kill('SIGKILL');
  }
}
