// errors.ts - Node-style errors. Misuse throws before anything native runs, with the codes Node's
// own APIs use; OS failures carry code/errno/syscall/address/port exactly as node:net's do.
import { inspect, getSystemErrorMap } from 'node:util';

type WithCode<E> = E & { code: string };

function withCode<E extends Error>(err: E, code: string): WithCode<E> {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true });
  // Node prints "TypeError [ERR_X]: ..." for its own errors; do the same.
  err.name = `${err.name} [${code}]`;
  void err.stack;
  err.name = err.name.slice(0, err.name.indexOf(' ['));
  return err as WithCode<E>;
}

function describe(value: unknown): string {
  if (value == null) return ` Received ${value}`;
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') {
    const ctor = (value as object).constructor?.name;
    return ctor ? ` Received an instance of ${ctor}` : ` Received ${inspect(value, { depth: -1 })}`;
  }
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return ` Received type ${typeof value} (${shown})`;
}

export function invalidArgType(name: string, expected: string, actual: unknown): TypeError {
  return withCode(new TypeError(`The "${name}" argument must be ${expected}.${describe(actual)}`), 'ERR_INVALID_ARG_TYPE');
}

export function invalidArgValue(name: string, value: unknown, reason = 'is invalid'): TypeError {
  let shown = inspect(value);
  if (shown.length > 128) shown = `${shown.slice(0, 128)}...`;
  return withCode(new TypeError(`The argument '${name}' ${reason}. Received ${shown}`), 'ERR_INVALID_ARG_VALUE');
}

export function outOfRange(name: string, range: string, value: unknown): RangeError {
  return withCode(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${inspect(value)}`), 'ERR_OUT_OF_RANGE');
}

export function badPort(name: string, value: unknown): RangeError {
  return withCode(new RangeError(`${name} should be >= 0 and < 65536. Received ${inspect(value)}.`), 'ERR_SOCKET_BAD_PORT');
}

export function invalidIp(value: unknown): TypeError {
  return withCode(new TypeError(`Invalid IP address: ${String(value)} (myriad takes IP literals; resolve host names first, e.g. with dns.promises.lookup)`), 'ERR_INVALID_IP_ADDRESS');
}

export function stateError(code: string, message: string): Error {
  return withCode(new Error(message), code);
}

export function abortError(signal?: AbortSignal): Error {
  const err = withCode(new Error('The operation was aborted', { cause: signal?.reason }), 'ABORT_ERR');
  err.name = 'AbortError';
  return err;
}

export interface SystemErrorFields {
  syscall: string;
  address?: string;
  port?: number;
  localAddress?: string;
  localPort?: number;
}

export type SystemError = Error & { code: string; errno: number; syscall: string; address?: string; port?: number };

// errno is negative (libuv's convention, as in node:net); code/message come from the native table.
export function systemError(errno: number, code: string, message: string, f: SystemErrorFields): SystemError {
  let text: string;
  if (f.syscall === 'connect' && f.address !== undefined) {
    text = `connect ${code} ${f.address}:${f.port}`; // node:net's exact wording
    if (f.localAddress !== undefined) text += ` - Local (${f.localAddress}:${f.localPort ?? 0})`;
  } else {
    text = `${f.syscall} ${code}: ${message}`;
    if (f.address !== undefined) text += ` ${f.address}${f.port !== undefined ? `:${f.port}` : ''}`;
  }
  const err = new Error(text) as SystemError;
  err.errno = errno;
  err.code = code;
  err.syscall = f.syscall;
  if (f.address !== undefined) err.address = f.address;
  if (f.port !== undefined) err.port = f.port;
  return err;
}

// ---- validators (throw on misuse) ----

export function validateInt(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

export function validateBool(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

export function validateFunction(value: unknown, name: string): (...args: never[]) => unknown {
  if (typeof value !== 'function') throw invalidArgType(name, 'of type function', value);
  return value as (...args: never[]) => unknown;
}

export function validateObject(value: unknown, name: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidArgType(name, 'of type object', value);
  return value as Record<string, unknown>;
}

export function validatePort(value: unknown, name: string, allowZero = true): number {
  if (typeof value === 'string' && /^[0-9]{1,5}$/.test(value)) value = Number(value);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65535) throw badPort(name, value);
  return value;
}

export function validateSignal(value: unknown, name: string): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || !('aborted' in value) || typeof (value as AbortSignal).addEventListener !== 'function') {
    throw invalidArgType(name, 'an instance of AbortSignal', value);
  }
  return value as AbortSignal;
}

let errnoByName: Map<string, number> | undefined;
/** libuv's errno for a code name on this platform (-99 for EADDRNOTAVAIL on Linux, -4090 on Windows). */
export function errnoOf(code: string): number {
  if (errnoByName === undefined) {
    errnoByName = new Map();
    for (const [errno, [name]] of getSystemErrorMap()) errnoByName.set(name, errno);
  }
  return errnoByName.get(code) ?? -4094; // UV_UNKNOWN
}
