// protocol.ts - messages between the scale orchestrator and its worker processes (IPC).

export interface ServerRole {
  role: 'server';
  host: string;
  port: number;          // 0 for the first server; the rest share its port (reusePort)
  reusePort: boolean;
  threads?: number;
}

export interface DialerRole {
  role: 'dialer';
  target: string;        // "127.0.0.1:9000"
  count: number;
  sources: string[];
  maxPending: number;
  threads?: number;
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
  | { type: 'done'; established: number; failed: number; ms: number; error?: { code?: string; message: string } }
  | ({ type: 'report'; live: number } & MemoryReport)
  | { type: 'fatal'; message: string; code?: string };

export type OrchestratorMessage =
  | { cmd: 'report' }            // gc, then report memory and counts
  | { cmd: 'exit' };
