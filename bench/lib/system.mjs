// system.mjs - what the bench reads from the system: per-CPU busy time (/proc/stat), TCP counters
// of this network namespace (/proc/net/netstat), kernel slab and socket memory, machine facts.
import { readFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

const HZ = (() => {
  try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { return 100; }
})();

/** Busy and total jiffies per CPU: { cpu0: { busy, total }, cpu1: ... }. Busy includes irq and softirq. */
export function cpuTimes() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2].split(/\s+/).map(Number);
    out[m[1]] = { busy: user + nice + system + irq + softirq + steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
  }
  return out;
}

/** Busy seconds of `cpu` between two cpuTimes() snapshots, and its busy fraction. */
export function cpuBusy(a, b, cpu = 'cpu1') {
  const busy = (b[cpu].busy - a[cpu].busy) / HZ;
  const total = (b[cpu].total - a[cpu].total) / HZ;
  return { busy_s: busy, pct: total > 0 ? (busy / total) * 100 : 0 };
}

/** TcpExt counters of this network namespace (absolute values). */
export function tcpExt(names = ['ListenOverflows', 'ListenDrops', 'SyncookiesSent', 'TCPReqQFullDrop', 'TCPTimeWaitOverflow']) {
  const text = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const out = {};
  for (let i = 0; i + 1 < text.length; i++) {
    if (!text[i].startsWith('TcpExt:') || !text[i + 1].startsWith('TcpExt:')) continue;
    const keys = text[i].split(/\s+/).slice(1);
    const vals = text[i + 1].split(/\s+/).slice(1).map(Number);
    keys.forEach((k, j) => { if (names.includes(k)) out[k] = vals[j]; });
    break;
  }
  return out;
}

export function diffCounters(a, b) {
  const out = {};
  for (const k of Object.keys(b)) out[k] = b[k] - (a[k] ?? 0);
  return out;
}

/** Kernel slab memory, bytes (host-wide): sockets, TCP control blocks, epoll items live here. */
export function slabBytes() {
  const m = /^Slab:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function memAvailableBytes() {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : os.freemem();
}

/** /proc/net/sockstat: TCP sockets in use, orphans, TIME_WAIT, allocated, and buffer memory (bytes). */
export function sockstat() {
  const text = readFileSync('/proc/net/sockstat', 'utf8');
  const m = /^TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc (\d+) mem (\d+)/m.exec(text);
  const used = /^sockets: used (\d+)/m.exec(text);
  if (!m) return undefined;
  return { sockets: used ? Number(used[1]) : undefined, inuse: +m[1], orphan: +m[2], tw: +m[3], alloc: +m[4], memBytes: +m[5] * 4096 };
}

/** RSS of a process in bytes (/proc/PID/status VmRSS), or undefined. */
export function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch { return undefined; }
}

function read(path) {
  try { return readFileSync(path, 'utf8').trim(); } catch { return null; }
}

/** The machine the figures come from. */
export function machine() {
  const limits = read('/proc/self/limits');
  const nofile = limits && /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  let gcc = null;
  try { gcc = execFileSync('gcc', ['--version'], { encoding: 'utf8' }).split('\n')[0]; } catch { /* none */ }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    os: read('/etc/os-release')?.match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? os.type(),
    node: process.version,
    v8: process.versions.v8,
    libuv: process.versions.uv,
    gcc,
    openFiles: nofile ? { soft: nofile[1], hard: nofile[2] } : null,
    somaxconn: read('/proc/sys/net/core/somaxconn'),
    ipLocalPortRange: read('/proc/sys/net/ipv4/ip_local_port_range')?.replace(/\s+/, '-') ?? null,
    fileMax: read('/proc/sys/fs/file-max'),
    nrOpen: read('/proc/sys/fs/nr_open'),
    root: process.getuid?.() === 0,
    netns: existsSync('/usr/bin/unshare') || existsSync('/bin/unshare'),
  };
}
