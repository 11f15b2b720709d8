// net-binding.ts - the Binding interface (lib/binding.ts) on node:net sockets and servers.
//
// The same public API then runs on node:net: for platforms without a native build, and for the
// bench, which runs every scenario through the same code on both backends. The event channel is
// the native one's: records [type, id, a, b] collected per event-loop turn and handed to JS in ONE
// onEvents() call (flushed from setImmediate, i.e. after the poll phase that produced them); Data
// chunks travel beside the records (`chunks`, index in `a`), since node:net already gives each read
// its own Buffer.
//
// Ids follow native/core/ids.h (generation * 2^24 + reactor * 2^20 + slot) with reactor 0: dense
// slots from a free list, the generation bumped on reuse, a slot reused only after the batch that
// carried its Close was delivered (lib/engine.ts indexes its table by slot).
//
// What node:net cannot do, and what happens instead:
// - reusePort: node:net has it from Node 22.12 / 23.1 (server.listen({ reusePort })). On older
//   Node, listen() with reusePort fails with ENOTSUP (and a one-time warning saying why); it is
//   not emulated (node's cluster module shares one listening socket only among its own workers).
// - reuseAddress: false: libuv always sets SO_REUSEADDR on listening sockets; the flag is ignored.
// - acceptBatch: libuv accepts until EAGAIN; ignored.
// - IP_BIND_ADDRESS_NO_PORT: node:net binds an explicit localAddress with port 0 BEFORE connect(),
//   so the kernel reserves a port per source address, not per (source, destination): one source
//   address holds at most one port range of connections in total, whatever the destinations.
// - IP_LOCAL_PORT_RANGE (localPortRange): emulated by binding explicit ports from the range.
// - EMFILE while accepting: libuv's "EMFILE trick" accepts and closes the waiting connections (the
//   server reports AcceptError and keeps serving), where the native backend leaves them waiting in
//   the backlog until descriptors free up.
// - threads: one (the JS thread). Writes are copied (as the native backend does), so a Buffer may
//   be reused as soon as write() returns.
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { type Binding, type NativeStats, Ev, Flag, SlowPolicy, SLOW_CONSUMER_ERRNO } from './binding';

const SLOT_LIMIT = 1 << 20;
const GEN_LIMIT = 2 ** 29;
const ID_GEN = 2 ** 24;

// Same order as native/core/errors.cc kSyscallNames; names node reports that are not there get
// appended on first sight.
const SYSCALLS = ['', 'socket', 'bind', 'listen', 'accept', 'connect', 'read', 'write', 'shutdown', 'setsockopt', 'getsockname', 'epoll_ctl'];
const enum Sc { None = 0, Bind = 2, Listen = 3, Accept = 4, Connect = 5, Read = 6, Write = 7 }

const UV_UNKNOWN = -4094;

interface NetConn {
  id: number;
  slot: number;
  sock: net.Socket;
  owner: number;
  /** JS knows this id (Accept or Connected delivered / queued). */
  reported: boolean;
  /** Connect request id while connecting (0 once connected, or for accepted sockets). */
  request: number;
  ending: boolean;
  closed: boolean;
  errored: boolean;
  wantDrain: boolean;
  maxBuffered: number;
  policy: SlowPolicy;
  /** Position in its owner's dense member list (broadcast), -1 when not listed. */
  pos: number;
  groups: number[] | undefined;
  timer: NodeJS.Timeout | undefined;
  onWritten: (() => void) | undefined;
  ends: [string, number, string, number, 4 | 6] | undefined;
}

interface NetListener {
  id: number;
  server: net.Server;
  owner: number;
  open: boolean;
}

const kConn = Symbol('myriad.conn');
type TaggedSocket = net.Socket & { [kConn]?: NetConn };

let reusePortWarned = false;

/** node:net's server.listen({ reusePort }) exists from Node 22.12 and 23.1. */
export function netSupportsReusePort(version = process.versions.node): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export function createNetBinding(): Binding {
  const errorMap = getSystemErrorMap();
  const errnoByCode = new Map<string, number>();
  for (const [errno, [code]] of errorMap) errnoByCode.set(code, errno);
  const syscalls = SYSCALLS.slice();
  const syscallIndex = new Map<string, number>(syscalls.map((s, i) => [s, i]));

  let onEvents: ((records: Float64Array, arena: Buffer | undefined, chunks?: Buffer[]) => void) | undefined;
  let started = false;

  // ---- the event channel: records for the next flush, double-buffered ----
  let rec = new Float64Array(4096);
  let spare = new Float64Array(4096);
  let n = 0;
  let chunks: Buffer[] = [];
  let closing: number[] = []; // slots whose Close is in the pending batch
  let scheduled = false;

  // ---- tables ----
  const conns: (NetConn | undefined)[] = [];
  // Closed connections whose slot JS has not let go yet, by slot: their endpoints stay readable
  // (the native engine answers from its connection table until the release).
  const closedConns: (NetConn | undefined)[] = [];
  const gens: number[] = [];
  const free: number[] = [];
  let nslots = 0;
  const members = new Map<number, NetConn[]>(); // owner -> its established connections (broadcast)
  const groups = new Map<number, Set<NetConn>>();
  const listeners = new Map<number, NetListener>();
  let nextListenerId = 1;

  const st = {
    accepted: 0, dialed: 0, closed: 0, failures: 0, acceptErrors: 0, bytesRead: 0, bytesWritten: 0,
    broadcasts: 0, queued: 0, dropped: 0, slowClosed: 0, live: 0, events: 0, flushes: 0,
  };

  // The event loop is kept alive by the sockets and servers themselves, plus this handle while the
  // engine holds anything (e.g. a connection whose socket closed but whose Close is not delivered).
  let keeper: NodeJS.Timeout | undefined;

  function schedule(): void {
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }

  function emit(type: number, id: number, a = 0, b = 0): void {
    if (n + 4 > rec.length) {
      const bigger = new Float64Array(rec.length * 2);
      bigger.set(rec.subarray(0, n));
      rec = bigger;
    }
    rec[n] = type;
    rec[n + 1] = id;
    rec[n + 2] = a;
    rec[n + 3] = b;
    n += 4;
    if (!scheduled) schedule();
  }

  function flush(): void {
    scheduled = false;
    if (n === 0) return;
    const records = rec.subarray(0, n);
    const batchChunks = chunks;
    const released = closing;
    const used = rec;
    rec = spare.length >= 4096 ? spare : new Float64Array(4096);
    spare = used;
    n = 0;
    chunks = [];
    closing = [];
    st.events += records.length / 4;
    st.flushes++;
    try {
      onEvents!(records, undefined, batchChunks);
    } finally {
      // JS has seen these Close events: the slots may carry new connections now.
      for (const s of released) release(s);
    }
  }

  function syscallOf(name: string | undefined): number {
    if (!name) return Sc.None;
    let i = syscallIndex.get(name);
    if (i === undefined) {
      i = syscalls.length;
      syscalls.push(name);
      syscallIndex.set(name, i);
    }
    return i;
  }

  function errnoOf(err: unknown): number {
    const e = err as { errno?: unknown; code?: unknown };
    if (typeof e.errno === 'number' && e.errno < 0) return e.errno;
    if (typeof e.code === 'string') return errnoByCode.get(e.code) ?? UV_UNKNOWN;
    return UV_UNKNOWN;
  }

  // ---- slots ----
  function alloc(sock: net.Socket, owner: number, request: number): NetConn | undefined {
    let slot: number;
    if (free.length > 0) slot = free.pop()!;
    else {
      if (nslots >= SLOT_LIMIT) return undefined;
      slot = nslots++;
      gens[slot] = 1;
    }
    const c: NetConn = {
      id: gens[slot] * ID_GEN + slot, slot, sock, owner, reported: false, request, ending: false, closed: false,
      errored: false, wantDrain: false, maxBuffered: 0, policy: SlowPolicy.Close, pos: -1, groups: undefined,
      timer: undefined, onWritten: undefined, ends: undefined,
    };
    conns[slot] = c;
    (sock as TaggedSocket)[kConn] = c;
    return c;
  }

  function release(slot: number): void {
    closedConns[slot] = undefined;
    let g = gens[slot] + 1;
    if (g >= GEN_LIMIT) g = 1;
    gens[slot] = g;
    free.push(slot);
  }

  function lookup(id: number): NetConn | undefined {
    if (typeof id !== 'number') return undefined;
    const c = conns[id % ID_GEN];
    return c !== undefined && c.id === id ? c : undefined;
  }

  function listMember(c: NetConn): void {
    let list = members.get(c.owner);
    if (list === undefined) members.set(c.owner, (list = []));
    c.pos = list.length;
    list.push(c);
  }

  function unlistMember(c: NetConn): void {
    if (c.pos < 0) return;
    const list = members.get(c.owner)!;
    const last = list.pop()!;
    if (last !== c) {
      list[c.pos] = last;
      last.pos = c.pos;
    }
    c.pos = -1;
    if (list.length === 0) members.delete(c.owner);
  }

  function readEnds(c: NetConn): NetConn['ends'] {
    if (c.ends === undefined) {
      const s = c.sock;
      if (s.remoteAddress === undefined || s.localAddress === undefined) return undefined;
      c.ends = [s.localAddress, s.localPort ?? 0, s.remoteAddress, s.remotePort ?? 0, s.remoteFamily === 'IPv6' ? 6 : 4];
    }
    return c.ends;
  }

  // ---- socket events (shared handlers: `this` is the socket) ----
  function onData(this: TaggedSocket, chunk: Buffer): void {
    const c = this[kConn]!;
    st.bytesRead += chunk.length;
    chunks.push(chunk);
    emit(Ev.Data, c.id, chunks.length - 1, chunk.length);
  }
  function onEnd(this: TaggedSocket): void {
    const c = this[kConn]!;
    readEnds(c); // while the handle is open: a close may follow before JS asks
    emit(Ev.End, c.id);
  }
  function onTimeout(this: TaggedSocket): void {
    const c = this[kConn]!;
    if (c.reported) emit(Ev.Timeout, c.id);
  }
  function onError(this: TaggedSocket, err: Error): void {
    const c = this[kConn]!;
    if (c.closed) return;
    const e = err as Error & { syscall?: string };
    if (!c.reported) {
      connectFailed(c, errnoOf(err), syscallOf(e.syscall ?? 'connect'));
      return;
    }
    c.errored = true;
    emit(Ev.Error, c.id, errnoOf(err), syscallOf(e.syscall));
  }
  function onClose(this: TaggedSocket, hadError: boolean): void {
    const c = this[kConn]!;
    if (c.closed) return;
    if (!c.reported) {
      // Closed before JS knew it (a connect that failed without an 'error', e.g. destroyed).
      connectFailed(c, errnoByCode.get('ECONNABORTED') ?? UV_UNKNOWN, Sc.Connect);
      return;
    }
    c.closed = true;
    conns[c.slot] = undefined;
    if (c.ends !== undefined) closedConns[c.slot] = c;
    unlistMember(c);
    dropGroups(c);
    st.closed++;
    st.live--;
    st.bytesWritten -= this.writableLength; // discarded, never sent
    emit(Ev.Close, c.id, hadError || c.errored ? 1 : 0);
    closing.push(c.slot);
  }
  function attach(sock: net.Socket): void {
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onError);
    sock.on('close', onClose);
    sock.on('timeout', onTimeout);
  }

  function connectFailed(c: NetConn, errno: number, sc: number): void {
    c.closed = true;
    if (c.timer !== undefined) clearTimeout(c.timer);
    conns[c.slot] = undefined;
    st.failures++;
    emit(Ev.ConnectFailed, c.request, errno, sc);
    c.sock.destroy();
    release(c.slot); // JS never saw this id
  }

  function dropGroups(c: NetConn): void {
    if (c.groups === undefined) return;
    for (const g of c.groups) {
      const set = groups.get(g);
      if (set === undefined) continue;
      set.delete(c);
      if (set.size === 0) groups.delete(g);
    }
    c.groups = undefined;
  }

  function bytesOf(data: Uint8Array | string): Buffer {
    if (typeof data === 'string') return Buffer.from(data, 'utf8');
    if (data instanceof Uint8Array) return Buffer.from(data); // a copy
    throw invalid('data');
  }

  function invalid(what: string): TypeError {
    const e = new TypeError(`myriad: invalid ${what}`) as TypeError & { code: string };
    e.code = 'ERR_INVALID_ARG_VALUE';
    return e;
  }

  // One write as the native backend does it: copied (the caller may reuse its buffer at once),
  // counted, and watched for the drain that follows a write at or past the high-water mark:
  // while a drain is owed every write carries a callback, and the one after which nothing is
  // buffered reports Drain (node's own 'drain' follows the socket's high-water mark, not ours).
  function writeTo(c: NetConn, data: Uint8Array | string, shared: boolean, highWaterMark: number): number {
    const sock = c.sock;
    const len = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    if (len === 0) return sock.writableLength;
    st.bytesWritten += len;
    const payload = typeof data === 'string' || shared ? data : Buffer.from(data);
    if (c.wantDrain || sock.writableLength + len >= highWaterMark) {
      sock.write(payload, (c.onWritten ??= drainCheck.bind(null, c)));
      const total = sock.writableLength;
      if (total >= highWaterMark) c.wantDrain = true;
      return total;
    }
    sock.write(payload);
    return sock.writableLength;
  }
  function drainCheck(c: NetConn): void {
    if (!c.wantDrain || c.closed || c.sock.writableLength !== 0) return;
    c.wantDrain = false;
    emit(Ev.Drain, c.id);
  }

  function toSlowConsumer(c: NetConn, size: number): boolean {
    if (c.maxBuffered === 0 || c.sock.writableLength + size <= c.maxBuffered) return true;
    switch (c.policy) {
      case SlowPolicy.Drop:
        st.dropped++;
        return false;
      case SlowPolicy.Close:
        st.slowClosed++;
        c.errored = true;
        emit(Ev.Error, c.id, SLOW_CONSUMER_ERRNO, Sc.Write);
        c.sock.destroy();
        return false;
      default:
        return true;
    }
  }

  function broadcastTo(c: NetConn, buf: Buffer): void {
    if (!c.reported || c.ending || c.closed || c.sock.destroyed) return;
    if (!toSlowConsumer(c, buf.length)) return;
    st.queued++;
    writeTo(c, buf, true, Infinity);
  }

  function setupConnected(c: NetConn, flags: number, keepAliveDelayMs: number, idleTimeoutMs: number): void {
    const sock = c.sock;
    if (flags & Flag.NoDelay) sock.setNoDelay(true);
    if (flags & Flag.KeepAlive) sock.setKeepAlive(true, keepAliveDelayMs);
    if (idleTimeoutMs > 0) sock.setTimeout(idleTimeoutMs);
  }

  function parseHost(host: unknown, what: string): number {
    const fam = typeof host === 'string' ? net.isIP(host) : 0;
    if (fam === 0) throw invalid(what);
    return fam;
  }

  function portRangeCandidate(lo: number, hi: number): number {
    return lo + Math.floor(Math.random() * (hi - lo + 1));
  }

  const binding: Binding = {
    backend: 'net',
    syscalls,
    platformThreads: typeof availableParallelism === 'function' ? availableParallelism() : 1,

    init(cb) {
      if (typeof cb !== 'function') throw invalid('callback');
      if (onEvents === undefined) onEvents = cb;
    },

    configure(_threads: number) {
      return !started;
    },

    threads() {
      return 1;
    },

    ref(on: boolean) {
      if (on) {
        if (keeper === undefined) keeper = setInterval(() => {}, 1 << 30);
        else keeper.ref();
      } else keeper?.unref();
    },

    listen(req, host, port, owner, backlog, _acceptBatch, flags, keepAliveDelayMs, idleTimeoutMs, maxBuffered, slowPolicy) {
      parseHost(host, 'listen address');
      started = true;
      const reusePort = (flags & Flag.ReusePort) !== 0;
      if (reusePort && !netSupportsReusePort()) {
        if (!reusePortWarned) {
          reusePortWarned = true;
          process.emitWarning(`myriad (net backend): reusePort needs Node >= 22.12 (node:net server.listen({ reusePort })); ` +
            `this is Node ${process.versions.node}: listen() fails with ENOTSUP. Use the native backend to share an endpoint between processes.`,
          'MyriadWarning');
        }
        emit(Ev.ListenFailed, req, errnoByCode.get('ENOTSUP') ?? UV_UNKNOWN, Sc.Listen);
        return;
      }
      const server = net.createServer({
        allowHalfOpen: true,
        noDelay: (flags & Flag.NoDelay) !== 0,
        keepAlive: (flags & Flag.KeepAlive) !== 0,
        keepAliveInitialDelay: keepAliveDelayMs,
      });
      const l: NetListener = { id: nextListenerId++, server, owner, open: false };
      server.on('connection', (sock: net.Socket) => {
        const c = alloc(sock, owner, 0);
        if (c === undefined) {
          sock.destroy();
          st.acceptErrors++;
          return;
        }
        attach(sock);
        if (idleTimeoutMs > 0) sock.setTimeout(idleTimeoutMs);
        c.maxBuffered = maxBuffered > 0 ? maxBuffered : 0;
        c.policy = slowPolicy;
        c.reported = true;
        st.accepted++;
        st.live++;
        listMember(c);
        emit(Ev.Accept, c.id, owner);
      });
      server.on('error', (err: Error & { syscall?: string }) => {
        if (!l.open) {
          // node:net names every failure of server.listen() 'listen'; the address errors come
          // from bind(), as the native backend says.
          const errno = errnoOf(err);
          const code = errorMap.get(errno)?.[0];
          const sc = code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES' ? 'bind' : err.syscall ?? 'listen';
          emit(Ev.ListenFailed, req, errno, syscallOf(sc));
          return;
        }
        // accept() failed (EMFILE, ...): libuv keeps listening.
        st.acceptErrors++;
        emit(Ev.AcceptError, l.id, errnoOf(err));
      });
      const opts: net.ListenOptions & { reusePort?: boolean } = {
        host, port, backlog, ipv6Only: (flags & Flag.Ipv6Only) !== 0, exclusive: true,
      };
      if (reusePort) opts.reusePort = true;
      server.listen(opts, () => {
        l.open = true;
        listeners.set(l.id, l);
        const addr = server.address() as net.AddressInfo;
        emit(Ev.ListenOk, req, l.id, addr.port);
      });
    },

    closeListener(listenerId) {
      const l = listeners.get(listenerId);
      if (l === undefined) return;
      listeners.delete(listenerId);
      // Closes the listening socket now; node's own 'close' waits for the connections, which
      // belong to the engine here, so ListenerClosed is reported at once.
      l.server.close();
      emit(Ev.ListenerClosed, listenerId);
    },

    connect(req, host, port, localHost, localPort, portLo, portHi, timeoutMs, owner, flags, keepAliveDelayMs, idleTimeoutMs,
      maxBuffered, slowPolicy) {
      const family = parseHost(host, 'connect address');
      if (localHost !== null && localHost !== undefined) parseHost(localHost, 'local address');
      started = true;
      const sock = new net.Socket({ allowHalfOpen: true });
      const c = alloc(sock, owner, req);
      if (c === undefined) {
        st.failures++;
        emit(Ev.ConnectFailed, req, errnoByCode.get('EMFILE') ?? UV_UNKNOWN, Sc.Connect);
        return;
      }
      attach(sock);
      c.maxBuffered = maxBuffered > 0 ? maxBuffered : 0;
      c.policy = slowPolicy;
      const opts: net.TcpSocketConnectOpts = { host, port };
      if (localHost) opts.localAddress = localHost;
      if (localPort) opts.localPort = localPort;
      else if (portLo > 0 && portHi >= portLo) {
        // IP_LOCAL_PORT_RANGE has no node:net equivalent: bind an explicit port from the range.
        opts.localAddress ??= family === 6 ? '::' : '0.0.0.0';
        opts.localPort = portRangeCandidate(portLo, portHi);
      }
      sock.once('connect', () => {
        if (c.closed) return;
        if (sock.localPort === sock.remotePort && sock.localAddress === sock.remoteAddress) {
          // TCP self-connect (nothing listens there; the source port picked was the destination
          // port): refused, as the native backend reports it.
          connectFailed(c, errnoByCode.get('ECONNREFUSED') ?? -111, Sc.Connect);
          return;
        }
        if (c.timer !== undefined) clearTimeout(c.timer);
        c.timer = undefined;
        c.request = 0;
        c.reported = true;
        st.dialed++;
        st.live++;
        setupConnected(c, flags, keepAliveDelayMs, idleTimeoutMs);
        listMember(c);
        emit(Ev.Connected, c.id, req);
      });
      if (timeoutMs > 0) {
        c.timer = setTimeout(() => {
          c.timer = undefined;
          if (!c.reported && !c.closed) connectFailed(c, errnoByCode.get('ETIMEDOUT') ?? -110, Sc.Connect);
        }, timeoutMs);
      }
      sock.connect(opts);
    },

    write(id, data, highWaterMark) {
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw invalid('data');
      const c = lookup(id);
      if (c === undefined || c.ending || c.closed || c.sock.destroyed) return 0;
      return writeTo(c, data, false, highWaterMark > 0 ? highWaterMark : 1);
    },

    end(id, data) {
      const c = lookup(id);
      if (c === undefined || c.ending || c.closed) return;
      if (data !== undefined && data !== null && typeof data !== 'string' && !(data instanceof Uint8Array)) throw invalid('data');
      c.ending = true;
      unlistMember(c); // broadcasts skip connections that are ending, as the reactors do
      if (data !== undefined && data !== null) {
        const len = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
        st.bytesWritten += len;
        c.sock.end(typeof data === 'string' ? data : Buffer.from(data));
      } else c.sock.end();
    },

    destroy(id) {
      const c = lookup(id);
      if (c !== undefined && !c.closed) c.sock.destroy();
    },

    pause(id) {
      lookup(id)?.sock.pause();
    },

    resume(id) {
      lookup(id)?.sock.resume();
    },

    setNoDelay(id, on) {
      const c = lookup(id);
      if (c !== undefined && !c.closed) c.sock.setNoDelay(on);
    },

    setKeepAlive(id, on, delayMs) {
      const c = lookup(id);
      if (c !== undefined && !c.closed) c.sock.setKeepAlive(on, delayMs);
    },

    setTimeout(id, ms) {
      const c = lookup(id);
      if (c !== undefined && !c.closed) c.sock.setTimeout(ms);
    },

    setMaxBuffered(id, bytes, policy) {
      const c = lookup(id);
      if (c === undefined) return;
      c.maxBuffered = bytes > 0 ? bytes : 0;
      c.policy = policy;
    },

    broadcast(owner, data, exceptId) {
      const buf = bytesOf(data);
      st.broadcasts++;
      const list = members.get(owner);
      if (list === undefined || buf.length === 0) return;
      // The idiomatic node:net way: one write per socket. A member closed by the slow-consumer
      // policy leaves the list only on its 'close' (later), so indexes stay valid here.
      for (let i = 0; i < list.length; i++) {
        const c = list[i];
        if (c.id !== exceptId) broadcastTo(c, buf);
      }
    },

    groupAdd(group, id) {
      const c = lookup(id);
      if (c === undefined || !c.reported || c.closed) return;
      let set = groups.get(group);
      if (set === undefined) groups.set(group, (set = new Set()));
      if (set.has(c)) return;
      set.add(c);
      (c.groups ??= []).push(group);
    },

    groupDelete(group, id) {
      const c = lookup(id);
      const set = groups.get(group);
      if (c === undefined || set === undefined || !set.delete(c)) return;
      if (set.size === 0) groups.delete(group);
      const i = c.groups!.indexOf(group);
      if (i >= 0) c.groups!.splice(i, 1);
    },

    groupBroadcast(group, data, exceptId) {
      const buf = bytesOf(data);
      st.broadcasts++;
      const set = groups.get(group);
      if (set === undefined || buf.length === 0) return;
      for (const c of set) if (c.id !== exceptId) broadcastTo(c, buf);
    },

    groupClear(group) {
      const set = groups.get(group);
      if (set === undefined) return;
      groups.delete(group);
      for (const c of set) {
        const i = c.groups?.indexOf(group) ?? -1;
        if (i >= 0) c.groups!.splice(i, 1);
      }
    },

    endpoints(id) {
      const c = lookup(id);
      if (c === undefined) {
        const gone = typeof id === 'number' ? closedConns[id % ID_GEN] : undefined;
        return gone !== undefined && gone.id === id ? gone.ends : undefined;
      }
      return readEnds(c);
    },

    buffered(id) {
      const c = lookup(id);
      return c === undefined ? 0 : c.sock.writableLength;
    },

    stats(): NativeStats {
      let buffered = 0;
      for (const c of conns) if (c !== undefined && !c.closed) buffered += c.sock.writableLength;
      return {
        connectionsEstablished: st.live,
        connectionsAccepted: st.accepted,
        connectionsDialed: st.dialed,
        connectionsClosed: st.closed,
        connectionFailures: st.failures,
        acceptErrors: st.acceptErrors,
        bytesRead: st.bytesRead,
        bytesWritten: Math.max(0, st.bytesWritten - buffered),
        broadcasts: st.broadcasts,
        messagesQueued: st.queued,
        messagesDropped: st.dropped,
        slowConsumersClosed: st.slowClosed,
        bytesBuffered: buffered,
        reactors: [{ eventsHandled: st.events, wakeups: st.flushes, batches: st.flushes, connections: st.live }],
      };
    },

    errorName(errno) {
      const e = errorMap.get(errno);
      return e === undefined ? ['UNKNOWN', 'unknown error'] : [e[0], e[1]];
    },

    rlimitNofile(_raise) {
      // node:net cannot call setrlimit: report the limits (Linux: /proc/self/limits), raise nothing.
      if (process.platform === 'win32') return null;
      try {
        const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
        if (m === null) return null;
        const num = (s: string) => (s === 'unlimited' ? Infinity : Number(s));
        return [num(m[1]), num(m[2])];
      } catch {
        return null;
      }
    },
  };
  return binding;
}
