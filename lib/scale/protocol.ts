// protocol.ts - messages between the scale orchestrator and its worker processes (IPC).

export interface ServerRole {
  role: 'server';
  host: string;
  port: number;          // 0 for the first server; the rest share its port (reusePort)
  reusePort: boolean;
  threads?: number;
  backend?: 'native' | 'net';
}

export interface DialerRole {
  role: 'dialer';
  target: string;        // "127.0.0.1:9000"
  count: number;
  sources: string[];
  maxPending: number;
  threads?: number;
  backend?: 'native' | 'net';
}

export type Role = ServerRole | DialerRole;

export interface MemoryReport {
  rss: number;
  heapUsed: number;
  external: number;
}

export type WorkerMessage =
  | { type: 'listening'; port: number }
  | { type: 'progress'; established: number; failed: number }
  | { type: 'done'; established: number; failed: number; ms: number; error?: { code?: string; message: string }; errors?: Record<string, number> }
  | ({ type: 'report'; live: number } & MemoryReport)
  /** Server: broadcast() handed `sent` connections the message between t0 and t1 (ms, CLOCK_MONOTONIC). */
  | { type: 'broadcasted'; sent: number; t0: number; t1: number }
  /** Dialer: counting bytes per connection from now on. */
  | { type: 'armed'; connections: number }
  /** Dialer: every connection has `bytes` bytes (complete) or the wait timed out; `at` in ms, CLOCK_MONOTONIC. */
  | { type: 'received'; at: number; connections: number; complete: number; first: number }
  | { type: 'fatal'; message: string; code?: string };

export type OrchestratorMessage =
  | { cmd: 'report' }            // gc, then report memory and counts
  /** Dialer: count received bytes per connection; report 'received' once each has `bytes` in total. */
  | { cmd: 'arm'; bytes: number; timeoutMs: number }
  /** Server: server.broadcast() `bytes` bytes. */
  | { cmd: 'broadcast'; bytes: number }
  | { cmd: 'exit' };

/** Milliseconds on the monotonic clock every process on the host shares (CLOCK_MONOTONIC). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
