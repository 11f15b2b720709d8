// server.ts - listen(): one server over any number of endpoints, accepting on every reactor.
import { EventEmitter } from 'node:events';
import { Flag } from './binding';
import { parseEndpoint, type Endpoint, type EndpointInput } from './address';
import { Connection } from './connection';
import {
  awaitListen, binding, connectionsOf, hold, newOwnerId, newRequestId, registerOwner, unhold,
  unregisterOwner, watchListener, type Owner,
} from './engine';
import {
  invalidArgType, invalidArgValue, validateBool, validateFunction, validateInt, validateObject,
  type SystemError,
} from './errors';
import { validateData } from './connection';
import { normalizeConnectionOptions, type ConnectionOptions, type NormalizedConnectionOptions } from './options';

export interface ListenOptions extends ConnectionOptions {
  /** Where to listen: "127.0.0.1:9000", "[::1]:9000", { host: '0.0.0.0', port: 0 } ... */
  endpoints: EndpointInput[];
  /** Accept queue length. Default: the OS maximum (the kernel clamps to net.core.somaxconn). */
  backlog?: number;
  /**
   * SO_REUSEADDR. Default true on Linux (a restarted server can bind while old connections sit
   * in TIME_WAIT). Default false on Windows, where SO_REUSEADDR would let another socket take the
   * port while it is in use: listeners use SO_EXCLUSIVEADDRUSE there unless you pass true.
   */
  reuseAddress?: boolean;
  /** SO_REUSEPORT: several servers or processes share one endpoint. Default false. */
  reusePort?: boolean;
  /** IPV6_V6ONLY for "::" endpoints. Default false (dual stack). */
  ipv6Only?: boolean;
  /** Connections accepted per wake-up of a reactor. Default 64. */
  acceptBatch?: number;
  /** Called for every new connection (before the 'connection' event). */
  onConnection?: (conn: Connection) => void;
}

export interface CloseOptions {
  /** Also destroy every connection of this server and wait until they are closed. */
  destroyConnections?: boolean;
}

const MAX_BACKLOG = 65535;

/** A listening server. Created by listen(). */
export class Server extends EventEmitter implements Owner, AsyncIterable<Connection> {
  readonly ownerId: number;
  /** The bound endpoints, in the order given (real ports where 0 was asked). */
  endpoints: Endpoint[] = [];
  /** Live connections. */
  connections = 0;
  /** @internal */ _conn: NormalizedConnectionOptions;
  /** @internal */ get _defaults() { return this._conn.defaults; }
  private _listenerIds: number[] = [];
  private _onConnection?: (conn: Connection) => void;
  private _state: 'listening' | 'closing' | 'closed' = 'listening';
  private _closed?: Promise<void>;
  private _openListeners = 0;
  private _listenersClosed?: () => void;
  private _connsClosed?: () => void;

  /** @internal */
  constructor(conn: NormalizedConnectionOptions, onConnection?: (conn: Connection) => void) {
    super();
    this.ownerId = newOwnerId();
    this._conn = conn;
    this._onConnection = onConnection;
    registerOwner(this);
  }

  /** @internal */
  _addListener(listenerId: number, endpoint: Endpoint): void {
    this._listenerIds.push(listenerId);
    this.endpoints.push(endpoint);
    this._openListeners++;
    watchListener(listenerId, {
      listenerClosed: () => {
        if (--this._openListeners === 0) this._listenersClosed?.();
      },
      acceptError: (err: SystemError) => {
        // The reactor pauses that listener and retries; existing connections are unaffected.
        // Reported only to those who listen: a full fd table must not crash a server.
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
    });
  }

  /** @internal */
  _accepted(id: number): void {
    if (this._state !== 'listening') {
      binding().destroy(id);
      return;
    }
    const conn = new Connection(id, this);
    this.connections++;
    this._onConnection?.(conn);
    this.emit('connection', conn);
  }

  /** @internal */
  _connClosed(_conn: Connection): void {
    if (--this.connections === 0) this._connsClosed?.();
  }

  /** Stops accepting. Resolves when every listening socket is closed (and, with destroyConnections, every connection). */
  close(options: CloseOptions = {}): Promise<void> {
    validateObject(options, 'options');
    const destroy = options.destroyConnections === undefined ? false : validateBool(options.destroyConnections, 'options.destroyConnections');
    if (destroy) this.destroyConnections();
    if (this._closed !== undefined) return this._closed;
    this._state = 'closing';
    const listenersDone = new Promise<void>((resolve) => {
      if (this._openListeners === 0) resolve();
      else this._listenersClosed = resolve;
    });
    for (const id of this._listenerIds) binding().closeListener(id);
    this._closed = listenersDone.then(async () => {
      if (destroy && this.connections > 0) await new Promise<void>((resolve) => (this._connsClosed = resolve));
      this._state = 'closed';
      unregisterOwner(this);
      unhold();
      this.emit('close');
    });
    return this._closed;
  }

  /**
   * Queues `data` for every live connection of this server: copied into native memory once and
   * written by the reactors in parallel; the JS thread only hands it over. Order with conn.write()
   * on each connection is kept. Connections past their maxBuffered get the slowConsumer policy.
   * Returns how many connections it was handed to.
   */
  broadcast(data: Uint8Array | string): number {
    validateData(data);
    if (this.connections === 0) return 0;
    binding().broadcast(this.ownerId, data, 0);
    return this.connections;
  }

  /** Destroys every live connection of this server. */
  destroyConnections(): void {
    for (const conn of connectionsOf(this)) conn.destroy();
  }

  get listening(): boolean {
    return this._state === 'listening';
  }

  /** `for await (const conn of server)`: connections from now on, until the server closes. */
  [Symbol.asyncIterator](): AsyncIterator<Connection> {
    const ready: Connection[] = [];
    const waiting: ((r: IteratorResult<Connection>) => void)[] = [];
    const onConn = (conn: Connection) => {
      const w = waiting.shift();
      if (w !== undefined) w({ value: conn, done: false });
      else ready.push(conn);
    };
    const onClose = () => {
      for (const w of waiting.splice(0)) w({ value: undefined, done: true });
    };
    const stop = () => {
      this.off('connection', onConn);
      this.off('close', onClose);
    };
    this.on('connection', onConn);
    this.on('close', onClose);
    return {
      next: () => {
        const conn = ready.shift();
        if (conn !== undefined) return Promise.resolve({ value: conn, done: false });
        if (this._state === 'closed') {
          stop();
          return Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve) => waiting.push(resolve));
      },
      return: () => {
        stop();
        onClose();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/**
 * Listens on every endpoint at once. Resolves when all are bound; if any fails, the others are
 * closed and the first error (EADDRINUSE, EADDRNOTAVAIL, ...) is thrown.
 */
export async function listen(options: ListenOptions): Promise<Server> {
  const o = validateObject(options, 'options');
  if (!Array.isArray(o.endpoints)) throw invalidArgType('options.endpoints', 'an array', o.endpoints);
  if (o.endpoints.length === 0) throw invalidArgValue('options.endpoints', o.endpoints, 'must name at least one endpoint');
  const endpoints = o.endpoints.map((e, i) => parseEndpoint(e, `options.endpoints[${i}]`));
  const backlog = o.backlog === undefined ? MAX_BACKLOG : validateInt(o.backlog, 'options.backlog', 0, 2 ** 31 - 1);
  const acceptBatch = o.acceptBatch === undefined ? 64 : validateInt(o.acceptBatch, 'options.acceptBatch', 1, 65536);
  let flags = 0;
  // On Windows SO_REUSEADDR lets another socket take a port that is in use, so listeners stay
  // exclusive (SO_EXCLUSIVEADDRUSE) unless reuseAddress: true is asked for explicitly.
  const reuseDefault = process.platform !== 'win32';
  if (o.reuseAddress === undefined ? reuseDefault : validateBool(o.reuseAddress, 'options.reuseAddress')) flags |= Flag.ReuseAddress;
  if (o.reusePort !== undefined && validateBool(o.reusePort, 'options.reusePort')) flags |= Flag.ReusePort;
  if (o.ipv6Only !== undefined && validateBool(o.ipv6Only, 'options.ipv6Only')) flags |= Flag.Ipv6Only;
  const onConnection = o.onConnection === undefined ? undefined
    : (validateFunction(o.onConnection, 'options.onConnection') as (conn: Connection) => void);
  const conn = normalizeConnectionOptions(o, 'options');

  const server = new Server(conn, onConnection);
  hold(); // released by close()
  const b = binding();
  const results = await Promise.allSettled(endpoints.map((ep) => new Promise<{ listenerId: number; port: number }>((resolve, reject) => {
    const req = newRequestId();
    awaitListen(req, { resolve, reject, fields: { address: ep.host, port: ep.port } });
    b.listen(req, ep.host, ep.port, server.ownerId, backlog, acceptBatch, flags | conn.flags, conn.keepAliveDelayMs, conn.idleTimeoutMs,
      conn.maxBuffered, conn.slowPolicy);
  })));
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') server._addListener(r.value.listenerId, { ...endpoints[i], port: r.value.port });
  });
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await server.close({ destroyConnections: true });
    throw failed.reason;
  }
  return server;
}

