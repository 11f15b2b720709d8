// dialer.ts - outbound connections at scale: a pool of source addresses, explicit local
// endpoints, a cap on connects in flight, and connectMany() for tens of thousands at once.
//
// Why source addresses matter: a TCP connection is (source IP, source port, destination IP,
// destination port), so one source reaches ONE destination endpoint through at most one ephemeral
// port range (28,232 ports by default on Linux). k sources reach k times as many. A source given
// without a port is bound with IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port per 4-tuple
// at connect() time instead of reserving one port per source address.
import { Flag } from './binding';
import { parseEndpoint, parseIp, type Endpoint, type EndpointInput } from './address';
import { Connection } from './connection';
import { awaitConnect, binding, connectionsOf, errorFromNative, newOwnerId, newRequestId, type Owner } from './engine';
import {
  abortError, errnoOf, invalidArgType, invalidArgValue, outOfRange, validateFunction, validateInt, validateObject,
  validatePort, validateSignal, type SystemError,
} from './errors';
import { normalizeConnectionOptions, type ConnectionOptions, type NormalizedConnectionOptions } from './options';

export interface DialerOptions extends ConnectionOptions {
  /** Source IP pool; connections to each destination are spread evenly over it. */
  localAddresses?: string[];
  /** Per-socket ephemeral port range [low, high] (IP_LOCAL_PORT_RANGE, Linux 6.3+): no sysctl needed. */
  localPortRange?: [number, number];
  /** Connects in flight at once; more wait their turn. Default 1024. */
  maxPending?: number;
  /** Connect timeout in ms (0 = the kernel's own, minutes). Default 0. */
  timeoutMs?: number;
}

export interface ConnectOptions {
  /** Bind exactly this source address (with localPort: exactly this endpoint). */
  localAddress?: string;
  localPort?: number;
  signal?: AbortSignal;
}

export interface ConnectManyOptions {
  /** Called as results come in (at most once per event batch) and once at the end. */
  onProgress?: (established: number, failed: number) => void;
  signal?: AbortSignal;
}

// One (destination, source address) pair's bookkeeping.
interface SourceSlot {
  host: string;
  live: number; // connections established or in flight from this source to this destination
  // Set when this source ran out of ports (or is unusable) for this destination: skip it until
  // then, or until one of its connections closes and frees a port.
  skipUntil: number;
}

// Attempts of one connectMany() share one of these: aborting it is one flag, not a listener each.
interface AttemptGroup {
  aborted: boolean;
}

interface Attempt {
  group: AttemptGroup | undefined;
  target: Endpoint;
  localAddress: string | undefined; // explicit: no pool, no fallback
  localPort: number;
  tried: Set<SourceSlot> | undefined;
  lastError: SystemError | undefined;
  aborted: boolean;
  resolve(conn: Connection): void;
  reject(err: Error): void;
}

const SKIP_MS = 1000;
// Errors that mean "this source cannot reach that destination now": try the next source.
const SOURCE_ERRORS = new Set(['EADDRNOTAVAIL', 'EADDRINUSE']);

export class Dialer implements Owner {
  readonly ownerId = newOwnerId();
  /** Live connections made by this dialer. */
  connections = 0;
  /** @internal */ _conn: NormalizedConnectionOptions;
  /** @internal */ get _defaults() { return this._conn.defaults; }
  private _sources: { host: string; family: 4 | 6 }[];
  private _portLo = 0;
  private _portHi = 0;
  private _maxPending: number;
  private _timeoutMs: number;
  private _pending = 0;
  private _waiting: Attempt[] = [];
  private _slots = new Map<string, SourceSlot[]>();

  constructor(options: DialerOptions = {}) {
    const o = validateObject(options, 'options');
    this._sources = [];
    if (o.localAddresses !== undefined) {
      if (!Array.isArray(o.localAddresses)) throw invalidArgType('options.localAddresses', 'an array', o.localAddresses);
      this._sources = o.localAddresses.map((a, i) => parseIp(a, `options.localAddresses[${i}]`));
    }
    if (o.localPortRange !== undefined) {
      const r = o.localPortRange;
      if (!Array.isArray(r) || r.length !== 2) throw invalidArgType('options.localPortRange', 'an array [low, high]', r);
      this._portLo = validatePort(r[0], 'options.localPortRange[0]', false);
      this._portHi = validatePort(r[1], 'options.localPortRange[1]', false);
      if (this._portLo > this._portHi) throw outOfRange('options.localPortRange', 'low <= high', r);
    }
    this._maxPending = o.maxPending === undefined ? 1024 : validateInt(o.maxPending, 'options.maxPending', 1, 1 << 20);
    this._timeoutMs = o.timeoutMs === undefined ? 0 : validateInt(o.timeoutMs, 'options.timeoutMs', 0, 0x7fffffff);
    this._conn = normalizeConnectionOptions(o, 'options');
  }

  /** Connects in flight now. */
  get pending(): number {
    return this._pending;
  }

  /** Opens one connection. Rejects with a Node-style error (ECONNREFUSED, ETIMEDOUT, ...). */
  connect(target: EndpointInput, options: ConnectOptions = {}): Promise<Connection> {
    const ep = parseEndpoint(target, 'target', false);
    const o = validateObject(options, 'options');
    let localAddress: string | undefined;
    if (o.localAddress !== undefined) {
      const ip = parseIp(o.localAddress, 'options.localAddress');
      if (ip.family !== ep.family) throw invalidArgValue('options.localAddress', o.localAddress, `is not an IPv${ep.family} address like the target`);
      localAddress = ip.host;
    }
    const localPort = o.localPort === undefined ? 0 : validatePort(o.localPort, 'options.localPort');
    if (localPort !== 0 && localAddress === undefined) throw invalidArgValue('options.localPort', localPort, 'needs options.localAddress');
    const signal = validateSignal(o.signal, 'options.signal');
    return this._dial(ep, localAddress, localPort, signal);
  }

  /**
   * Opens `count` connections to one endpoint, at most maxPending in flight, spread over the
   * source pool. Resolves with the connections that were established (failures are counted in
   * onProgress); rejects only if every attempt failed, with the first error.
   */
  connectMany(target: EndpointInput, count: number, options: ConnectManyOptions = {}): Promise<Connection[]> {
    const ep = parseEndpoint(target, 'target', false);
    validateInt(count, 'count', 0, 1e8);
    const o = validateObject(options, 'options');
    const onProgress = o.onProgress === undefined ? undefined
      : (validateFunction(o.onProgress, 'options.onProgress') as (e: number, f: number) => void);
    const signal = validateSignal(o.signal, 'options.signal');
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<Connection[]>((resolve, reject) => {
      const conns: Connection[] = [];
      let failed = 0;
      let firstError: Error | undefined;
      let settled = false;
      let progressQueued = false;
      const group: AttemptGroup = { aborted: false };
      const report = () => {
        progressQueued = false;
        onProgress?.(conns.length, failed);
      };
      const onAbort = () => {
        if (settled) return;
        settled = true;
        group.aborted = true;
        this._waiting = this._waiting.filter((a) => a.group !== group);
        for (const c of conns) c.destroy();
        reject(abortError(signal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const finishOne = () => {
        if (settled) return;
        if (conns.length + failed < count) {
          if (onProgress !== undefined && !progressQueued) {
            progressQueued = true;
            setImmediate(report);
          }
          return;
        }
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        report();
        if (conns.length === 0 && count > 0) reject(firstError);
        else resolve(conns);
      };
      if (count === 0) {
        finishOne();
        return;
      }
      for (let i = 0; i < count; i++) {
        this._dial(ep, undefined, 0, undefined, group).then(
          (c) => {
            if (settled) c.destroy();
            else conns.push(c);
            finishOne();
          },
          (err: Error) => {
            failed++;
            firstError ??= err;
            finishOne();
          },
        );
      }
    });
  }

  /** Destroys every live connection this dialer made. */
  destroyConnections(): void {
    for (const conn of connectionsOf(this)) conn.destroy();
  }

  /** @internal */
  _connClosed(conn: Connection): void {
    this.connections--;
    const slot = conn._tag as SourceSlot | undefined;
    if (slot !== undefined) {
      slot.live--;
      slot.skipUntil = 0;
    }
  }

  private _dial(target: Endpoint, localAddress: string | undefined, localPort: number, signal: AbortSignal | undefined,
    group?: AttemptGroup): Promise<Connection> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<Connection>((resolve, reject) => {
      const attempt: Attempt = {
        group, target, localAddress, localPort, tried: undefined, lastError: undefined, aborted: false, resolve, reject,
      };
      if (signal !== undefined) {
        const onAbort = () => {
          attempt.aborted = true;
          const i = this._waiting.indexOf(attempt);
          if (i >= 0) this._waiting.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const done = () => signal.removeEventListener('abort', onAbort);
        attempt.resolve = (c) => { done(); resolve(c); };
        attempt.reject = (e) => { done(); reject(e); };
      }
      if (this._pending < this._maxPending) this._start(attempt);
      else this._waiting.push(attempt);
    });
  }

  // The source for the next connection to `target`: the one with the fewest live connections
  // to it, so no (source, destination) pair nears the end of its port range while another has room.
  private _pickSource(target: Endpoint, attempt: Attempt): SourceSlot | undefined {
    const key = `${target.host}|${target.port}`;
    let slots = this._slots.get(key);
    if (slots === undefined) {
      slots = this._sources.filter((s) => s.family === target.family).map((s) => ({ host: s.host, live: 0, skipUntil: 0 }));
      this._slots.set(key, slots);
    }
    const now = Date.now();
    let best: SourceSlot | undefined;
    for (const s of slots) {
      if (s.skipUntil > now || attempt.tried?.has(s)) continue;
      if (best === undefined || s.live < best.live) best = s;
    }
    return best;
  }

  private _start(attempt: Attempt): void {
    if (attempt.group?.aborted) attempt.aborted = true;
    if (attempt.aborted) return this._next();
    let slot: SourceSlot | undefined;
    let local = attempt.localAddress;
    if (local === undefined && this._sources.some((s) => s.family === attempt.target.family)) {
      slot = this._pickSource(attempt.target, attempt);
      if (slot === undefined) {
        // Every source of the pool is out of ports for this destination (or unusable).
        attempt.reject(attempt.lastError ?? errorFromNative(errnoOf('EADDRNOTAVAIL'), 'connect',
          { address: attempt.target.host, port: attempt.target.port }));
        return this._next();
      }
      local = slot.host;
      slot.live++; // counted from the start, so a burst of connects spreads too
    }
    let flags = this._conn.flags;
    if (local !== undefined && attempt.localPort === 0) flags |= Flag.BindNoPort;
    const req = newRequestId();
    this._pending++;
    awaitConnect(req, {
      connected: (id) => {
        this._pending--;
        const conn = new Connection(id, this);
        this.connections++;
        if (slot !== undefined) conn._tag = slot;
        conn._holdEventsOneTurn();
        if (attempt.aborted) conn.destroy();
        else attempt.resolve(conn);
        this._next();
      },
      failed: (errno, syscall) => {
        this._pending--;
        if (slot !== undefined) slot.live--;
        const err = errorFromNative(errno, syscall, {
          address: attempt.target.host, port: attempt.target.port, localAddress: local, localPort: attempt.localPort,
        });
        if (slot !== undefined && SOURCE_ERRORS.has(err.code) && !attempt.aborted) {
          // This source is out of ports (or unusable) for this destination: try the next one.
          slot.skipUntil = Date.now() + SKIP_MS;
          (attempt.tried ??= new Set()).add(slot);
          attempt.lastError = err;
          return this._start(attempt);
        }
        if (!attempt.aborted) attempt.reject(err);
        this._next();
      },
    });
    binding().connect(req, attempt.target.host, attempt.target.port, local ?? null, attempt.localPort,
      this._portLo, this._portHi, this._timeoutMs, this.ownerId, flags, this._conn.keepAliveDelayMs, this._conn.idleTimeoutMs,
      this._conn.maxBuffered, this._conn.slowPolicy);
  }

  private _next(): void {
    while (this._pending < this._maxPending && this._waiting.length > 0) {
      const next = this._waiting.shift()!;
      if (!next.aborted && !next.group?.aborted) this._start(next);
    }
  }
}
