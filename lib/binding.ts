// binding.ts - loads the native addon (a prebuild for this platform if present, else the local
// build) and names its flat verbs. Loaded on first use, so importing myriad costs nothing.
import { join } from 'node:path';

export interface Binding {
  /** 'net' for lib/net-binding.ts; the native addon leaves it unset. */
  backend?: 'native' | 'net';
  syscalls: string[];
  platformThreads: number;
  /**
   * Registers the event callback (once). `requestPump`, when given, is called at the end of a
   * delivery that left events waiting (more than one delivery's budget arrived): JS answers with
   * pump() from setImmediate, so the event loop turns between deliveries under a flood.
   */
  init(onEvents: (records: Float64Array, arena: Buffer | undefined, chunks?: Buffer[]) => void,
    requestPump?: () => void): void;
  /** Continues a delivery that requestPump announced. Absent on backends that never ask. */
  pump?(): void;
  /**
   * Joins the reactor threads, synchronously; sockets are left for the OS. Called from process
   * 'exit'. Absent on backends without threads of their own.
   */
  shutdown?(): void;
  configure(threads: number): boolean;
  threads(): number;
  ref(on: boolean): void;
  listen(req: number, host: string, port: number, owner: number, backlog: number, acceptBatch: number,
    flags: number, keepAliveDelayMs: number, idleTimeoutMs: number, maxBuffered: number, slowPolicy: number): void;
  closeListener(listenerId: number): void;
  connect(req: number, host: string, port: number, localHost: string | null, localPort: number,
    portLo: number, portHi: number, timeoutMs: number, owner: number, flags: number,
    keepAliveDelayMs: number, idleTimeoutMs: number, maxBuffered: number, slowPolicy: number): void;
  /**
   * connectMany() carried out by the reactors: quotas[i] connections from sources[i] (null: no
   * pool, one quota, the kernel picks the source), at most `cap` in flight; the next attempt
   * starts as one settles, with no round trip to JS. Connected carries the source index + 1 in
   * `b`, ConnectFailed's `b` is syscall + 256 * (source index + 1); each of the returned number of
   * shares ends with one DialPlanDone (a = attempts failed unstarted: no usable source left,
   * b = the share's cap, no longer held); DialPlanReturned gives back what the call no longer
   * holds meanwhile (a = unstarted attempts a cancel dropped, b = credit that found its share done).
   * Absent on backends that dial one connect() at a time (node:net).
   */
  dialPlan?(req: number, host: string, port: number, sources: string[] | null, quotas: number[], cap: number,
    portLo: number, portHi: number, timeoutMs: number, owner: number, flags: number,
    keepAliveDelayMs: number, idleTimeoutMs: number, maxBuffered: number, slowPolicy: number): number;
  /** Allows `more` attempts of the plan in flight. */
  dialPlanCredit?(req: number, more: number): void;
  /** The call is settled: start nothing more (what is in flight still reports). */
  dialPlanCancel?(req: number): void;
  write(id: number, data: Uint8Array | string, highWaterMark: number): number;
  end(id: number, data?: Uint8Array | string): void;
  destroy(id: number): void;
  pause(id: number): void;
  resume(id: number): void;
  setNoDelay(id: number, on: boolean): void;
  setKeepAlive(id: number, on: boolean, delayMs: number): void;
  setTimeout(id: number, ms: number): void;
  /** Per-connection cap for broadcasts: bytes buffered past which `policy` applies (SlowPolicy). */
  setMaxBuffered(id: number, bytes: number, policy: number): void;
  /** Queues data once for every live connection of `owner` (a server id) but `exceptId` (0 = none). */
  broadcast(owner: number, data: Uint8Array | string, exceptId: number): void;
  /** Groups: ids chosen by JS (positive integers). Membership lives in the reactors. */
  groupAdd(group: number, id: number): void;
  groupDelete(group: number, id: number): void;
  groupBroadcast(group: number, data: Uint8Array | string, exceptId: number): void;
  /** Drops every membership of the group. */
  groupClear(group: number): void;
  endpoints(id: number): [string, number, string, number, 4 | 6] | undefined;
  buffered(id: number): number;
  stats(): NativeStats;
  errorName(errno: number): [string, string];
  rlimitNofile(raise: boolean): [number, number] | null;
}

/** Process counters (this thread's engine); what stats() returns. */
export interface NativeStats {
  /** Established connections now (accepted + dialed, not yet closed). */
  connectionsEstablished: number;
  connectionsAccepted: number;
  connectionsDialed: number;
  connectionsClosed: number;
  /** Connects that failed (refused, timed out, no port, ...). */
  connectionFailures: number;
  /** accept() failures (EMFILE, ENFILE, ...); the listener pauses and retries. */
  acceptErrors: number;
  bytesRead: number;
  bytesWritten: number;
  /** broadcast() calls (server and group). */
  broadcasts: number;
  /** Broadcast messages queued to a connection (one per member per broadcast). */
  messagesQueued: number;
  /** Broadcast messages skipped for connections past maxBuffered under the 'drop' policy. */
  messagesDropped: number;
  /** Connections closed under the 'close' policy (ERR_SLOW_CONSUMER). */
  slowConsumersClosed: number;
  /** Bytes written or broadcast and not yet taken by the kernel, all connections now. */
  bytesBuffered: number;
  /** Per reactor thread: events handed to JS, kernel wake-ups, batches, connections owned. */
  reactors: { eventsHandled: number; wakeups: number; batches: number; connections: number }[];
}

// Flags shared with native/addon/addon.cc.
export const enum Flag {
  ReuseAddress = 1,
  ReusePort = 2,
  Ipv6Only = 4,
  NoDelay = 8,
  KeepAlive = 16,
  BindNoPort = 32,
}

// The errno a reactor reports when it closes a slow consumer (native/core/errors.h).
export const SLOW_CONSUMER_ERRNO = -100001;

// Slow-consumer policies shared with native/core/events.h.
export const enum SlowPolicy {
  Close = 0,  // destroy the connection with 'ERR_SLOW_CONSUMER'
  Drop = 1,   // skip this message for that connection (counted)
  Buffer = 2, // keep queueing (memory unbounded)
}

// Event types shared with native/core/events.h.
export const enum Ev {
  Accept = 1,
  Connected = 2,
  ConnectFailed = 3,
  Data = 4,
  End = 5,
  Drain = 6,
  Error = 7,
  Close = 8,
  Timeout = 9,
  ListenOk = 10,
  ListenFailed = 11,
  ListenerClosed = 12,
  AcceptError = 13,
  DialPlanDone = 14,
  DialPlanReturned = 15,
}

let binding: Binding | undefined;

export function getBinding(): Binding {
  if (binding === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => Binding;
    binding = load(join(__dirname, '..'));
  }
  return binding;
}
