// group.ts - a set of connections (from any servers and dialers) that can be broadcast to as
// one: a room, a topic, a channel. Membership lives in the reactors, so a broadcast is one call
// per reactor however many members there are; this object mirrors it for has() and size.
import { binding } from './engine';
import { Connection, validateData } from './connection';
import { invalidArgType, validateObject } from './errors';

let nextGroupId = 1;

export interface GroupBroadcastOptions {
  /** A member to skip (typically the sender). */
  except?: Connection;
}

export class Group {
  /** @internal */ readonly _id = nextGroupId++;
  private readonly _members = new Set<Connection>();

  /** Members now. A connection leaves every group when it closes. */
  get size(): number {
    return this._members.size;
  }

  add(conn: Connection): this {
    checkConnection(conn);
    if (conn.destroyed || this._members.has(conn)) return this;
    this._members.add(conn);
    conn._joinedGroup(this);
    binding().groupAdd(this._id, conn.id);
    return this;
  }

  /** Removes conn; returns whether it was a member. */
  delete(conn: Connection): boolean {
    checkConnection(conn);
    if (!this._members.delete(conn)) return false;
    conn._leftGroup(this);
    binding().groupDelete(this._id, conn.id);
    return true;
  }

  has(conn: Connection): boolean {
    return this._members.has(conn);
  }

  /** Removes every member. */
  clear(): void {
    if (this._members.size === 0) return;
    for (const c of this._members) c._leftGroup(this);
    this._members.clear();
    binding().groupClear(this._id);
  }

  [Symbol.iterator](): IterableIterator<Connection> {
    return this._members.values();
  }

  /**
   * Queues data for every member (but `except`), copied into native memory once and shared by
   * every write. Returns how many members it was handed to.
   */
  broadcast(data: Uint8Array | string, options: GroupBroadcastOptions = {}): number {
    validateData(data);
    const o = validateObject(options, 'options');
    let except: Connection | undefined;
    if (o.except !== undefined) {
      checkConnection(o.except, 'options.except');
      except = o.except as Connection;
    }
    const n = this._members.size - (except !== undefined && this._members.has(except) ? 1 : 0);
    if (n === 0) return 0;
    binding().groupBroadcast(this._id, data, except?.id ?? 0);
    return n;
  }

  /** @internal The connection closed: the reactor already dropped it. */
  _forget(conn: Connection): void {
    this._members.delete(conn);
  }
}

function checkConnection(conn: unknown, name = 'conn'): asserts conn is Connection {
  if (!(conn instanceof Connection)) throw invalidArgType(name, 'an instance of Connection', conn);
}

/** A new, empty group. */
export function createGroup(): Group {
  return new Group();
}
