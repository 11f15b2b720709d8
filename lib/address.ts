// address.ts - endpoints: "127.0.0.1:9000", "[::1]:9000", { host, port }. IP literals only, so
// nothing here ever waits on a resolver.
import { isIP } from 'node:net';
import { invalidArgType, invalidIp, validatePort, invalidArgValue } from './errors';

export interface Endpoint {
  host: string;
  port: number;
  family: 4 | 6;
}

export type EndpointInput = string | { host: string; port: number };

export function parseIp(value: unknown, name: string): { host: string; family: 4 | 6 } {
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value);
  let host = value;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const family = isIP(host);
  if (family === 0) throw invalidIp(value);
  return { host, family: family as 4 | 6 };
}

export function parseEndpoint(value: unknown, name: string, allowZeroPort = true): Endpoint {
  if (typeof value === 'string') {
    const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(value);
    if (m === null) {
      throw invalidArgValue(name, value, 'must be "host:port" or "[ipv6]:port"');
    }
    const { host, family } = parseIp(m[1] ?? m[2], name);
    if (m[1] !== undefined && family !== 6) throw invalidIp(m[1]);
    if (m[2] !== undefined && family === 6) throw invalidArgValue(name, value, 'needs brackets around an IPv6 address');
    return { host, family, port: validatePort(m[3], `${name} port`, allowZeroPort) };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as { host?: unknown; port?: unknown };
    const { host, family } = parseIp(o.host, `${name}.host`);
    return { host, family, port: validatePort(o.port, `${name}.port`, allowZeroPort) };
  }
  throw invalidArgType(name, 'a "host:port" string or an object with host and port', value);
}

export function formatEndpoint(e: { host: string; port: number; family: number }): string {
  return e.family === 6 ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}
