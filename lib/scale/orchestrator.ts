// orchestrator.ts - a many-process connection run: server processes sharing ONE endpoint with
// reusePort, dialer processes spreading over several 127.0.0.x sources, memory measured before
// and after, optionally a broadcast to every connection. The `npm start` demo and the bench's
// scale run (`npm run bench -- scale`) are both this, at different sizes.
// Every child is killed on exit, on Ctrl-C and on failure, and exits by itself if this process
// goes away (worker.ts): nothing outlives the run.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loopbackSourceList } from './preflight';
import { type DialerRole, type OrchestratorMessage, type Role, type ServerRole, type WorkerMessage } from './protocol';

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
  /** Backend of every process (default: myriad's default, native). */
  backend?: 'native' | 'net';
  maxPending?: number;
  /** After the connections are up: this many broadcasts of `bytes` bytes from every server. */
  broadcast?: { bytes: number; rounds: number; pauseMs?: number; timeoutMs?: number };
  onProgress?: (p: Progress) => void;
  /** Phases as they start: 'servers', 'dialing', 'measuring', 'broadcast 1/3', ... */
  onPhase?: (phase: string) => void;
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

/** /proc/net/sockstat's TCP line: sockets and the kernel's TCP buffer memory. */
export interface SockStat {
  inuse: number;
  orphan: number;
  timeWait: number;
  alloc: number;
  /** TCP buffer memory (the "mem" pages), bytes. */
  memBytes: number;
}

export interface BroadcastRound {
  round: number;
  /** Connections the servers handed the message to. */
  sent: number;
  /** Connections that had it when the round ended. */
  delivered: number;
  /** From the first server's broadcast() call to the last client having the message. */
  deliveryMs: number;
  /** Longest time one server's JS thread spent inside broadcast(). */
  maxCallMs: number;
  /** Per server process: time inside broadcast(). */
  callMs: number[];
  complete: boolean;
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
  /** Sum of every process's RSS after the connections were up, bytes. */
  processesRss: number;
  /** Kernel slab growth over the run (host-wide), bytes. */
  kernelSlabBytes: number | undefined;
  sockstatBefore?: SockStat;
  sockstatAfter?: SockStat;
  broadcasts: BroadcastRound[];
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

/** This network namespace's TCP socket counts and buffer memory (Linux), or undefined. */
export function sockstat(): SockStat | undefined {
  try {
    const m = /^TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc (\d+) mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'));
    return m ? { inuse: +m[1], orphan: +m[2], timeWait: +m[3], alloc: +m[4], memBytes: +m[5] * 4096 } : undefined;
  } catch {
    return undefined;
  }
}

/** Sources 127.0.0.2.. so that each carries at most `perSource` connections. */
export function loopbackSources(connections: number, perSource: number): string[] {
  return loopbackSourceList(Math.max(1, Math.ceil(connections / perSource)));
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
    proc.on('exit', (code, signal) => {
      w.exited = true;
      for (const x of w.waiters.splice(0)) x.reject(new Error(`${role.role} process ${proc.pid} exited (${code ?? signal})`));
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
    const r = this.next(w, 'report', true);
    w.proc.send({ cmd: 'report' } satisfies OrchestratorMessage);
    return r;
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
      const backend = o.backend;

      // Servers: the first picks the port, the rest share it.
      o.onPhase?.('servers');
      const first = this.spawn({ role: 'server', host, port: o.port ?? 0, reusePort: true, threads, backend } satisfies ServerRole);
      const port = (await this.next(first, 'listening')).port;
      const servers = [first];
      for (let i = 1; i < nServers; i++) servers.push(this.spawn({ role: 'server', host, port, reusePort: true, threads, backend }));
      await Promise.all(servers.map((s) => this.next(s, 'listening')));
      const serverBefore = await Promise.all(servers.map((s) => this.report(s)));
      const kernelBefore = kernelSlabBytes();
      const sockBefore = sockstat();

      // Dialers: each takes its share of the connections and every source.
      o.onPhase?.('dialing');
      const t0 = performance.now();
      const dialers: Worker[] = [];
      const share = Math.ceil(o.connections / nDialers);
      for (let i = 0; i < nDialers; i++) {
        const count = Math.min(share, o.connections - i * share);
        dialers.push(this.spawn({ role: 'dialer', target: `${host}:${port}`, count, sources, maxPending: o.maxPending ?? 1024, threads, backend } satisfies DialerRole));
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
      let done;
      try {
        done = await Promise.all(dialers.map((d) => this.next(d, 'done')));
      } finally {
        clearInterval(ticker);
      }
      const setupMs = performance.now() - t0;
      const established = done.reduce((n, d) => n + d.established, 0);
      const failed = done.reduce((n, d) => n + d.failed, 0);
      o.onProgress?.({ established, failed, target: o.connections, elapsedMs: setupMs });

      // Let the accepts land, then measure.
      o.onPhase?.('measuring');
      const deadline = Date.now() + 10_000;
      let serverAfter = await Promise.all(servers.map((s) => this.report(s)));
      while (serverAfter.reduce((n, r) => n + r.live, 0) < established && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        serverAfter = await Promise.all(servers.map((s) => this.report(s)));
      }
      const dialerAfter = await Promise.all(dialers.map((d) => this.report(d)));
      const kernelAfter = kernelSlabBytes();
      const sockAfter = sockstat();

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

      // Broadcast: every dialer counts bytes per connection; every server broadcasts at once.
      const broadcasts: BroadcastRound[] = [];
      for (let r = 1; o.broadcast && r <= o.broadcast.rounds && established > 0; r++) {
        o.onPhase?.(`broadcast ${r}/${o.broadcast.rounds}`);
        if (r > 1) await new Promise((res) => setTimeout(res, o.broadcast!.pauseMs ?? 500));
        const armed = dialers.map((d) => this.next(d, 'armed', true));
        for (const d of dialers) d.proc.send({ cmd: 'arm', bytes: o.broadcast.bytes * r, timeoutMs: o.broadcast.timeoutMs ?? 30_000 } satisfies OrchestratorMessage);
        await Promise.all(armed);
        const received = dialers.map((d) => this.next(d, 'received', true));
        const sentP = servers.map((s) => this.next(s, 'broadcasted', true));
        for (const s of servers) s.proc.send({ cmd: 'broadcast', bytes: o.broadcast.bytes } satisfies OrchestratorMessage);
        const sent = await Promise.all(sentP);
        const got = await Promise.all(received);
        const start = Math.min(...sent.map((x) => x.t0));
        broadcasts.push({
          round: r,
          sent: sent.reduce((n, x) => n + x.sent, 0),
          delivered: got.reduce((n, x) => n + x.complete, 0),
          deliveryMs: Math.max(...got.map((x) => x.at)) - start,
          maxCallMs: Math.max(...sent.map((x) => x.t1 - x.t0)),
          callMs: sent.map((x) => x.t1 - x.t0),
          complete: got.every((x) => x.complete === x.connections),
        });
      }

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
        processesRss: processes.reduce((n, p) => n + p.rssAfter, 0),
        kernelSlabBytes: kernelBefore === undefined || kernelAfter === undefined ? undefined : kernelAfter - kernelBefore,
        sockstatBefore: sockBefore,
        sockstatAfter: sockAfter,
        broadcasts,
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
