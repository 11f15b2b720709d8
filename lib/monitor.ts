// `myriad monitor`: samples the system counters the seed write-up says to watch (TCP connections
// established, connection failures, memory available, context switches/sec) and, when attached,
// a myriad process's stats(); prints rates per second, refreshed in place on a terminal or as one
// JSON object per line otherwise.
//
// Attaching to a process. A process opts in by calling serveStats(stats), which serves
//   GET http://127.0.0.1:<port>/myriad/stats  ->  {"pid":..,"time":"..","stats":{..}}
// on loopback only. With { announce: true } it also writes os.tmpdir()/myriad-<pid>.json
// ({"pid","host","port","path"}), removed on close() and at process exit, which is how
// `myriad monitor --pid <pid>` finds it (run the monitor as the same user, or with the same
// TMPDIR). `--attach host:port` skips the discovery.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseEndpoint } from './doctor';
import { invalidArgType, invalidArgValue } from './errors';

// ---------------------------------------------------------------------------------------------
// System counters

/** Cumulative counters: the monitor shows their change per second. */
export const SYSTEM_COUNTERS = [
  'tcpActiveOpens',
  'tcpPassiveOpens',
  'tcpAttemptFails',
  'tcpEstabResets',
  'tcpListenOverflows',
  'tcpListenDrops',
  'contextSwitches',
] as const;
/** Instantaneous values. */
export const SYSTEM_GAUGES = ['tcpEstablished', 'tcpTimeWait', 'memoryAvailableBytes', 'memoryTotalBytes'] as const;

export type SystemCounterName = (typeof SYSTEM_COUNTERS)[number];
export type SystemGaugeName = (typeof SYSTEM_GAUGES)[number];
/** Every counter and gauge; null where this platform does not provide it. */
export type SystemValues = Record<SystemCounterName | SystemGaugeName, number | null>;

export interface SystemSample {
  /** performance.now() when taken, for rates. */
  at: number;
  values: SystemValues;
  /** Rates the OS reports itself (Windows' context switches/sec), used as they are. */
  reportedRates: Partial<Record<SystemCounterName, number>>;
}

/** Every name with null, in one fixed order so JSON lines look alike on every platform. */
const emptyValues = (): SystemValues =>
  Object.fromEntries([...SYSTEM_GAUGES, ...SYSTEM_COUNTERS].map((name) => [name, null])) as SystemValues;

/**
 * Parses the paired header/value lines of /proc/net/snmp and /proc/net/netstat
 * (`Tcp: RtoAlgorithm ... CurrEstab ...` then `Tcp: 1 ... 12 ...`) for one prefix.
 */
export function parseProcNetPairs(text: string, prefix: string): Record<string, number> {
  const lines = text.split('\n').filter((line) => line.startsWith(`${prefix}: `));
  if (lines.length < 2) return {};
  const names = lines[0].split(/\s+/).slice(1);
  const numbers = lines[1].split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((name, i) => [name, numbers[i]]));
}

async function readLinuxValues(): Promise<SystemValues> {
  const read = (path: string) => fs.readFile(path, 'utf8').catch(() => '');
  const [snmp, netstat, sockstat, meminfo, stat] = await Promise.all([
    read('/proc/net/snmp'),
    read('/proc/net/netstat'),
    read('/proc/net/sockstat'),
    read('/proc/meminfo'),
    read('/proc/stat'),
  ]);
  const tcp = parseProcNetPairs(snmp, 'Tcp');
  const tcpExt = parseProcNetPairs(netstat, 'TcpExt');
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(meminfo);
    return match ? Number(match[1]) * 1024 : null;
  };
  const ctxt = /^ctxt (\d+)/m.exec(stat);
  const tw = /^TCP: .* tw (\d+)/m.exec(sockstat);
  const value = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? null : n);
  return {
    ...emptyValues(),
    // CurrEstab counts ESTABLISHED and CLOSE_WAIT sockets of this network namespace.
    tcpEstablished: value(tcp.CurrEstab),
    tcpActiveOpens: value(tcp.ActiveOpens),
    tcpPassiveOpens: value(tcp.PassiveOpens),
    tcpAttemptFails: value(tcp.AttemptFails),
    tcpEstabResets: value(tcp.EstabResets),
    tcpListenOverflows: value(tcpExt.ListenOverflows),
    tcpListenDrops: value(tcpExt.ListenDrops),
    tcpTimeWait: tw ? Number(tw[1]) : null,
    memoryAvailableBytes: kib('MemAvailable'),
    memoryTotalBytes: kib('MemTotal'),
    contextSwitches: ctxt ? Number(ctxt[1]) : null,
  };
}

/** The eight MIB_TCPSTATS fields `netstat -s` prints per TCP section, in its fixed order. */
const NETSTAT_TCP_FIELDS = [
  'activeOpens',
  'passiveOpens',
  'failedConnectionAttempts',
  'resetConnections',
  'currentConnections',
  'segmentsReceived',
  'segmentsSent',
  'segmentsRetransmitted',
] as const;
export type NetstatTcpStatistics = Record<(typeof NETSTAT_TCP_FIELDS)[number], number>;

/**
 * Parses Windows `netstat -s` (GetTcpStatistics for IPv4 and IPv6) in any display language: the
 * section titles keep the words "TCP" and "IPv4"/"IPv6", and each section prints its eight values
 * as `label = number` lines in the same order. (`netstat -s -p tcp` would also list every
 * connection, which is what we must not do with a million of them.)
 */
export function parseNetstatTcp(text: string): { ipv4: NetstatTcpStatistics | null; ipv6: NetstatTcpStatistics | null } {
  const result: { ipv4: NetstatTcpStatistics | null; ipv6: NetstatTcpStatistics | null } = { ipv4: null, ipv6: null };
  let section: 'ipv4' | 'ipv6' | null = null;
  let numbers: number[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() && !/^\s/.test(line)) {
      section = /\bTCP\b/.test(line) ? (/IPv6/.test(line) ? 'ipv6' : /IPv4/.test(line) ? 'ipv4' : null) : null;
      numbers = [];
      continue;
    }
    const match = /=\s*(\d+)\s*$/.exec(line);
    if (!section || !match) continue;
    numbers.push(Number(match[1]));
    if (numbers.length === NETSTAT_TCP_FIELDS.length) {
      result[section] = Object.fromEntries(NETSTAT_TCP_FIELDS.map((name, i) => [name, numbers[i]])) as NetstatTcpStatistics;
      section = null;
    }
  }
  return result;
}

/** One data line of `typeperf` CSV output (`"time","1234.5"`, or `"1234,5"` in comma locales). */
export function parseTypeperfLine(line: string): number | null {
  const match = /^"[^"]*","(\d+(?:[.,]\d+)?)"\s*$/.exec(line.trim());
  return match ? Number(match[1].replace(',', '.')) : null;
}

function sumTcp(stats: ReturnType<typeof parseNetstatTcp>, field: keyof NetstatTcpStatistics): number | null {
  if (!stats.ipv4 && !stats.ipv6) return null;
  return (stats.ipv4?.[field] ?? 0) + (stats.ipv6?.[field] ?? 0);
}

/**
 * Reads the system counters. On Windows it keeps one `typeperf` child running for
 * "\System\Context Switches/sec" (a rate PDH computes; typeperf needs two samples a second apart,
 * too slow to start per sample), unref'd so it never keeps the process alive; close() ends it.
 */
export class SystemSampler {
  private typeperf: ChildProcess | null = null;
  private contextSwitchRate: number | null = null;

  async sample(): Promise<SystemSample> {
    if (process.platform === 'linux') return { at: performance.now(), values: await readLinuxValues(), reportedRates: {} };
    const values = emptyValues();
    // libuv's free memory is MemAvailable on Linux and GlobalMemoryStatusEx's ullAvailPhys on Windows.
    values.memoryAvailableBytes = os.freemem();
    values.memoryTotalBytes = os.totalmem();
    const reportedRates: SystemSample['reportedRates'] = {};
    if (process.platform === 'win32') {
      this.startTypeperf();
      const tcp = parseNetstatTcp(await netstatStatistics());
      values.tcpEstablished = sumTcp(tcp, 'currentConnections');
      values.tcpActiveOpens = sumTcp(tcp, 'activeOpens');
      values.tcpPassiveOpens = sumTcp(tcp, 'passiveOpens');
      values.tcpAttemptFails = sumTcp(tcp, 'failedConnectionAttempts');
      values.tcpEstabResets = sumTcp(tcp, 'resetConnections');
      if (this.contextSwitchRate !== null) reportedRates.contextSwitches = this.contextSwitchRate;
    }
    return { at: performance.now(), values, reportedRates };
  }

  private startTypeperf(): void {
    if (this.typeperf) return;
    const child = spawn('typeperf', ['\\System\\Context Switches/sec', '-si', '1'], { windowsHide: true, stdio: ['ignore', 'pipe', 'ignore'] });
    this.typeperf = child;
    child.on('error', () => undefined); // no typeperf: context switches stay unknown
    let pending = '';
    child.stdout?.setEncoding('latin1');
    child.stdout?.on('data', (chunk: string) => {
      const lines = (pending + chunk).split(/\r?\n/);
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const rate = parseTypeperfLine(line);
        if (rate !== null) this.contextSwitchRate = rate;
      }
    });
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
  }

  close(): void {
    this.typeperf?.kill();
    this.typeperf = null;
  }
}

function netstatStatistics(): Promise<string> {
  return new Promise((resolve) => {
    execFile('netstat', ['-s'], { encoding: 'latin1', windowsHide: true, timeout: 10_000 }, (_error, stdout) => resolve(stdout ?? ''));
  });
}

/** Per-second change of each cumulative counter between two samples (null where unknown). */
export function systemRates(previous: SystemSample, current: SystemSample): Record<SystemCounterName, number | null> {
  const seconds = (current.at - previous.at) / 1000;
  const rates = {} as Record<SystemCounterName, number | null>;
  for (const name of SYSTEM_COUNTERS) {
    const reported = current.reportedRates[name];
    const before = previous.values[name];
    const after = current.values[name];
    rates[name] = reported ?? (before === null || after === null || seconds <= 0 ? null : (after - before) / seconds);
  }
  return rates;
}

// ---------------------------------------------------------------------------------------------
// The opt-in stats endpoint of a process running myriad

export interface ServeStatsOptions {
  /** Default 127.0.0.1: the stats are for this host only. */
  host?: string;
  /** Default 0: the system picks a free port (see the returned `port`). */
  port?: number;
  /** Default /myriad/stats. */
  path?: string;
  /** Write os.tmpdir()/myriad-<pid>.json so `myriad monitor --pid <pid>` finds the endpoint. */
  announce?: boolean;
}

export interface StatsServer {
  host: string;
  port: number;
  path: string;
  close(): Promise<void>;
}

export const DEFAULT_STATS_PATH = '/myriad/stats';

/** Where a process announces its stats endpoint. */
export const announcementFile = (pid: number): string => join(os.tmpdir(), `myriad-${pid}.json`);

/**
 * Serves `statsProvider()` as JSON over HTTP for `myriad monitor`. The server is unref'd: it never
 * keeps the process alive by itself.
 */
export async function serveStats(statsProvider: () => object, options: ServeStatsOptions = {}): Promise<StatsServer> {
  if (typeof statsProvider !== 'function') throw invalidArgType('statsProvider', 'of type function', statsProvider);
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  const path = options.path ?? DEFAULT_STATS_PATH;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalidArgValue('options.port', port, 'must be an integer from 0 to 65535');
  if (!path.startsWith('/')) throw invalidArgValue('options.path', path, 'must start with /');

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    if (request.method !== 'GET') {
      response.writeHead(405, { allow: 'GET', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'method not allowed' }));
      return;
    }
    try {
      const body = JSON.stringify({ pid: process.pid, time: new Date().toISOString(), stats: statsProvider() });
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    } catch (error) {
      response.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (error as Error).message }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  const address = server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;

  const file = announcementFile(process.pid);
  const removeAnnouncement = () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  if (options.announce) {
    writeFileSync(file, JSON.stringify({ pid: process.pid, host, port: boundPort, path }));
    process.once('exit', removeAnnouncement);
  }

  return {
    host,
    port: boundPort,
    path,
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (options.announce) {
          process.off('exit', removeAnnouncement);
          removeAnnouncement();
        }
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

export interface StatsEndpoint {
  host: string;
  port: number;
  path: string;
}

/** The endpoint process `pid` announced with serveStats(..., { announce: true }). */
export async function findAnnouncedEndpoint(pid: number): Promise<StatsEndpoint> {
  let text: string;
  try {
    text = await fs.readFile(announcementFile(pid), 'utf8');
  } catch {
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (error) {
      alive = (error as NodeJS.ErrnoException).code === 'EPERM';
    }
    throw new Error(
      alive
        ? `process ${pid} has not announced a stats endpoint (${announcementFile(pid)} is missing): it must call serveStats(stats, { announce: true })`
        : `no process ${pid}`,
    );
  }
  const { host, port, path } = JSON.parse(text) as StatsEndpoint;
  return { host, port, path };
}

export interface ProcessStats {
  pid: number;
  stats: Record<string, unknown>;
}

export async function fetchStats(endpoint: StatsEndpoint, timeoutMs = 2000): Promise<ProcessStats> {
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host;
  const response = await fetch(`http://${host}:${endpoint.port}${endpoint.path}`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`stats endpoint answered HTTP ${response.status}`);
  return (await response.json()) as ProcessStats;
}

/**
 * Every numeric leaf of a stats object under a dotted path: `bytesRead`, `reactors.0.eventsHandled`.
 * Unknown fields need no special handling anywhere.
 */
export function flattenNumbers(value: unknown, prefix = '', into: Record<string, number> = {}): Record<string, number> {
  if (typeof value === 'number' && Number.isFinite(value)) into[prefix] = value;
  else if (value && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) flattenNumbers(child, prefix ? `${prefix}.${key}` : key, into);
  }
  return into;
}

// ---------------------------------------------------------------------------------------------
// The monitor loop

/** `1s`, `500ms`, `2` (seconds), `0.5s` → milliseconds; 50 ms to 1 hour. */
export function parseInterval(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * (match[2] === 'ms' ? 1 : 1000) : NaN;
  if (!(ms >= 50 && ms <= 3_600_000)) throw invalidArgValue('interval', text, 'must be a duration from 50ms to 3600s, like 1s, 500ms or 2');
  return ms;
}

export interface MonitorOptions {
  /** Milliseconds between samples (default 1000). */
  intervalMs?: number;
  /** Stop after this many samples (default: until `signal` aborts). */
  count?: number;
  /** Attach to the process that announced its endpoint under this pid. */
  pid?: number;
  /** Attach to this `host:port` (path /myriad/stats). */
  attach?: string;
  /** Where to write; a TTY gets one screen refreshed in place, anything else JSON lines. */
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  signal?: AbortSignal;
}

/**
 * One line per sample when the output is not a terminal (JSON lines):
 *   {"time":ISO,"intervalMs":n,"elapsedMs":n,"system":{<SystemValues>},"ratePerSecond":{<counter>:n|null},
 *    "process":{"pid":n,"stats":{..},"ratePerSecond":{"dotted.path":n}} | {"error":".."}}   (when attached)
 */
export interface MonitorRecord {
  time: string;
  intervalMs: number;
  /** Milliseconds since the previous sample, the time the rates are over (rate x elapsed = change). */
  elapsedMs: number;
  system: SystemValues;
  ratePerSecond: Record<SystemCounterName, number | null>;
  process?: { pid: number; stats: Record<string, unknown>; ratePerSecond: Record<string, number> } | { error: string };
}

interface AttachedSample {
  at: number;
  result: ProcessStats | Error;
}

export async function runMonitor(options: MonitorOptions = {}): Promise<void> {
  const intervalMs = options.intervalMs ?? 1000;
  const output = options.output ?? process.stdout;
  const endpoint = options.attach !== undefined
    ? { ...parseEndpoint('attach', options.attach), path: DEFAULT_STATS_PATH }
    : options.pid !== undefined ? await findAnnouncedEndpoint(options.pid) : null;
  const sampler = new SystemSampler();
  const sampleProcess = async (): Promise<AttachedSample | null> =>
    endpoint ? { at: performance.now(), result: await fetchStats(endpoint).catch((error: Error) => error) } : null;

  const screen = output.isTTY ? new Screen(output) : null;
  try {
    // The baseline is not printed: every printed sample has rates.
    let previous = await sampler.sample();
    let previousProcess = await sampleProcess();
    const start = performance.now();
    for (let n = 1; options.count === undefined || n <= options.count; n++) {
      if (!(await sleepUntil(start + n * intervalMs, options.signal))) break;
      const [current, currentProcess] = await Promise.all([sampler.sample(), sampleProcess()]);
      const record = monitorRecord(intervalMs, previous, current, previousProcess, currentProcess);
      if (screen) screen.draw(renderScreen(record, endpoint));
      else output.write(JSON.stringify(record) + '\n');
      previous = current;
      previousProcess = currentProcess;
    }
  } finally {
    sampler.close();
    screen?.restore();
  }
}

function sleepUntil(deadline: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, deadline - performance.now()));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function monitorRecord(
  intervalMs: number,
  previous: SystemSample,
  current: SystemSample,
  previousProcess: AttachedSample | null,
  currentProcess: AttachedSample | null,
): MonitorRecord {
  const record: MonitorRecord = {
    time: new Date().toISOString(),
    intervalMs,
    elapsedMs: current.at - previous.at,
    system: current.values,
    ratePerSecond: systemRates(previous, current),
  };
  if (currentProcess) {
    const { result } = currentProcess;
    if (result instanceof Error) record.process = { error: result.message };
    else {
      const ratePerSecond: Record<string, number> = {};
      if (previousProcess && !(previousProcess.result instanceof Error)) {
        const seconds = (currentProcess.at - previousProcess.at) / 1000;
        const before = flattenNumbers(previousProcess.result.stats);
        for (const [path, value] of Object.entries(flattenNumbers(result.stats))) {
          if (path in before && seconds > 0) ratePerSecond[path] = (value - before[path]) / seconds;
        }
      }
      record.process = { pid: result.pid, stats: result.stats, ratePerSecond };
    }
  }
  return record;
}

const SYSTEM_LABELS: Array<[SystemCounterName | SystemGaugeName, string]> = [
  ['tcpEstablished', 'TCP connections established'],
  ['tcpAttemptFails', 'TCP connection failures'],
  ['tcpActiveOpens', 'TCP active opens (connect)'],
  ['tcpPassiveOpens', 'TCP passive opens (accept)'],
  ['tcpEstabResets', 'TCP resets of established'],
  ['tcpListenOverflows', 'listen queue overflows'],
  ['tcpListenDrops', 'listen drops'],
  ['tcpTimeWait', 'sockets in TIME_WAIT'],
  ['memoryAvailableBytes', 'memory available (MiB)'],
  ['contextSwitches', 'context switches'],
];

function renderScreen(record: MonitorRecord, endpoint: StatsEndpoint | null): string[] {
  const number = (n: number | null | undefined, digits = 0) =>
    n === null || n === undefined ? '-' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const row = (label: string, value: string, rate: string) => `  ${label.padEnd(34)}${value.padStart(16)}${rate.padStart(14)}`;
  const lines = [
    `myriad monitor - every ${record.intervalMs} ms - ${record.time} - Ctrl-C to quit`,
    '',
    row('system', 'value', 'per second'),
  ];
  for (const [name, label] of SYSTEM_LABELS) {
    const isCounter = (SYSTEM_COUNTERS as readonly string[]).includes(name);
    const raw = record.system[name];
    const value = name === 'memoryAvailableBytes' && raw !== null ? raw / 2 ** 20 : raw;
    const rate = isCounter ? number(record.ratePerSecond[name as SystemCounterName], 1) : '';
    if (raw === null && (!isCounter || record.ratePerSecond[name as SystemCounterName] === null)) continue;
    lines.push(row(label, number(value), rate));
  }
  if (record.process) {
    lines.push('');
    if ('error' in record.process) {
      lines.push(`process at ${endpoint?.host}:${endpoint?.port}: ${record.process.error}`);
    } else {
      lines.push(row(`process ${record.process.pid} stats()`, 'value', 'per second'));
      const rates = record.process.ratePerSecond;
      for (const [path, value] of Object.entries(flattenNumbers(record.process.stats))) {
        lines.push(row(path, number(value), path in rates ? number(rates[path], 1) : ''));
      }
    }
  }
  return lines;
}

/** One screen redrawn in place: home the cursor, rewrite each line, clear what is left below. */
class Screen {
  constructor(private readonly output: NodeJS.WritableStream) {
    output.write('\x1b[?25l\x1b[2J');
  }

  draw(lines: string[]): void {
    this.output.write('\x1b[H' + lines.map((line) => `${line}\x1b[K`).join('\n') + '\n\x1b[J');
  }

  restore(): void {
    this.output.write('\x1b[?25h');
  }
}
