// connection.ts - one TCP connection. A lean object: an id, a few flags and a reference to its
// owner. Its EventEmitter state is created on the first on(), so a connection nobody listens
// to costs a few dozen bytes of JS heap; the socket itself lives in a reactor.
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { addConnection, binding, errorFromNative, hold, type Owner } from './engine';
import { invalidArgType, stateError, validateBool, validateInt, validateFunction } from './errors';
import { parseSlowPolicy } from './options';

const enum F {
  Paused = 1,        // user called pause()
  NativePaused = 2,  // the reactor stopped reading (pause() or too much queued here)
  Ending = 4,        // end() called
  Destroyed = 8,     // destroy() called or closed
  Closed = 16,       // 'close' emitted
  PeerEnded = 32,    // 'end' seen from the reactor
  AllowHalfOpen = 64,
  CloseOnTimeout = 128,
  Errored = 256,
  Fresh = 512,       // dialed, and the application has not had a turn to attach listeners yet
}

// Dialed connections whose end/error/close wait for the next turn of the event loop (see
// Connection._holdEventsOneTurn). One setImmediate for all of them, not one per connection.
let fresh: Connection[] = [];
function releaseFresh(): void {
  const list = fresh;
  fresh = [];
  for (const c of list) c._releaseHeldEvents();
}

const END = Symbol('end');
type Queued = Buffer | typeof END;
// What a connection keeps while paused or unheard; `bytes` avoids re-summing on every chunk.
type Queue = Queued[] & { bytes: number };

interface Cold {
  queue: Queue | undefined;
  ends: [string, number, string, number, 4 | 6] | undefined;
  tag: unknown;
  groups?: Set<{ _forget(conn: Connection): void }>;
  /** Set while 'close' waits for kept data to be read (see _onClose): its hadError. */
  closeHadError?: boolean;
  /** end/error/close that arrived while the connection was Fresh, replayed in order. */
  held?: (() => void)[];
}

/** Throws ERR_INVALID_ARG_TYPE unless data is a string or a Uint8Array (Buffer). */
export function validateData(data: unknown): asserts data is Uint8Array | string {
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw invalidArgType('data', 'of type string or an instance of Buffer or Uint8Array', data);
  }
}

// Per-connection settings shared by every connection of one server or dialer.
export interface ConnectionDefaults {
  highWaterMark: number;
  allowHalfOpen: boolean;
  closeOnTimeout: boolean;
}

export interface Connection extends EventEmitter {
  on(event: 'data', fn: (chunk: Buffer) => void): this;
  on(event: 'end' | 'drain' | 'timeout', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  on(event: 'close', fn: (hadError: boolean) => void): this;
  on(event: string | symbol, fn: (...args: any[]) => void): this;
}

/**
 * A TCP connection owned by a myriad reactor.
 *
 * Events: 'data' (Buffer), 'end' (the peer sent FIN; the connection stays writable until you
 * call end()), 'drain', 'timeout', 'error' (only emitted when someone listens: one failing client
 * of a hundred thousand does not crash the process; 'close' reports hadError), 'close'.
 *
 * Data that arrives while paused or before anyone listens for 'data' is kept (up to the
 * high-water mark, then the reactor stops reading: TCP flow control does the rest).
 */
export class Connection {
  /** Process-unique id (a number below 2^53). */
  readonly id: number;
  /** @internal */ _owner: Owner;
  /** @internal */ _flags: number;
  /** @internal Rarely needed state, allocated on first need: kept data, addresses, owner bookkeeping. */
  _cold: Cold | undefined;
  // EventEmitter's _events/_eventsCount come from its prototype (undefined/0) until the first
  // on(): a connection nobody listens to has these four fields and nothing else.

  /** @internal */
  constructor(id: number, owner: Owner) {
    this.id = id;
    this._owner = owner;
    const d = owner._defaults;
    this._flags = (d.allowHalfOpen ? F.AllowHalfOpen : 0) | (d.closeOnTimeout ? F.CloseOnTimeout : 0);
    this._cold = undefined;
    addConnection(this);
    hold();
  }

  /** @internal */
  get _tag(): unknown { return this._cold?.tag; }
  set _tag(v: unknown) { this._coldState().tag = v; }
  private _coldState(): Cold {
    return (this._cold ??= { queue: undefined, ends: undefined, tag: undefined });
  }

  // ---- addresses (read from the reactor's table on first use, then kept) ----
  private _endpoints(): [string, number, string, number, 4 | 6] | undefined {
    if (this._cold?.ends === undefined && (this._flags & F.Closed) === 0) this._coldState().ends = binding().endpoints(this.id);
    return this._cold?.ends;
  }
  get localAddress(): string | undefined { return this._endpoints()?.[0]; }
  get localPort(): number | undefined { return this._endpoints()?.[1]; }
  get remoteAddress(): string | undefined { return this._endpoints()?.[2]; }
  get remotePort(): number | undefined { return this._endpoints()?.[3]; }
  get family(): 'IPv4' | 'IPv6' | undefined {
    const e = this._endpoints();
    return e === undefined ? undefined : e[4] === 6 ? 'IPv6' : 'IPv4';
  }

  /** Bytes written but not yet taken by the kernel. */
  get bufferedAmount(): number {
    return (this._flags & F.Destroyed) !== 0 ? 0 : binding().buffered(this.id);
  }
  get destroyed(): boolean { return (this._flags & F.Destroyed) !== 0; }
  get writable(): boolean { return (this._flags & (F.Ending | F.Destroyed)) === 0; }
  get paused(): boolean { return (this._flags & F.Paused) !== 0; }

  // ---- writing ----

  /**
   * Queues bytes for sending. Returns false once bufferedAmount reaches the high-water mark:
   * keep writing if you must (nothing is dropped), or wait for 'drain'.
   */
  write(data: Uint8Array | string): boolean {
    validateData(data);
    if ((this._flags & (F.Ending | F.Destroyed)) !== 0) {
      this._lateWrite();
      return false;
    }
    return binding().write(this.id, data, this._owner._defaults.highWaterMark) < this._owner._defaults.highWaterMark;
  }

  /** Sends what is queued (and `data`), then FIN. The connection closes once the peer ends too. */
  end(data?: Uint8Array | string): this {
    if (data !== undefined) validateData(data);
    if ((this._flags & (F.Ending | F.Destroyed)) !== 0) return this;
    this._flags |= F.Ending;
    binding().end(this.id, data);
    return this;
  }

  /** Closes at once; queued output is discarded. With `err`, 'error' (if listened) precedes 'close'. */
  destroy(err?: Error): this {
    if ((this._flags & F.Destroyed) !== 0) {
      // [hammer fix] A 'close' waiting for kept data (see _onClose): destroy() discards the data.
      const cold = this._cold;
      if (cold?.closeHadError !== undefined && (this._flags & F.Closed) === 0) {
        cold.queue = undefined;
        process.nextTick(() => this._finishDeferredClose());
      }
      return this;
    }
    this._flags |= F.Destroyed;
    if (err !== undefined) this._flags |= F.Errored;
    binding().destroy(this.id);
    if (err !== undefined) process.nextTick(() => this._emitError(err));
    return this;
  }

  // ---- reading ----

  pause(): this {
    if ((this._flags & F.Paused) !== 0) return this;
    this._flags |= F.Paused;
    this._nativePause();
    return this;
  }

  resume(): this {
    if ((this._flags & F.Paused) === 0) return this;
    this._flags &= ~F.Paused;
    if (this._cold?.queue !== undefined) process.nextTick(() => this._flush());
    else this._nativeResume();
    return this;
  }

  // ---- options ----

  setNoDelay(noDelay = true): this {
    validateBool(noDelay, 'noDelay');
    if ((this._flags & F.Destroyed) === 0) binding().setNoDelay(this.id, noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelayMs = 0): this {
    validateBool(enable, 'enable');
    validateInt(initialDelayMs, 'initialDelayMs', 0, 0x7fffffff);
    if ((this._flags & F.Destroyed) === 0) binding().setKeepAlive(this.id, enable, initialDelayMs);
    return this;
  }

  /** Emits 'timeout' after `ms` without activity (0 turns it off); timed natively, not per-socket JS timers. */
  setTimeout(ms: number, callback?: () => void): this {
    validateInt(ms, 'ms', 0, 0x7fffffff);
    if (callback !== undefined) {
      validateFunction(callback, 'callback');
      this.once('timeout', callback);
    }
    if ((this._flags & F.Destroyed) === 0) binding().setTimeout(this.id, ms);
    return this;
  }

  /** Sets this connection's cap for broadcasts and what happens past it (see ConnectionOptions). */
  setMaxBuffered(bytes: number, policy: 'close' | 'drop' | 'buffer' = 'close'): this {
    validateInt(bytes, 'bytes', 0, 2 ** 32 - 1);
    const p = parseSlowPolicy(policy, 'policy');
    if ((this._flags & F.Destroyed) === 0) binding().setMaxBuffered(this.id, bytes, p);
    return this;
  }

  /** @internal Groups this connection is in (left natively when it closes; mirrored here). */
  get _groups(): Set<{ _forget(conn: Connection): void }> | undefined {
    return this._cold?.groups;
  }
  _joinedGroup(g: { _forget(conn: Connection): void }): void {
    (this._coldState().groups ??= new Set()).add(g);
  }
  _leftGroup(g: { _forget(conn: Connection): void }): void {
    this._cold?.groups?.delete(g);
  }

  /** A node:stream Duplex over this connection, for stream.pipeline, tls.connect({ socket }), http. */
  toStream(): Duplex {
    return connectionStream(this);
  }

  // ---- EventEmitter: a 'data' listener delivers what was kept meanwhile ----
  on(event: string | symbol, fn: (...args: any[]) => void): this {
    EventEmitter.prototype.on.call(this, event, fn);
    if (event === 'data' && this._cold?.queue !== undefined && (this._flags & F.Paused) === 0) process.nextTick(() => this._flush());
    return this;
  }
  addListener(event: string | symbol, fn: (...args: any[]) => void): this {
    return this.on(event, fn);
  }
  once(event: string | symbol, fn: (...args: any[]) => void): this {
    EventEmitter.prototype.once.call(this, event, fn);
    if (event === 'data' && this._cold?.queue !== undefined && (this._flags & F.Paused) === 0) process.nextTick(() => this._flush());
    return this;
  }

  // ---- from the engine ----

  /** @internal */
  _onData(chunk: Buffer): void {
    if ((this._flags & F.Destroyed) !== 0) return;
    if (this._cold?.queue === undefined && (this._flags & F.Paused) === 0 && this._hears('data')) {
      this.emit('data', chunk);
      return;
    }
    const cold = this._coldState();
    const q = (cold.queue ??= Object.assign([] as Queued[], { bytes: 0 }));
    q.push(chunk);
    q.bytes += chunk.length;
    if (q.bytes >= this._owner._defaults.highWaterMark) this._nativePause();
  }

  /**
   * @internal [hammer fix] connect() resolves with this connection from inside an event batch;
   * the application's continuation (a microtask, often several hops away) attaches listeners
   * after that batch. An end, error or close in the SAME batch (the peer reset at once, under
   * load) would be emitted before anyone listens, and the application would hold a connection
   * that is closed without ever hearing of it. So they wait for the next turn of the event loop,
   * as node:net's do. Data needs no help: it is kept until someone listens.
   */
  _holdEventsOneTurn(): void {
    this._flags |= F.Fresh;
    if (fresh.length === 0) setImmediate(releaseFresh);
    fresh.push(this);
  }

  /** @internal */
  _releaseHeldEvents(): void {
    this._flags &= ~F.Fresh;
    const held = this._cold?.held;
    if (held === undefined) return;
    this._cold!.held = undefined;
    for (const fn of held) fn();
  }

  private _hold(fn: () => void): boolean {
    if ((this._flags & F.Fresh) === 0) return false;
    (this._coldState().held ??= []).push(fn);
    return true;
  }

  /** @internal */
  _onEnd(): void {
    if (this._hold(() => this._onEnd())) return;
    // [hammer fix] destroy() came first: no 'end' after it, as in node:net.
    if ((this._flags & F.Destroyed) !== 0) return;
    this._flags |= F.PeerEnded;
    if (this._cold?.queue !== undefined) this._cold.queue.push(END);
    else this._emitEnd();
  }

  /** @internal */
  _onDrain(): void {
    if ((this._flags & F.Destroyed) === 0) this.emit('drain');
  }

  /** @internal */
  _onTimeout(): void {
    if ((this._flags & F.Destroyed) !== 0) return;
    this.emit('timeout');
    if ((this._flags & F.CloseOnTimeout) !== 0) {
      this.destroy(stateError('ETIMEDOUT', `connection ${this.id} idle for longer than its timeout`));
    }
  }

  /** @internal */
  _onError(errno: number, syscall: string): void {
    if ((this._flags & F.Fresh) !== 0) this._endpoints(); // read now: the slot is reused after this batch
    if (this._hold(() => this._onError(errno, syscall))) return;
    this._flags |= F.Errored;
    this._emitError(errorFromNative(errno, syscall, { address: this.remoteAddress, port: this.remotePort }));
  }

  /** @internal */
  _onClose(hadError: boolean): void {
    // The slot is let go after this batch. A connection that is not closed for the application
    // yet (held for its first turn, or kept for bytes it has not read) reads its endpoints now;
    // one the application destroyed does not (node:net's forgets its addresses then too).
    if ((this._flags & F.Destroyed) === 0 && ((this._flags & F.Fresh) !== 0 || this._cold?.queue !== undefined)) this._endpoints();
    if (this._hold(() => this._onClose(hadError))) return;
    // [hammer fix] The reactor closes the socket once the peer's FIN is read and our side has
    // ended, whether or not the application has read what was kept for it (paused, or no 'data'
    // listener yet). Those bytes and the 'end' are still delivered: 'close' then waits until
    // they have been read (or destroy() discards them). Before this fix they were dropped here.
    // Found by the hammer; pinned down by test/hammer-regressions.test.ts.
    const keep = (this._flags & F.Destroyed) === 0 && this._cold?.queue !== undefined;
    this._flags |= F.Destroyed | (keep ? 0 : F.Closed);
    if (this._cold !== undefined) {
      if (!keep) this._cold.queue = undefined;
      if (this._cold.groups !== undefined) for (const g of this._cold.groups) g._forget(this);
      this._cold.groups = undefined;
    }
    this._owner._connClosed(this);
    if (keep) {
      this._cold!.closeHadError = hadError || (this._flags & F.Errored) !== 0;
      return;
    }
    this.emit('close', hadError || (this._flags & F.Errored) !== 0);
  }

  private _finishDeferredClose(): void {
    if ((this._flags & F.Closed) !== 0 || this._cold?.closeHadError === undefined) return;
    this._flags |= F.Closed;
    this.emit('close', this._cold.closeHadError);
  }

  private _hears(event: string): boolean {
    const events = (this as unknown as { _events?: Record<string, unknown> })._events;
    return events !== undefined && events[event] !== undefined;
  }

  private _emitError(err: Error): void {
    if (this._hears('error')) this.emit('error', err);
  }

  private _emitEnd(): void {
    this.emit('end');
    if ((this._flags & F.AllowHalfOpen) === 0) this.end();
  }

  // As in node:net: writing after end() is an error; after destroy() it is quietly refused.
  private _lateWrite(): void {
    if ((this._flags & F.Destroyed) !== 0) return;
    const err = stateError('ERR_STREAM_WRITE_AFTER_END', 'write after end');
    process.nextTick(() => this._emitError(err));
  }

  private _nativePause(): void {
    if ((this._flags & (F.NativePaused | F.Destroyed)) !== 0) return;
    this._flags |= F.NativePaused;
    binding().pause(this.id);
  }

  private _nativeResume(): void {
    if ((this._flags & F.NativePaused) === 0 || (this._flags & F.Destroyed) !== 0) return;
    this._flags &= ~F.NativePaused;
    binding().resume(this.id);
  }

  // Delivers what was kept while paused or unheard, in order, then reads again.
  private _flush(): void {
    const cold = this._cold;
    while (cold?.queue !== undefined && (this._flags & F.Paused) === 0 && (this._flags & F.Closed) === 0) {
      if (!this._hears('data')) return;
      const q = cold.queue;
      const item = q.shift()!;
      if (item !== END) q.bytes -= item.length;
      if (q.length === 0) cold.queue = undefined;
      if (item === END) this._emitEnd();
      else this.emit('data', item);
    }
    if (cold?.queue === undefined && (this._flags & F.Paused) === 0) this._nativeResume();
    if (cold !== undefined && cold.queue === undefined) this._finishDeferredClose();
  }
}
Object.setPrototypeOf(Connection.prototype, EventEmitter.prototype);

function connectionStream(conn: Connection): Duplex {
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      conn.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (conn.destroyed) return cb(stateError('ERR_STREAM_DESTROYED', 'connection destroyed'));
      if (conn.write(chunk)) cb();
      else conn.once('drain', () => cb());
    },
    final(cb) {
      conn.end();
      cb();
    },
    destroy(err, cb) {
      conn.destroy();
      cb(err);
    },
  });
  conn.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) conn.pause();
  });
  conn.on('end', () => stream.push(null));
  conn.on('error', (err: Error) => stream.destroy(err));
  conn.on('close', () => {
    if (!stream.destroyed) stream.destroy();
  });
  conn.on('timeout', () => stream.emit('timeout'));
  // What node:net users (http, tls) look up on a socket.
  Object.defineProperties(stream, {
    remoteAddress: { get: () => conn.remoteAddress },
    remotePort: { get: () => conn.remotePort },
    localAddress: { get: () => conn.localAddress },
    localPort: { get: () => conn.localPort },
    remoteFamily: { get: () => conn.family },
  });
  Object.assign(stream, {
    setNoDelay: (on?: boolean) => { conn.setNoDelay(on); return stream; },
    setKeepAlive: (on?: boolean, d?: number) => { conn.setKeepAlive(on, d); return stream; },
    setTimeout: (ms: number, cb?: () => void) => { conn.setTimeout(ms); if (cb) stream.once('timeout', cb); return stream; },
  });
  return stream;
}
