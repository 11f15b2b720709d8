// options.ts - the per-connection options servers and dialers share, validated once.
import { Flag, SlowPolicy } from './binding';
import type { ConnectionDefaults } from './connection';
import { invalidArgType, invalidArgValue, validateBool, validateInt, validateObject } from './errors';

export interface ConnectionOptions {
  /** TCP_NODELAY on every connection. Default false. */
  noDelay?: boolean;
  /** SO_KEEPALIVE on every connection; an object also sets the idle time before the first probe. */
  keepAlive?: boolean | { initialDelayMs: number };
  /** write() returns false once this many bytes are buffered. Default 64 KiB. */
  highWaterMark?: number;
  /** false: answer the peer's FIN with end() automatically. Default true (stay writable). */
  allowHalfOpen?: boolean;
  /** Idle timeout for every connection, in ms (0 = none): 'timeout' fires, timed natively. */
  idleTimeoutMs?: number;
  /** Destroy a connection when its timeout fires. Default false. */
  closeOnTimeout?: boolean;
  /**
   * Broadcasts' cap on a connection's buffered bytes (a slow consumer's backlog). Default 4 MiB;
   * 0 = no cap. conn.write() is not capped: it has write()'s return value and 'drain'.
   */
  maxBuffered?: number;
  /**
   * What a broadcast does to a connection it would push past maxBuffered: 'close' (destroy it
   * with ERR_SLOW_CONSUMER; the default, since a reconnecting client can resync while a silently
   * gappy stream corrupts state), 'drop' (skip this message for it; counted in
   * stats().messagesDropped), or 'buffer' (queue anyway; memory unbounded).
   */
  slowConsumer?: 'close' | 'drop' | 'buffer';
}

export interface NormalizedConnectionOptions {
  flags: number; // Flag.NoDelay | Flag.KeepAlive
  keepAliveDelayMs: number;
  idleTimeoutMs: number;
  maxBuffered: number;
  slowPolicy: SlowPolicy;
  defaults: ConnectionDefaults;
}

export const DEFAULT_HIGH_WATER_MARK = 64 * 1024;
export const DEFAULT_MAX_BUFFERED = 4 * 1024 * 1024;
const POLICIES: Record<string, SlowPolicy> = { close: SlowPolicy.Close, drop: SlowPolicy.Drop, buffer: SlowPolicy.Buffer };

export function parseSlowPolicy(value: unknown, name: string): SlowPolicy {
  if (typeof value !== 'string' || !(value in POLICIES)) throw invalidArgValue(name, value, "must be 'close', 'drop' or 'buffer'");
  return POLICIES[value];
}
const MAX_MS = 0x7fffffff;

export function normalizeConnectionOptions(o: Record<string, unknown>, where: string): NormalizedConnectionOptions {
  let flags = 0;
  let keepAliveDelayMs = 0;
  if (o.noDelay !== undefined && validateBool(o.noDelay, `${where}.noDelay`)) flags |= Flag.NoDelay;
  if (o.keepAlive !== undefined) {
    if (typeof o.keepAlive === 'boolean') {
      if (o.keepAlive) flags |= Flag.KeepAlive;
    } else if (o.keepAlive !== null && typeof o.keepAlive === 'object') {
      const k = validateObject(o.keepAlive, `${where}.keepAlive`);
      keepAliveDelayMs = validateInt(k.initialDelayMs, `${where}.keepAlive.initialDelayMs`, 0, MAX_MS);
      flags |= Flag.KeepAlive;
    } else {
      throw invalidArgType(`${where}.keepAlive`, 'of type boolean or an object with initialDelayMs', o.keepAlive);
    }
  }
  const highWaterMark = o.highWaterMark === undefined ? DEFAULT_HIGH_WATER_MARK
    : validateInt(o.highWaterMark, `${where}.highWaterMark`, 1, 2 ** 31 - 1);
  const allowHalfOpen = o.allowHalfOpen === undefined ? true : validateBool(o.allowHalfOpen, `${where}.allowHalfOpen`);
  const idleTimeoutMs = o.idleTimeoutMs === undefined ? 0 : validateInt(o.idleTimeoutMs, `${where}.idleTimeoutMs`, 0, MAX_MS);
  const closeOnTimeout = o.closeOnTimeout === undefined ? false : validateBool(o.closeOnTimeout, `${where}.closeOnTimeout`);
  const maxBuffered = o.maxBuffered === undefined ? DEFAULT_MAX_BUFFERED : validateInt(o.maxBuffered, `${where}.maxBuffered`, 0, 2 ** 32 - 1);
  const slowPolicy = o.slowConsumer === undefined ? SlowPolicy.Close : parseSlowPolicy(o.slowConsumer, `${where}.slowConsumer`);
  return { flags, keepAliveDelayMs, idleTimeoutMs, maxBuffered, slowPolicy, defaults: { highWaterMark, allowHalfOpen, closeOnTimeout } };
}
