// Shared test helpers: child processes (for the fd limit and multi-process scenarios), waiting,
// descriptor counting. Children load the built package (dist/), as users do.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

export const ROOT = join(__dirname, '..');
export const DIST = join(ROOT, 'dist', 'index.js');
export const FIXTURES = join(__dirname, 'fixtures');
export const isWindows = process.platform === 'win32';
export const isLinux = process.platform === 'linux';

export interface Child {
  proc: ChildProcess;
  /** Resolves with the first message from the child (process.send) for which pred is true. */
  message<T = any>(pred?: (m: any) => boolean, timeoutMs?: number): Promise<T>;
  send(m: unknown): void;
  messages: any[];
  exited: Promise<number | null>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Runs test/fixtures/<name> with node and an IPC channel. Fixtures load the built package
 * (process.env.MYRIAD_DIST), report with process.send() and take commands from process.on('message').
 */
export function child(name: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; prefix?: string[] } = {}): Child {
  const script = join(FIXTURES, name);
  const [cmd, argv] = opts.prefix
    ? [opts.prefix[0], [...opts.prefix.slice(1), process.execPath, script, ...args]]
    : [process.execPath, [script, ...args]];
  const proc = spawn(cmd, argv, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, MYRIAD_DIST: DIST, ...opts.env },
  });
  const messages: any[] = [];
  const waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  let out = '';
  proc.on('message', (m: any) => {
    messages.push(m);
    for (let i = 0; i < waiters.length; i++) {
      if (waiters[i].pred(m)) { waiters[i].resolve(m); waiters.splice(i--, 1); }
    }
  });
  proc.stdout!.setEncoding('utf8');
  proc.stdout!.on('data', (c: string) => { out += c; });
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (c: string) => { out += c; });
  const exited = once(proc, 'exit').then(([code]) => code as number | null);
  return {
    proc,
    messages,
    exited,
    stderr: () => out,
    send: (m) => proc.send(m as any),
    kill: (signal = 'SIGTERM') => { if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal); },
    message(pred = () => true, timeoutMs = 60_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no expected message from ${name} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => { clearTimeout(timer); resolve(m); } });
        exited.then((code) => { clearTimeout(timer); reject(new Error(`child ${name} exited (${code}) before the expected message; output:\n${out}`)); });
      });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until fn() is truthy (or throws after timeoutMs). */
export async function waitUntil(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/**
 * Open descriptors of this process, from /proc/self/fd: a Linux check. Windows sockets are
 * handles with no such listing (and under Wine, /proc would show the wineserver's view), so
 * elsewhere this returns NaN and fdsAtMost() holds: the leak checks are Linux's.
 */
export function fdCount(): number {
  return isLinux ? readdirSync('/proc/self/fd').length : NaN;
}

/** True when this process has at most `limit` descriptors open (always true off Linux). */
export function fdsAtMost(limit: number): boolean {
  return !isLinux || fdCount() <= limit;
}

/** Under Wine every socket call goes through wineserver: heavy tests use fewer connections there. */
export const underWine = process.env.MYRIAD_UNDER_WINE === '1';
/** The suite runs on the node:net backend (npm test's second pass): a few behaviours differ, as documented. */
export const netBackend = process.env.MYRIAD_BACKEND === 'net';
export function scaled(n: number, wineN: number): number {
  return underWine ? wineN : n;
}

/**
 * An IPv4 address this host does not have (TEST-NET-3, RFC 5737), for EADDRNOTAVAIL tests:
 * bind() to it fails locally, so nothing is ever sent. Checked against the host's interfaces,
 * because sandboxes sometimes use documentation ranges for their own links.
 */
export function absentAddress(n = 0): string {
  const local = new Set(Object.values(networkInterfaces()).flat().map((i) => i!.address));
  const found: string[] = [];
  for (let i = 77; i < 250 && found.length <= n; i++) if (!local.has(`203.0.113.${i}`)) found.push(`203.0.113.${i}`);
  return found[n];
}

/** Asks each child for {cmd:'stats'} until pred(replies) holds; returns the last replies. */
export async function statsUntil(children: Child[], pred: (replies: any[]) => boolean, timeoutMs = 20_000): Promise<any[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const c of children) c.messages.length = 0;
    for (const c of children) c.send({ cmd: 'stats' });
    const replies = await Promise.all(children.map((c) => c.message((m) => m.event === 'stats')));
    if (pred(replies) || Date.now() > end) return replies;
    await sleep(50);
  }
}
