// dialer.ts - outbound connections at scale: a pool of source addresses, explicit local
// endpoints, a cap on connects in flight, and connectMany() for tens of thousands at once.
//
// Why source addresses matter: a TCP connection is (source IP, source port, destination IP,
// destination port), so one source reaches ONE destination endpoint through at most one ephemeral
// port range (28,232 ports by default on Linux). k sources reach k times as many. A source given
// without a port is bound with IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port per 4-tuple
// at connect() time instead of reserving one port per source address.
//
// The connect path is lean, since a connect storm runs it tens of thousands of times a second:
// connect() and connectMany() calls wait their turn in one FIFO (a linked list). On a backend with
// dial plans (the native one), a connectMany() at the head of the line is handed to the reactors
// whole (a Plan): JS decides how many connections come from which source (waterFill, the same
// rule as pickSource), the reactors start each next attempt as one settles, and JS only handles
// the connections as they arrive; the plan holds min(cap, unsettled) of the maxPending slots and
// gets the slots others free while it still has attempts to start. Elsewhere (node:net) a
// connectMany() call is ONE entry that hands out its attempts as connect slots free up, so at
// most maxPending attempts exist at any time whatever the count, and their records are reused.
// An attempt is the engine's callback object itself (no promise, no closure); its destination and
// source pool are looked up once per call, not per attempt; the clock is read only while a source
// is being skipped.
import { Flag, type Binding } from './binding';
import { parseEndpoint, parseIp, type Endpoint, type EndpointInput } from './address';
import { Connection } from './connection';
import {
  awaitConnect, binding, connectionsOf, endConnectWait, errorFromNative, newOwnerId, newRequestId, type ConnectWaiter,
  type Owner,
} from './engine';
import {
  abortError, errnoOf, invalidArgType, invalidArgValue, outOfRange, validateFunction, validateInt, validateObject,
  validatePort, validateSignal,
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
  readonly host: string;
  readonly route: Route;
  /** Its place in Dialer._slotList (what the tag table records), or -1 past TAG_LIMIT. */
  readonly index: number;
  /** Connections established or in flight from this source to this destination. */
  live: number;
  /**
   * A Date.now() time, set when this source ran out of ports (or is unusable) for this
   * destination: skip it until then, or until one of its connections closes and frees a port.
   * 0 when usable.
   */
  skipUntil: number;
}

// One destination, with the pool's sources of its address family.
interface Route {
  readonly host: string;
  readonly port: number;
  /** Empty when the pool has no source of this family: the kernel picks the source. */
  readonly slots: SourceSlot[];
  /** How many slots have skipUntil set: while none do, picking a source reads no clock. */
  skipping: number;
}

const NO_SLOTS: SourceSlot[] = [];
const SKIP_MS = 1000;
// Tag table entries hold a slot list index + 1 in 24 bits (and 8 bits of the id's generation).
const TAG_LIMIT = 0xffffff - 1;
// Spare attempt records kept for reuse (more are left to the GC after a burst).
const MAX_SPARE = 4096;

// Errors that mean "this source cannot reach that destination now": try the next source.
// By errno, asked of the backend once per errno (its numbers are platform errnos).
const sourceErrnos = new Map<number, boolean>();
function isSourceError(errno: number): boolean {
  let v = sourceErrnos.get(errno);
  if (v === undefined) {
    const code = binding().errorName(errno)[0];
    v = code === 'EADDRNOTAVAIL' || code === 'EADDRINUSE';
    sourceErrnos.set(errno, v);
  }
  return v;
}

// What waits its turn for a connect slot: a connect() call (one attempt) or a connectMany() call
// (`count` attempts, started one by one as slots free up). Queued in a doubly linked list.
abstract class Request {
  prev: Request | undefined = undefined;
  next: Request | undefined = undefined;
  queued = false;
  settled = false;
  private _signal: AbortSignal | undefined = undefined;
  private _onAbort: (() => void) | undefined = undefined;

  constructor(readonly route: Route, readonly localAddress: string | undefined, readonly localPort: number,
    /** Attempts not yet started. */ public remaining: number) {}

  abstract connected(conn: Connection): void;
  abstract failed(errno: number, syscall: string, local: string | undefined): void;
  /** `n` attempts failed with `err`. */
  abstract failedWith(err: Error, n: number): void;

  listen(signal: AbortSignal, onAbort: () => void): void {
    this._signal = signal;
    this._onAbort = onAbort;
    signal.addEventListener('abort', onAbort, { once: true });
  }

  settle(): void {
    this.settled = true;
    if (this._onAbort !== undefined) this._signal!.removeEventListener('abort', this._onAbort);
  }

  error(errno: number, syscall: string, local: string | undefined): Error {
    return errorFromNative(errno, syscall, {
      address: this.route.host, port: this.route.port, localAddress: local, localPort: this.localPort,
    });
  }
}

// connect(): settles a promise.
class Single extends Request {
  constructor(route: Route, localAddress: string | undefined, localPort: number,
    readonly resolve: (conn: Connection) => void, readonly reject: (err: Error) => void) {
    super(route, localAddress, localPort, 1);
  }

  connected(conn: Connection): void {
    if (this.settled) {
      conn.destroy(); // aborted meanwhile
      return;
    }
    this.settle();
    this.resolve(conn);
  }

  failed(errno: number, syscall: string, local: string | undefined): void {
    if (!this.settled) this.failedWith(this.error(errno, syscall, local));
  }

  failedWith(err: Error): void {
    if (this.settled) return;
    this.settle();
    this.reject(err);
  }
}

// connectMany(): collects connections and counts failures; one promise for the whole call.
class Batch extends Request {
  readonly conns: Connection[] = [];
  failures = 0;
  firstError: Error | undefined = undefined;
  progressQueued = false;
  /** Set when the reactors carry the call out (Dialer._startPlan). */
  plan: Plan | undefined = undefined;

  constructor(route: Route, readonly count: number, readonly onProgress: ((e: number, f: number) => void) | undefined,
    readonly resolve: (conns: Connection[]) => void, readonly reject: (err: Error) => void) {
    super(route, undefined, 0, count);
  }

  connected(conn: Connection): void {
    if (this.settled) {
      conn.destroy(); // aborted meanwhile
      return;
    }
    this.conns.push(conn);
    this.done();
  }

  failed(errno: number, syscall: string, local: string | undefined): void {
    if (this.settled) return;
    this.failures++;
    this.firstError ??= this.error(errno, syscall, local); // the later ones' are not built
    this.done();
  }

  failedWith(err: Error, n: number): void {
    if (this.settled) return;
    this.failures += n;
    this.firstError ??= err;
    this.done();
  }

  private done(): void {
    if (this.conns.length + this.failures < this.count) {
      if (this.onProgress !== undefined && !this.progressQueued) {
        this.progressQueued = true;
        setImmediate(reportProgress, this);
      }
      return;
    }
    this.finish();
  }

  override settle(): void {
    super.settle();
    this.plan?.cancel();
  }

  finish(): void {
    this.settle();
    if (this.conns.length === 0 && this.count > 0) this.reject(this.firstError!);
    else this.resolve(this.conns);
    this.onProgress?.(this.conns.length, this.failures);
  }
}

function reportProgress(b: Batch): void {
  b.progressQueued = false;
  if (!b.settled) b.onProgress!(b.conns.length, b.failures);
}

// One connect in flight: the engine's waiter for its request id. Reused once settled.
class Attempt implements ConnectWaiter {
  req: Request;
  slot: SourceSlot | undefined = undefined;
  local: string | undefined = undefined;
  /** Sources that failed this attempt with a source error (rare: allocated then). */
  tried: SourceSlot[] | undefined = undefined;
  lastErrno = 0;
  lastSyscall = '';
  lastLocal: string | undefined = undefined;

  constructor(readonly dialer: Dialer, req: Request) {
    this.req = req;
  }

  connected(id: number): void {
    this.dialer._connected(this, id);
  }

  failed(errno: number, syscall: string): void {
    this.dialer._failed(this, errno, syscall);
  }
}

// A connectMany() carried out by the reactors (Binding.dialPlan): JS decided how many connections
// come from which source (waterFill), the reactors start each next attempt the moment one settles.
// The engine's waiter for the call's request id, for all its events.
class Plan implements ConnectWaiter {
  /** Connect slots the plan holds of the dialer's maxPending: min(cap, attempts unsettled). */
  reserved: number;
  /** The pool's sources the plan uses, by the reactors' source index (undefined: no pool). */
  sources: SourceSlot[] | undefined = undefined;
  private _cancelled = false;

  constructor(readonly dialer: Dialer, readonly batch: Batch, readonly id: number,
    /** Attempts allowed in flight (raised by credits as slots free up). */ public cap: number,
    /** Attempts whose outcome has not come yet. */ public unsettled: number,
    /** Shares (one per reactor) that have not reported DialPlanDone. */ public shares: number) {
    this.reserved = Math.min(cap, unsettled);
  }

  connected(id: number, source: number): void {
    this.dialer._planConnected(this, id, source);
  }

  failed(errno: number, syscall: string, source: number): void {
    this.dialer._planFailed(this, errno, syscall, source);
  }

  planDone(unstartedFailed: number, cap: number): void {
    this.dialer._planDone(this, unstartedFailed, cap);
  }

  planReturned(dropped: number, credit: number): void {
    this.dialer._planReturned(this, dropped, credit);
  }

  /** The call settled (done or aborted): the reactors start nothing more. */
  cancel(): void {
    if (this._cancelled) return;
    this._cancelled = true;
    binding().dialPlanCancel!(this.id);
  }
}

// How many of `count` new connections each source gets: the same as choosing, `count` times, the
// source with the fewest live connections (ties to the first), computed by levels. `live` holds
// the usable sources' counts; returns one quota per entry.
export function waterFill(live: readonly number[], count: number): number[] {
  const n = live.length;
  const q = new Array<number>(n).fill(0);
  if (n === 0 || count <= 0) return q;
  const sorted = [...live].sort((a, b) => a - b);
  // The level every source below it is raised to: the highest `level` with cost(level) <= count.
  let level = sorted[0];
  let below = 1; // sources at or below `level` (sorted[0..below-1])
  let left = count;
  for (;;) {
    while (below < n && sorted[below] <= level) below++;
    const next = below < n ? sorted[below] : Infinity;
    const step = Math.min(next - level, Math.floor(left / below));
    level += step;
    left -= step * below;
    if (level < next || step === 0) break;
  }
  for (let i = 0; i < n; i++) {
    if (live[i] < level) q[i] = level - live[i];
  }
  // The rest (fewer than the sources at the level) goes one each to the first of them.
  for (let i = 0; i < n && left > 0; i++) {
    if (live[i] <= level) {
      q[i]++;
      left--;
    }
  }
  return q;
}

// The source for the next connection to `route`: the one with the fewest live connections to it,
// so no (source, destination) pair nears the end of its port range while another has room.
function pickSource(route: Route, tried: SourceSlot[] | undefined): SourceSlot | undefined {
  const slots = route.slots;
  const now = route.skipping === 0 ? 0 : Date.now();
  let best: SourceSlot | undefined;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i];
    if (s.skipUntil !== 0) {
      if (s.skipUntil > now) continue;
      s.skipUntil = 0;
      route.skipping--;
    }
    if (tried !== undefined && tried.includes(s)) continue;
    if (best === undefined || s.live < best.live) best = s;
  }
  return best;
}

// What attempts fail with when no source of the pool is usable for their destination.
function noSourceError(route: Route): Error {
  return errorFromNative(errnoOf('EADDRNOTAVAIL'), 'connect', { address: route.host, port: route.port });
}

function unskip(slot: SourceSlot): void {
  if (slot.skipUntil === 0) return;
  slot.skipUntil = 0;
  slot.route.skipping--;
}

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
  private _flagsNoPort: number;
  private _binding: Binding | undefined = undefined;
  private _pending = 0;
  private _head: Request | undefined = undefined;
  private _tail: Request | undefined = undefined;
  private _spare: Attempt[] = [];
  // connectMany() calls the reactors are carrying out, oldest first.
  private _plans: Plan[] = [];
  // Destinations reached through the pool, by "host|port".
  private _routes = new Map<string, Route>();
  private _slotList: SourceSlot[] = [];
  // Which source slot each live pool connection uses, so that its close gives the place back.
  // Indexed like lib/engine.ts's table (an id is generation * 2^24 + reactor * 2^20 + slot): 4 bytes
  // a connection, (generation & 0xff) << 24 | (slot list index + 1), where a tag object on each
  // connection would cost ~50. A reactor reuses a slot only after the Close that freed it was
  // delivered, but a dialed connection's close may wait one turn (Connection._holdEventsOneTurn):
  // an entry still taken when its slot is reused moves to _spill until that close comes.
  private _tags: Uint32Array[] = [];
  private _spill: Map<number, number> | undefined = undefined;

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
    this._flagsNoPort = this._conn.flags | Flag.BindNoPort;
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
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const route = this._route(ep);
    return new Promise<Connection>((resolve, reject) => {
      const req = new Single(route, localAddress, localPort, resolve, reject);
      if (signal !== undefined) {
        req.listen(signal, () => {
          if (req.settled) return;
          req.settle();
          this._unqueue(req);
          reject(abortError(signal));
        });
      }
      this._enqueue(req);
    });
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
    const route = this._route(ep);
    return new Promise<Connection[]>((resolve, reject) => {
      const batch = new Batch(route, count, onProgress, resolve, reject);
      if (count === 0) {
        batch.finish();
        return;
      }
      if (signal !== undefined) {
        batch.listen(signal, () => {
          if (batch.settled) return;
          batch.settle();
          this._unqueue(batch);
          for (const c of batch.conns) c.destroy();
          reject(abortError(signal));
        });
      }
      this._enqueue(batch);
    });
  }

  /** Destroys every live connection this dialer made. */
  destroyConnections(): void {
    for (const conn of connectionsOf(this)) conn.destroy();
  }

  /** @internal */
  _connClosed(conn: Connection): void {
    this.connections--;
    if (this._slotList.length === 0 && conn._tag === undefined) return; // no pool connection
    const slot = this._untag(conn);
    if (slot !== undefined) {
      slot.live--;
      unskip(slot);
    }
  }

  /** @internal The engine's Connected, through the attempt. */
  _connected(a: Attempt, id: number): void {
    this._pending--;
    const conn = new Connection(id, this);
    this.connections++;
    if (a.slot !== undefined) this._tag(conn, a.slot);
    conn._holdEventsOneTurn();
    const req = a.req;
    this._recycle(a);
    try {
      req.connected(conn);
    } finally {
      this._pump();
    }
  }

  /** @internal The engine's ConnectFailed, through the attempt. */
  _failed(a: Attempt, errno: number, syscall: string): void {
    this._pending--;
    const slot = a.slot;
    const req = a.req;
    try {
      if (slot !== undefined) {
        slot.live--;
        if (!req.settled && isSourceError(errno)) {
          // This source is out of ports (or unusable) for this destination: try the next one.
          if (slot.skipUntil === 0) slot.route.skipping++;
          slot.skipUntil = Date.now() + SKIP_MS;
          (a.tried ??= []).push(slot);
          a.lastErrno = errno;
          a.lastSyscall = syscall;
          a.lastLocal = slot.host;
          this._launch(a);
          return;
        }
      }
      const local = a.local;
      this._recycle(a);
      req.failed(errno, syscall, local);
    } finally {
      this._pump();
    }
  }

  // The destination's bookkeeping: kept for destinations reached through the pool; made for the
  // call (nothing kept) when the pool has no source of the destination's family.
  private _route(ep: Endpoint): Route {
    if (!this._sources.some((s) => s.family === ep.family)) return { host: ep.host, port: ep.port, slots: NO_SLOTS, skipping: 0 };
    const key = `${ep.host}|${ep.port}`;
    let route = this._routes.get(key);
    if (route === undefined) {
      const r: Route = { host: ep.host, port: ep.port, slots: [], skipping: 0 };
      for (const s of this._sources) {
        if (s.family !== ep.family) continue;
        const index = this._slotList.length < TAG_LIMIT ? this._slotList.length : -1;
        const slot: SourceSlot = { host: s.host, route: r, index, live: 0, skipUntil: 0 };
        r.slots.push(slot);
        if (index >= 0) this._slotList.push(slot);
      }
      this._routes.set(key, r);
      route = r;
    }
    return route;
  }

  private _enqueue(req: Request): void {
    req.queued = true;
    req.prev = this._tail;
    if (this._tail === undefined) this._head = req;
    else this._tail.next = req;
    this._tail = req;
    this._pump();
  }

  private _unqueue(req: Request): void {
    if (!req.queued) return;
    req.queued = false;
    if (req.prev === undefined) this._head = req.next;
    else req.prev.next = req.next;
    if (req.next === undefined) this._tail = req.prev;
    else req.next.prev = req.prev;
    req.prev = req.next = undefined;
  }

  // Starts attempts while there is room, in the order they were asked for. A plan with attempts
  // not started yet is ahead of everything queued: freed slots go to it first.
  private _pump(): void {
    for (let i = 0; i < this._plans.length && this._pending < this._maxPending; i++) {
      const p = this._plans[i];
      const more = Math.min(this._maxPending - this._pending, p.unsettled - p.cap);
      if (more <= 0 || p.batch.settled) continue;
      p.cap += more;
      this._reserve(p);
      binding().dialPlanCredit!(p.id, more);
    }
    while (this._pending < this._maxPending) {
      const req = this._head;
      if (req === undefined) return;
      if (req instanceof Batch && req.remaining === req.count && this._planned(req)) {
        this._unqueue(req);
        this._startPlan(req);
        continue;
      }
      if (--req.remaining === 0) this._unqueue(req);
      const a = this._spare.pop();
      if (a === undefined) this._launch(new Attempt(this, req));
      else {
        a.req = req;
        this._launch(a);
      }
    }
  }

  // Whether the reactors can carry out this call: the backend has dial plans and a source tag
  // (16 bits) can name every source.
  private _planned(b: Batch): boolean {
    return (this._binding ??= binding()).dialPlan !== undefined && b.route.slots.length < 0xffff;
  }

  // Hands a whole connectMany() call to the reactors. The quotas follow pickSource's rule (the
  // fewest live first) over the sources usable now; the reactors move a source's share to the
  // others should it fail with a source error.
  private _startPlan(b: Batch): void {
    const route = b.route;
    let sources: string[] | null = null;
    let quotas: number[];
    let slots: SourceSlot[] | undefined;
    if (route.slots.length === 0) {
      quotas = [b.count];
    } else {
      const now = route.skipping === 0 ? 0 : Date.now();
      slots = [];
      for (const s of route.slots) {
        if (s.skipUntil !== 0) {
          if (s.skipUntil > now) continue;
          s.skipUntil = 0;
          route.skipping--;
        }
        slots.push(s);
      }
      if (slots.length === 0) {
        // No source is usable now: what the call would start would find the same.
        b.remaining = 0;
        b.failedWith(noSourceError(route), b.count);
        return;
      }
      sources = slots.map((s) => s.host);
      quotas = waterFill(slots.map((s) => s.live), b.count);
    }
    b.remaining = 0;
    const id = newRequestId();
    const cap = Math.min(this._maxPending - this._pending, b.count);
    const c = this._conn;
    const shares = this._binding!.dialPlan!(id, route.host, route.port, sources, quotas, cap, this._portLo, this._portHi,
      this._timeoutMs, this.ownerId, c.flags, c.keepAliveDelayMs, c.idleTimeoutMs, c.maxBuffered, c.slowPolicy);
    const plan = new Plan(this, b, id, cap, b.count, shares);
    plan.sources = slots;
    b.plan = plan;
    this._plans.push(plan);
    this._pending += plan.reserved;
    awaitConnect(id, plan);
  }

  // Keeps the plan's share of _pending at min(cap, unsettled).
  private _reserve(p: Plan): void {
    const r = p.shares === 0 ? 0 : Math.min(p.cap, p.unsettled);
    this._pending += r - p.reserved;
    p.reserved = r;
  }

  private _planSettled(p: Plan, n: number): void {
    p.unsettled -= n;
    const before = p.reserved;
    this._reserve(p);
    if (p.reserved < before) this._pump(); // the call's tail: slots for what waits behind it
  }

  /** @internal */
  _planConnected(p: Plan, id: number, source: number): void {
    const conn = new Connection(id, this);
    this.connections++;
    const slot = source !== 0 ? p.sources?.[source - 1] : undefined;
    if (slot !== undefined) {
      slot.live++;
      this._tag(conn, slot);
    }
    conn._holdEventsOneTurn();
    this._planSettled(p, 1);
    p.batch.connected(conn);
  }

  /** @internal */
  _planFailed(p: Plan, errno: number, syscall: string, source: number): void {
    const slot = source !== 0 ? p.sources?.[source - 1] : undefined;
    // The reactors report a source error only once no other source was left: skip this one for
    // a while, as connect() would.
    if (slot !== undefined && isSourceError(errno)) {
      if (slot.skipUntil === 0) slot.route.skipping++;
      slot.skipUntil = Date.now() + SKIP_MS;
    }
    this._planSettled(p, 1);
    p.batch.failed(errno, syscall, slot?.host);
  }

  /** @internal */
  _planDone(p: Plan, unstartedFailed: number, cap: number): void {
    p.cap -= cap;
    if (--p.shares === 0) {
      this._plans.splice(this._plans.indexOf(p), 1);
      endConnectWait(p.id);
    }
    this._planSettled(p, unstartedFailed); // before failedWith: it may call a throwing onProgress
    if (unstartedFailed > 0) p.batch.failedWith(noSourceError(p.batch.route), unstartedFailed);
  }

  /** @internal */
  _planReturned(p: Plan, dropped: number, credit: number): void {
    p.cap -= credit;
    this._planSettled(p, dropped);
  }

  private _recycle(a: Attempt): void {
    a.slot = undefined;
    a.local = undefined;
    if (a.tried !== undefined) {
      a.tried = undefined;
      a.lastErrno = 0;
      a.lastSyscall = '';
      a.lastLocal = undefined;
    }
    if (this._spare.length < MAX_SPARE) this._spare.push(a);
  }

  private _launch(a: Attempt): void {
    const req = a.req;
    const route = req.route;
    let local = req.localAddress;
    let slot: SourceSlot | undefined;
    if (local === undefined && route.slots.length !== 0) {
      slot = pickSource(route, a.tried);
      if (slot === undefined) return this._noSource(a);
      slot.live++; // counted from the start, so a burst of connects spreads too
      local = slot.host;
    }
    a.slot = slot;
    a.local = local;
    const id = newRequestId();
    this._pending++;
    awaitConnect(id, a);
    const c = this._conn;
    (this._binding ??= binding()).connect(id, route.host, route.port, local ?? null, req.localPort,
      this._portLo, this._portHi, this._timeoutMs, this.ownerId, local !== undefined && req.localPort === 0 ? this._flagsNoPort : c.flags,
      c.keepAliveDelayMs, c.idleTimeoutMs, c.maxBuffered, c.slowPolicy);
  }

  // Every source of the pool is out of ports for this destination (or unusable): the attempt
  // fails with the last source error it met. An attempt that met none (no source was usable when
  // it started) fails with EADDRNOTAVAIL, and so do its connectMany() call's attempts not started
  // yet: they would find the same now.
  private _noSource(a: Attempt): void {
    const req = a.req;
    const { lastErrno, lastSyscall, lastLocal } = a;
    this._recycle(a);
    if (lastErrno !== 0) return req.failed(lastErrno, lastSyscall, lastLocal);
    if (req.settled) return;
    const n = 1 + req.remaining;
    req.remaining = 0;
    this._unqueue(req);
    req.failedWith(noSourceError(req.route), n);
  }

  private _tag(conn: Connection, slot: SourceSlot): void {
    if (slot.index < 0) {
      conn._tag = slot;
      return;
    }
    const id = conn.id;
    const low = id % 16777216;
    const r = low >>> 20;
    const s = low & 0xfffff;
    let t = this._tags[r];
    if (t === undefined || s >= t.length) t = this._growTags(r, s);
    const old = t[s];
    if (old !== 0) (this._spill ??= new Map()).set(low + (old >>> 24) * 16777216, old);
    t[s] = (((id / 16777216) & 0xff) << 24) | (slot.index + 1);
  }

  private _untag(conn: Connection): SourceSlot | undefined {
    const tagged = conn._tag as SourceSlot | undefined;
    if (tagged !== undefined) return tagged;
    const id = conn.id;
    const low = id % 16777216;
    const gen = (id / 16777216) & 0xff;
    const t = this._tags[low >>> 20];
    const s = low & 0xfffff;
    let e = 0;
    if (t !== undefined && s < t.length && t[s] !== 0 && t[s] >>> 24 === gen) {
      e = t[s];
      t[s] = 0;
    } else if (this._spill !== undefined) {
      const key = low + gen * 16777216;
      e = this._spill.get(key) ?? 0;
      this._spill.delete(key);
      if (this._spill.size === 0) this._spill = undefined;
    }
    return e === 0 ? undefined : this._slotList[(e & 0xffffff) - 1];
  }

  private _growTags(r: number, s: number): Uint32Array {
    let n = 4096;
    while (n <= s) n *= 2;
    const t = new Uint32Array(n);
    const old = this._tags[r];
    if (old !== undefined) t.set(old);
    this._tags[r] = t;
    return t;
  }
}
