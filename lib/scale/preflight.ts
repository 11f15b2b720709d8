// preflight.ts - before a scale run: will this machine hold that many connections? The limits come
// from doctor() (open files, ports, source addresses, system-wide file limits); memory from
// /proc/meminfo. Every problem says what to change; the plan adapts what it can by itself (more
// processes when the per-process limit is low, more source addresses when the port range is small).
import { readFileSync } from 'node:fs';
import { freemem } from 'node:os';
import { doctor, type DoctorReport } from '../doctor';

export interface PreflightCheck {
  id: string;
  ok: boolean;
  /** What was found and what the run needs. */
  text: string;
  /** What to change when !ok (a command or a smaller run). */
  fix?: string;
}

export interface ScalePlan {
  connections: number;
  perProcess: number;
  servers: number;
  dialers: number;
  sources: string[];
  portsPerSource: number;
  /** Estimated memory the run needs (processes + kernel), bytes. */
  memoryNeeded: number;
  memoryAvailable: number;
}

export interface Preflight {
  ok: boolean;
  plan: ScalePlan;
  checks: PreflightCheck[];
  doctor: DoctorReport;
}

// Per connection pair (both ends on this host): kernel socket + TCP control block + epoll item
// ~8.3 KB (the anchors' measurement), process memory ~0.3-0.6 KB a side with myriad. Per process:
// node itself (~50 MB RSS) plus headroom for a connection storm's garbage.
const KERNEL_PER_PAIR = 9 * 1024;
const PROCESS_PER_CONNECTION = 1024;
const PER_PROCESS_BASE = 80 * 1024 * 1024;
// Descriptors a worker needs besides its connections (node, stdio, IPC, epoll, eventfds).
const FD_HEADROOM = 150;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return freemem();
}

/** Sources 127.0.0.2.. (skipping .0/.255 octets), `n` of them. */
export function loopbackSourceList(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.${Math.floor((i + 2) / 250)}.${(i + 2) % 250}`);
}

/**
 * Checks and plans a run of `connections` connections to one endpoint on this host.
 * perProcess: wanted connections per process (default: what the open-file limit allows, at most 19,000).
 */
export async function scalePreflight(connections: number, opts: { perProcess?: number; sources?: string[] } = {}): Promise<Preflight> {
  const report = await doctor();
  const checks: PreflightCheck[] = [];

  // Descriptors per process.
  const hard = report.openFiles?.hard ?? null;
  const fdCap = hard === null || !Number.isFinite(hard) ? 19_000 : Math.max(0, hard - FD_HEADROOM);
  const perProcess = Math.min(opts.perProcess ?? 19_000, fdCap);
  checks.push({
    id: 'open-files',
    ok: perProcess >= 1000,
    text: `open-file limit ${hard === null ? 'unknown' : fmt(hard)} (hard): up to ${fmt(perProcess)} connections per process`,
    fix: perProcess >= 1000 ? undefined
      : 'raise the hard limit: `ulimit -Hn 1048576` as root, LimitNOFILE= in a systemd unit, or nofile in /etc/security/limits.conf',
  });
  const servers = Math.max(1, Math.ceil(connections / perProcess));
  const dialers = servers;

  // System-wide descriptors: both ends of every connection live on this host.
  const fileMax = Number(report.settings['fs.file-max'] ?? NaN);
  if (Number.isFinite(fileMax)) {
    const need = 2 * connections + (servers + dialers) * FD_HEADROOM;
    checks.push({
      id: 'fs.file-max',
      ok: fileMax >= need,
      text: `fs.file-max ${fmt(fileMax)}; the run needs ${fmt(need)} descriptors host-wide`,
      fix: fileMax >= need ? undefined : `sysctl -w fs.file-max=${Math.max(need * 2, 2_097_152)}`,
    });
  }

  // Ports and source addresses: connections to ONE endpoint from one source are capped by the port
  // range; Linux's connect() slows down past half of it, so plan for at most half per source.
  const range = report.ephemeralPorts.ipv4?.count ?? 28_232;
  const perSource = Math.max(1, Math.floor(range / 2));
  const sources = opts.sources ?? loopbackSourceList(Math.max(1, Math.ceil(connections / perSource)));
  const loop = report.sources.loopbackIPv4;
  checks.push({
    id: 'source-addresses',
    ok: loop.usable || sources.every((s) => s === '127.0.0.1'),
    text: `${sources.length} source address${sources.length === 1 ? '' : 'es'} (${sources[0]}..${sources[sources.length - 1]}) x ${fmt(perSource)} ports ` +
      `(half of the ${fmt(range)}-port range) = ${fmt(sources.length * perSource)} connections to one endpoint; 127/8 usable: ${loop.usable ? 'yes' : `no (${loop.error})`}`,
    fix: loop.usable ? undefined : 'ip link set lo up && ip addr replace 127.0.0.1/8 dev lo',
  });
  if (sources.length * range < connections) {
    checks.push({
      id: 'ports',
      ok: false,
      text: `${sources.length} sources x ${fmt(range)} ports = ${fmt(sources.length * range)} < ${fmt(connections)}`,
      fix: `use at least ${Math.ceil(connections / perSource)} source addresses`,
    });
  }

  // Memory.
  const memoryNeeded = (servers + dialers) * PER_PROCESS_BASE + connections * (KERNEL_PER_PAIR + 2 * PROCESS_PER_CONNECTION);
  const memoryAvailable = memAvailable();
  const fits = Math.floor((memoryAvailable - (servers + dialers) * PER_PROCESS_BASE) / (KERNEL_PER_PAIR + 2 * PROCESS_PER_CONNECTION));
  checks.push({
    id: 'memory',
    ok: memoryNeeded <= memoryAvailable,
    text: `about ${gib(memoryNeeded)} needed (${servers + dialers} processes, ~${Math.round((KERNEL_PER_PAIR + 2 * PROCESS_PER_CONNECTION) / 1024)} KiB per connection pair incl. kernel); ${gib(memoryAvailable)} available`,
    fix: memoryNeeded <= memoryAvailable ? undefined : `run with --connections ${fmt(Math.max(0, fits))} or free memory`,
  });

  return {
    ok: checks.every((c) => c.ok),
    plan: { connections, perProcess, servers, dialers, sources, portsPerSource: range, memoryNeeded, memoryAvailable },
    checks,
    doctor: report,
  };
}
