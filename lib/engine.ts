// engine.ts - the JS side of the event channel: one per thread (per Node environment).
//
// The native layer calls onEvents() once per batch with a Float64Array of 4-number records
// [type, id, a, b] and one Buffer holding the bytes of every Data event in the batch. This file
// routes each record to its connection, server or pending request, keeps the event loop alive
// while anything is open, and turns native error numbers into Node-style errors.
import { getBinding, type Binding, Ev, SLOW_CONSUMER_ERRNO } from './binding';
import { createNetBinding } from './net-binding';
import { systemError, stateError, type SystemError, type SystemErrorFields } from './errors';
import type { Connection, ConnectionDefaults } from './connection';

// What the engine needs from a server or dialer (the owner of connections).
export interface Owner {
  readonly ownerId: number;
  /** Settings every connection of this owner shares. */
  readonly _defaults: ConnectionDefaults;
  _accepted?(id: number): void;
  _connClosed(conn: Connection): void;
}

export interface ListenWaiter {
  resolve(v: { listenerId: number; port: number }): void;
  reject(err: SystemError): void;
  fields: Omit<SystemErrorFields, 'syscall'>;
}

export interface ConnectWaiter {
  /** `source`: a dial plan's source index + 1 (0 for a single connect). */
  connected(id: number, source: number): void;
  failed(errno: number, syscall: string, source: number): void;
  /**
   * Present on a dial plan's waiter (connectMany() carried out by the reactors), which stays
   * registered across its events: called once per share when it is done, with the attempts it
   * failed unstarted and the share's cap. The waiter calls endConnectWait() after its last share.
   */
  planDone?(unstartedFailed: number, cap: number): void;
  /** A dial plan's attempts dropped unstarted by a cancel, and credit that found its share done. */
  planReturned?(dropped: number, credit: number): void;
}

export interface ListenerWatcher {
  listenerClosed(listenerId: number): void;
  acceptError(err: SystemError): void;
}

let native: Binding | undefined;
let configuredThreads = 0;
// MYRIAD_BACKEND=net|native picks the default (the test suite runs once per backend with it).
let configuredBackend: 'native' | 'net' | undefined =
  process.env.MYRIAD_BACKEND === 'net' || process.env.MYRIAD_BACKEND === 'native' ? process.env.MYRIAD_BACKEND : undefined;
let holds = 0;
let nextRequestId = 1;
let nextOwnerId = 1;

// Live connections by id. An id is generation * 2^24 + reactor * 2^20 + slot (native/core/ids.h)
// and the reactors reuse slots densely, so a small array per reactor indexed by slot holds them
// at 4 bytes each (a Map entry costs ~30) and finds them without hashing.
const table: (Connection | undefined)[][] = [];

// Reactor and slot of an id (no tuple: these run once per event).
function reactorOf(id: number): number {
  return (id % 16777216) >>> 20;
}
function slotOf(id: number): number {
  return id % 16777216 & 0xfffff;
}

export function connectionById(id: number): Connection | undefined {
  const c = table[reactorOf(id)]?.[slotOf(id)];
  return c !== undefined && c.id === id ? c : undefined;
}

export function addConnection(conn: Connection): void {
  (table[reactorOf(conn.id)] ??= [])[slotOf(conn.id)] = conn;
}

function removeConnection(id: number): Connection | undefined {
  const t = table[reactorOf(id)];
  const s = slotOf(id);
  const c = t?.[s];
  if (c === undefined || c.id !== id) return undefined;
  t![s] = undefined;
  return c;
}

/** Every live connection whose owner is `owner`. */
export function connectionsOf(owner: Owner): Connection[] {
  const out: Connection[] = [];
  for (const t of table) if (t !== undefined) for (const c of t) if (c !== undefined && c._owner === owner) out.push(c);
  return out;
}
const owners = new Map<number, Owner>();
const listenWaiters = new Map<number, ListenWaiter>();
const connectWaiters = new Map<number, ConnectWaiter>();
const listenerWatchers = new Map<number, ListenerWatcher>();

export function configureEngine(threads: number | undefined, backend: 'native' | 'net' | undefined): void {
  if (native !== undefined) {
    throw stateError('ERR_MYRIAD_STARTED', 'configure() must be called before the first listen() or connect()');
  }
  if (threads !== undefined) configuredThreads = threads;
  if (backend !== undefined) configuredBackend = backend;
}

let warnedFallback = false;

// The backend: the native addon, or the same verbs on node:net (lib/net-binding.ts) when asked
// for with configure({ backend: 'net' }) or when no native build exists for this platform.
function loadBackend(): Binding {
  if (configuredBackend === 'net') return createNetBinding();
  try {
    return getBinding();
  } catch (err) {
    if (configuredBackend === 'native') throw err;
    if (!warnedFallback) {
      warnedFallback = true;
      process.emitWarning(`myriad: no native backend for ${process.platform}-${process.arch} (${(err as Error).message.split('\n')[0]}); using node:net`, 'MyriadWarning');
    }
    return createNetBinding();
  }
}

export function binding(): Binding {
  if (native === undefined) {
    const b = loadBackend();
    b.configure(configuredThreads);
    // A delivery over budget continues from setImmediate: after this turn's timers and I/O.
    const pump = (): void => { b.pump?.(); };
    b.init(onEvents, () => { setImmediate(pump); });
    // process.exit() and a fatal exception skip the addon's cleanup hook: stop the reactors here,
    // before Node exits, so no thread is killed mid-syscall (see Shutdown in native/addon).
    if (b.shutdown) process.once('exit', () => { b.shutdown!(); });
    native = b;
  }
  return native;
}

/** 'native' or 'net' once started; undefined before. */
export function backendName(): 'native' | 'net' | undefined {
  return native === undefined ? undefined : native.backend ?? 'native';
}

export function isStarted(): boolean {
  return native !== undefined;
}

// The event loop stays alive while anything is open (like node:net handles).
export function hold(): void {
  if (holds++ === 0) binding().ref(true);
}
export function unhold(): void {
  if (--holds === 0) binding().ref(false);
}

export function newRequestId(): number {
  return nextRequestId++;
}

export function registerOwner(owner: Owner): void {
  owners.set(owner.ownerId, owner);
}
export function unregisterOwner(owner: Owner): void {
  owners.delete(owner.ownerId);
}
export function newOwnerId(): number {
  return nextOwnerId++;
}

export function awaitListen(req: number, w: ListenWaiter): void {
  listenWaiters.set(req, w);
  hold();
}
export function awaitConnect(req: number, w: ConnectWaiter): void {
  connectWaiters.set(req, w);
  hold();
}
/** A dial plan's waiter is done (its last share reported). */
export function endConnectWait(req: number): void {
  if (connectWaiters.delete(req)) unhold();
}
export function watchListener(listenerId: number, w: ListenerWatcher): void {
  listenerWatchers.set(listenerId, w);
}

export function errorFromNative(errno: number, syscall: string, fields: Omit<SystemErrorFields, 'syscall'>): SystemError {
  if (errno === SLOW_CONSUMER_ERRNO) {
    const err = stateError('ERR_SLOW_CONSUMER', 'connection closed: a broadcast would pass its maxBuffered') as SystemError;
    err.syscall = syscall;
    return err;
  }
  const [code, message] = binding().errorName(errno);
  return systemError(errno, code, message, { syscall, ...fields });
}

function syscallName(n: number): string {
  return binding().syscalls[n] || 'unknown';
}

// `arena` holds the bytes of the batch's Data events as (offset, length); a backend that has
// its chunks separately (node:net) passes `chunks` instead and puts the index in `a`.
function onEvents(rec: Float64Array, arena: Buffer | undefined, chunks?: Buffer[]): void {
  for (let i = 0; i < rec.length; i += 4) {
    try {
      dispatch(rec[i], rec[i + 1], rec[i + 2], rec[i + 3], arena, chunks);
    } catch (err) {
      // A throwing user handler must not cost the rest of the batch its events: report it the
      // way an EventEmitter handler's throw is reported, as an uncaught exception, afterwards.
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

function dispatch(type: number, id: number, a: number, b: number, arena: Buffer | undefined, chunks: Buffer[] | undefined): void {
  switch (type) {
    case Ev.Data: {
      const conn = connectionById(id);
      if (conn !== undefined) conn._onData(chunks !== undefined ? chunks[a] : arena!.subarray(a, a + b));
      return;
    }
    case Ev.Accept: {
      const owner = owners.get(a);
      if (owner === undefined || owner._accepted === undefined) {
        binding().destroy(id); // its server closed while the connection waited in the backlog
        return;
      }
      owner._accepted(id);
      return;
    }
    case Ev.Connected: {
      const w = connectWaiters.get(a);
      if (w === undefined) {
        binding().destroy(id);
        return;
      }
      if (w.planDone === undefined) {
        connectWaiters.delete(a);
        unhold();
      }
      w.connected(id, b);
      return;
    }
    case Ev.ConnectFailed: {
      const w = connectWaiters.get(id);
      if (w === undefined) return;
      if (w.planDone === undefined) {
        connectWaiters.delete(id);
        unhold();
      }
      w.failed(a, syscallName(b % 256), Math.floor(b / 256));
      return;
    }
    case Ev.DialPlanDone:
      connectWaiters.get(id)?.planDone?.(a, b);
      return;
    case Ev.DialPlanReturned:
      connectWaiters.get(id)?.planReturned?.(a, b);
      return;
    case Ev.End:
      connectionById(id)?._onEnd();
      return;
    case Ev.Drain:
      connectionById(id)?._onDrain();
      return;
    case Ev.Timeout:
      connectionById(id)?._onTimeout();
      return;
    case Ev.Error:
      connectionById(id)?._onError(a, syscallName(b));
      return;
    case Ev.Close: {
      const conn = removeConnection(id);
      if (conn === undefined) return;
      unhold();
      conn._onClose(a !== 0);
      return;
    }
    case Ev.ListenOk:
    case Ev.ListenFailed: {
      const w = listenWaiters.get(id);
      if (w === undefined) return;
      listenWaiters.delete(id);
      unhold();
      if (type === Ev.ListenOk) w.resolve({ listenerId: a, port: b });
      else w.reject(errorFromNative(a, syscallName(b), w.fields));
      return;
    }
    case Ev.ListenerClosed: {
      const w = listenerWatchers.get(id);
      listenerWatchers.delete(id);
      w?.listenerClosed(id);
      return;
    }
    case Ev.AcceptError:
      listenerWatchers.get(id)?.acceptError(errorFromNative(a, 'accept', {}));
      return;
  }
}
