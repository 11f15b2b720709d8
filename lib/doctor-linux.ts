// Linux probes for `myriad doctor`: reads /proc/sys, /proc/self/limits and /proc/net/sockstat
// (all per network namespace except fs.* and the rlimit) and turns them into findings.
// `applySysctlFixes` is the only writer, and `doctor()` calls it only with `apply: true`.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { promisify } from 'node:util';
import type { Finding, Fix, PlatformFacts, PortRange } from './doctor';

/** The sysctls doctor reads; the report's `settings` has one entry per key (null = absent here). */
export const LINUX_SYSCTLS = [
  'fs.nr_open',
  'fs.file-max',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.core.somaxconn',
  'net.ipv4.tcp_max_syn_backlog',
  'net.ipv4.tcp_tw_reuse',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_max_tw_buckets',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_count',
  'net.ipv4.tcp_mem',
] as const;

type SysctlKey = (typeof LINUX_SYSCTLS)[number];

/** Linux keeps a closed connection's address pair in TIME_WAIT for TCP_TIMEWAIT_LEN, not tunable. */
const LINUX_TIME_WAIT_SECONDS = 60;

/** Every port above the privileged ones. */
const RECOMMENDED_PORT_RANGE = { first: 1024, last: 65535 };
/** Narrower than this and the range, not the application, caps outbound connections. */
const MIN_PORT_COUNT = 60_000;

export const sysctlPath = (key: string): string => `/proc/sys/${key.replace(/\./g, '/')}`;

async function readSysctl(key: string): Promise<string | null> {
  try {
    return (await fs.readFile(sysctlPath(key), 'utf8')).trim().replace(/\s+/g, ' ');
  } catch {
    return null; // not present in this kernel or network namespace (e.g. conntrack not loaded)
  }
}

/** `Max open files  1024  524288  files` from /proc/<pid>/limits; `unlimited` becomes null. */
export function parseProcLimits(text: string): { soft: number | null; hard: number | null } | null {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return null;
  const value = (field: string) => (field === 'unlimited' ? null : Number(field));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/** `32768 60999` → first/last; null if malformed. */
export function parsePortRange(text: string | null): { first: number; last: number } | null {
  const match = text === null ? null : /^(\d+)\s+(\d+)$/.exec(text.trim());
  if (!match) return null;
  return { first: Number(match[1]), last: Number(match[2]) };
}

/** `8080,9000-9100` → ranges (the format of net.ipv4.ip_local_reserved_ports). */
export function parseReservedPorts(text: string | null): Array<{ first: number; last: number }> {
  if (!text) return [];
  return text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const [first, last] = part.split('-').map(Number);
      return { first, last: last ?? first };
    });
}

/** Ports in [first, last] that the kernel may hand out, after subtracting reserved ones. */
export function ephemeralPortCount(range: { first: number; last: number }, reserved: Array<{ first: number; last: number }>): number {
  let excluded = 0;
  for (const r of reserved) {
    const overlap = Math.min(r.last, range.last) - Math.max(r.first, range.first) + 1;
    if (overlap > 0) excluded += overlap;
  }
  return range.last - range.first + 1 - excluded;
}

/** The `TCP:` line of /proc/net/sockstat: sockets in use, orphans, TIME_WAIT, buffer pages. */
export function parseSockstat(text: string): { inUse: number; orphan: number; timeWait: number; memPages: number } | null {
  const match = /^TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc \d+ mem (\d+)/m.exec(text);
  if (!match) return null;
  return { inUse: Number(match[1]), orphan: Number(match[2]), timeWait: Number(match[3]), memPages: Number(match[4]) };
}

async function readText(path: string): Promise<string | null> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch {
    return null;
  }
}

async function pageSize(): Promise<number | null> {
  try {
    const { stdout } = await promisify(execFile)('getconf', ['PAGESIZE'], { timeout: 2000 });
    const size = Number(stdout.trim());
    return Number.isInteger(size) && size > 0 ? size : null;
  } catch {
    return null;
  }
}

/** Fixes for one sysctl: set it now (what `apply` runs) and keep it across reboots. */
export function sysctlFixes(key: string, value: string): Fix[] {
  const quoted = value.includes(' ') ? `"${value}"` : value;
  return [
    { description: 'now, until reboot', command: `sysctl -w ${key}=${quoted}`, sysctl: { key, value } },
    { description: 'at every boot', command: `echo '${key} = ${value}' >> /etc/sysctl.d/99-myriad.conf` },
  ];
}

/** warn below `minimum`, info below `recommended`, ok at or above. */
function atLeast(value: number, minimum: number, recommended: number): Finding['severity'] {
  return value < minimum ? 'warn' : value < recommended ? 'info' : 'ok';
}

function numericSysctlFinding(
  key: SysctlKey,
  raw: string | null,
  title: string,
  why: string,
  minimum: number,
  recommended: number,
): Finding {
  const value = raw === null ? null : Number(raw);
  const severity = value === null ? 'ok' : atLeast(value, minimum, recommended);
  return {
    id: `linux.${key}`,
    severity,
    title: `${key} (${title})`,
    value: raw,
    why,
    fix: severity === 'ok' ? [] : sysctlFixes(key, String(recommended)),
  };
}

/** `targetConnections`: the scale the recommendations aim at (doctor's TARGET_CONNECTIONS). */
export async function probeLinux(targetConnections: number): Promise<PlatformFacts> {
  const [values, limitsText, sockstatText, meminfo, page] = await Promise.all([
    Promise.all(LINUX_SYSCTLS.map(readSysctl)),
    readText('/proc/self/limits'),
    readText('/proc/net/sockstat'),
    readText('/proc/meminfo'),
    pageSize(),
  ]);
  const settings = Object.fromEntries(LINUX_SYSCTLS.map((key, i) => [key, values[i]])) as Record<SysctlKey, string | null>;
  const errors: string[] = [];
  const openFiles = limitsText ? parseProcLimits(limitsText) : null;
  if (!openFiles) errors.push('open-file limit: /proc/self/limits not readable');
  const sockstat = sockstatText ? parseSockstat(sockstatText) : null;
  const memTotalKiB = meminfo ? Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN) : NaN;

  const range = parsePortRange(settings['net.ipv4.ip_local_port_range']);
  const reserved = parseReservedPorts(settings['net.ipv4.ip_local_reserved_ports']);
  // ip_local_port_range governs IPv6 as well: one range for both families.
  const ports: PortRange | null = range ? { ...range, count: ephemeralPortCount(range, reserved) } : null;
  if (!ports) errors.push(`net.ipv4.ip_local_port_range: unreadable (${settings['net.ipv4.ip_local_port_range']})`);

  const findings: Finding[] = [
    openFilesFinding(openFiles, settings['fs.nr_open'], targetConnections),
    numericSysctlFinding('fs.nr_open', settings['fs.nr_open'], 'ceiling for any process\'s open-file limit',
      'No process can raise its open-file limit (RLIMIT_NOFILE) above this, whatever limits.conf or systemd say.',
      targetConnections, targetConnections),
    numericSysctlFinding('fs.file-max', settings['fs.file-max'], 'open files, all processes together',
      'Every connection is an open file; past this the kernel refuses new sockets system-wide (ENFILE).',
      targetConnections, targetConnections),
    portRangeFinding(settings['net.ipv4.ip_local_port_range'], ports),
    {
      id: 'linux.net.ipv4.ip_local_reserved_ports',
      severity: 'ok',
      title: 'net.ipv4.ip_local_reserved_ports (never picked as ephemeral ports)',
      value: settings['net.ipv4.ip_local_reserved_ports'] || '(none)',
      why: 'Reserved ports are skipped when choosing a source port; reserve the ports your own servers listen on when widening the range.',
      fix: [],
    },
    numericSysctlFinding('net.core.somaxconn', settings['net.core.somaxconn'], 'accept queue length cap',
      'listen() backlogs are silently capped at this. When connections arrive faster than they are accepted ' +
      '(a reconnect storm after a restart), the queue overflows and the kernel drops SYNs: clients wait 1 s, 3 s, 7 s to retry.',
      4096, 65535),
    numericSysctlFinding('net.ipv4.tcp_max_syn_backlog', settings['net.ipv4.tcp_max_syn_backlog'], 'half-open connections per listener',
      'Connections still in the handshake beyond this are dropped, or answered with SYN cookies (which lose TCP options).',
      2048, 65535),
    twReuseFinding(settings['net.ipv4.tcp_tw_reuse']),
    finTimeoutFinding(settings['net.ipv4.tcp_fin_timeout']),
    timeWaitFinding(settings['net.ipv4.tcp_max_tw_buckets'], sockstat, ports),
    conntrackFinding(settings['net.netfilter.nf_conntrack_max'], settings['net.netfilter.nf_conntrack_count'], targetConnections),
    tcpMemFinding(settings['net.ipv4.tcp_mem'], sockstat, page, memTotalKiB),
  ];

  return {
    settings,
    openFiles,
    ephemeralPorts: { ipv4: ports, ipv6: ports },
    timeWaitSeconds: LINUX_TIME_WAIT_SECONDS,
    perProcess: {
      connections: openFiles?.soft ?? null,
      limitedBy: openFiles ? `open-file soft limit; hard limit ${openFiles.hard ?? 'unlimited'}` : 'unknown',
    },
    findings,
    errors,
  };
}

function openFilesFinding(
  limits: { soft: number | null; hard: number | null } | null,
  nrOpen: string | null,
  targetConnections: number,
): Finding {
  const base = {
    id: 'linux.open-files',
    title: 'open-file limit of this process (soft / hard)',
    value: limits ? `${limits.soft ?? 'unlimited'} / ${limits.hard ?? 'unlimited'}` : null,
  };
  if (!limits || limits.soft === null) return { ...base, severity: 'ok', why: 'Each connection is a file descriptor.', fix: [] };
  const hard = limits.hard ?? Number.MAX_SAFE_INTEGER;
  const fix: Fix[] = [];
  if (limits.soft < hard) {
    fix.push(
      { description: 'in the program, at startup (what Go\'s runtime does)', command: "require('myriad').raiseOpenFileLimit()" },
      { description: 'in the shell that starts it', command: `ulimit -n ${limits.hard ?? 'unlimited'}` },
    );
  }
  if (hard < targetConnections) {
    const wanted = Math.min(targetConnections, Number(nrOpen ?? targetConnections));
    fix.push(
      { description: 'login sessions (PAM), from the next login', command: `printf '* soft nofile ${wanted}\\n* hard nofile ${wanted}\\n' > /etc/security/limits.d/99-myriad.conf` },
      { description: 'a systemd service', command: `systemctl edit <your.service>   # add: [Service] LimitNOFILE=${wanted}, then: systemctl restart <your.service>` },
      { description: 'a running process, without restarting it', command: `prlimit --pid <pid> --nofile=${wanted}:${wanted}` },
      { description: 'a container', command: `docker run --ulimit nofile=${wanted}:${wanted} ...` },
    );
  }
  return {
    ...base,
    severity: limits.soft < hard ? 'warn' : hard < targetConnections ? 'info' : 'ok',
    why:
      `Each connection is a file descriptor, so this process can hold at most ${limits.soft.toLocaleString('en-US')} connections` +
      (limits.soft < hard ? `; the hard limit allows ${hard.toLocaleString('en-US')} without any privilege.` : '.'),
    fix,
  };
}

function portRangeFinding(raw: string | null, ports: PortRange | null): Finding {
  const severity = ports && ports.count < MIN_PORT_COUNT ? 'warn' : 'ok';
  return {
    id: 'linux.net.ipv4.ip_local_port_range',
    severity,
    title: 'net.ipv4.ip_local_port_range (ephemeral source ports, IPv4 and IPv6)',
    value: ports ? `${raw} (${ports.count.toLocaleString('en-US')} ports)` : raw,
    why:
      'Each outbound connection to the same destination address and port needs its own source port from this range ' +
      '(per source address): it caps connections to one server. Reserve your listening ports with ip_local_reserved_ports when widening it.',
    fix: severity === 'ok' ? [] : sysctlFixes('net.ipv4.ip_local_port_range', `${RECOMMENDED_PORT_RANGE.first} ${RECOMMENDED_PORT_RANGE.last}`),
  };
}

function twReuseFinding(raw: string | null): Finding {
  // 0 = never, 1 = for all outbound connections, 2 = loopback only (the default of current kernels).
  const severity = raw === null || raw === '1' ? 'ok' : raw === '0' ? 'warn' : 'info';
  return {
    id: 'linux.net.ipv4.tcp_tw_reuse',
    severity,
    title: 'net.ipv4.tcp_tw_reuse (reuse TIME_WAIT pairs for new outbound connections)',
    value: raw,
    why:
      'A dialer that closes first leaves each (source, destination) pair in TIME_WAIT for 60 s; with reuse on (1), connect() ' +
      'may take such a pair when TCP timestamps make it safe, instead of failing with EADDRNOTAVAIL. 2 applies it to loopback only.',
    fix: severity === 'ok' ? [] : sysctlFixes('net.ipv4.tcp_tw_reuse', '1'),
  };
}

function finTimeoutFinding(raw: string | null): Finding {
  const value = raw === null ? null : Number(raw);
  const severity = value === null || value <= 30 ? 'ok' : value > 60 ? 'warn' : 'info';
  return {
    id: 'linux.net.ipv4.tcp_fin_timeout',
    severity,
    title: 'net.ipv4.tcp_fin_timeout (seconds in FIN_WAIT_2 for closed sockets)',
    value: raw,
    why:
      'Sockets this side closed wait this long for the peer\'s FIN, each holding memory and its port. ' +
      'It does not shorten TIME_WAIT, which Linux fixes at 60 s.',
    fix: severity === 'ok' ? [] : sysctlFixes('net.ipv4.tcp_fin_timeout', '15'),
  };
}

function timeWaitFinding(
  bucketsRaw: string | null,
  sockstat: { timeWait: number } | null,
  ports: PortRange | null,
): Finding {
  const buckets = bucketsRaw === null ? null : Number(bucketsRaw);
  const timeWait = sockstat?.timeWait ?? null;
  const tableNearlyFull = buckets !== null && timeWait !== null && timeWait >= 0.8 * buckets;
  const portsPilingUp = ports !== null && timeWait !== null && timeWait >= 0.5 * ports.count;
  const fix: Fix[] = [];
  if (portsPilingUp) fix.push(...sysctlFixes('net.ipv4.tcp_tw_reuse', '1'));
  if (tableNearlyFull && buckets !== null) fix.push(...sysctlFixes('net.ipv4.tcp_max_tw_buckets', String(buckets * 2)));
  return {
    id: 'linux.time-wait',
    severity: tableNearlyFull || portsPilingUp ? 'warn' : 'ok',
    title: 'sockets in TIME_WAIT now / net.ipv4.tcp_max_tw_buckets',
    value: `${timeWait ?? 'unknown'} / ${bucketsRaw ?? 'unknown'}`,
    why:
      'TIME_WAIT piles up when this side closes connections faster than 60 s lets them go: each holds a source port. ' +
      'Past tcp_max_tw_buckets the kernel drops them early and logs "time wait bucket table overflow". ' +
      'Letting the peer close first, tcp_tw_reuse=1, a wider port range or more source addresses relieve it.',
    fix,
  };
}

function conntrackFinding(maxRaw: string | null, countRaw: string | null, targetConnections: number): Finding {
  const base = { id: 'linux.net.netfilter.nf_conntrack_max', title: 'net.netfilter.nf_conntrack_max (connection tracking table)' };
  if (maxRaw === null) {
    return { ...base, severity: 'ok', value: 'conntrack not loaded', why: 'Without connection tracking there is no table to fill.', fix: [] };
  }
  const max = Number(maxRaw);
  const count = countRaw === null ? null : Number(countRaw);
  const nearlyFull = count !== null && count >= 0.8 * max;
  const severity = nearlyFull ? 'warn' : max < targetConnections ? 'info' : 'ok';
  const wanted = Math.max(targetConnections, max * 2);
  return {
    ...base,
    severity,
    value: `${count ?? 'unknown'} in use of ${maxRaw}`,
    why:
      'With netfilter connection tracking loaded, every connection through this host takes an entry; when the table is full the ' +
      'kernel drops new connections\' packets ("nf_conntrack: table full, dropping packet"). It can only be set in the initial network namespace.',
    fix: severity === 'ok' ? [] : [
      ...sysctlFixes('net.netfilter.nf_conntrack_max', String(wanted)),
      { description: 'hash table to match, 4 entries per bucket', command: `echo ${Math.ceil(wanted / 4)} > /sys/module/nf_conntrack/parameters/hashsize` },
    ],
  };
}

function tcpMemFinding(
  raw: string | null,
  sockstat: { memPages: number } | null,
  page: number | null,
  memTotalKiB: number,
): Finding {
  const base = { id: 'linux.net.ipv4.tcp_mem', title: 'net.ipv4.tcp_mem (pages for all TCP buffers: low pressure high)' };
  const pages = raw?.split(' ').map(Number);
  if (!pages || pages.length !== 3) {
    return {
      ...base,
      severity: 'ok',
      value: raw,
      why: 'tcp_mem is global; it is visible only in the initial network namespace.',
      fix: [],
    };
  }
  const [, pressure, high] = pages;
  const inUse = sockstat?.memPages ?? null;
  const underPressure = inUse !== null && inUse >= pressure;
  const bytes = (n: number) => (page ? `${Math.round((n * page) / 2 ** 20).toLocaleString('en-US')} MiB` : `${n} pages`);
  const share = page && Number.isFinite(memTotalKiB) ? ` (${Math.round((100 * high * page) / (memTotalKiB * 1024))}% of RAM)` : '';
  // Double the thresholds, but never let TCP buffers claim more than half of the machine's memory.
  const cap = page && Number.isFinite(memTotalKiB) ? Math.floor((memTotalKiB * 1024) / 2 / page) : high * 2;
  const raised = pages.map((n) => Math.min(n * 2, cap)).join(' ');
  return {
    ...base,
    severity: underPressure ? 'warn' : 'ok',
    value: `${raw} (high = ${bytes(high)}${share}; in use now ${inUse === null ? 'unknown' : bytes(inUse)})`,
    why:
      'Above the pressure threshold the kernel shrinks every socket\'s buffers; at the high mark it refuses to allocate more, ' +
      'which stalls connections. Idle connections hold almost nothing; busy ones hold their unsent and unread bytes.',
    fix: underPressure ? sysctlFixes('net.ipv4.tcp_mem', raised) : [],
  };
}

export interface AppliedChange {
  key: string;
  requested: string;
  before: string | null;
  after: string | null;
  status: 'applied' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  reason?: string;
}

/**
 * Writes every sysctl fix of the non-ok findings to /proc/sys, in the caller's network namespace.
 * Only net.* keys are written: fs.* sysctls are global, so changing them from a container or a
 * test namespace would change the whole host. Keys read-only here (nf_conntrack_max outside the
 * initial namespace) are skipped with the reason.
 */
export async function applySysctlFixes(findings: Finding[]): Promise<AppliedChange[]> {
  const wanted = new Map<string, string>();
  for (const finding of findings) {
    if (finding.severity === 'ok') continue;
    for (const fix of finding.fix) if (fix.sysctl) wanted.set(fix.sysctl.key, fix.sysctl.value);
  }
  const changes: AppliedChange[] = [];
  for (const [key, requested] of wanted) {
    const before = await readSysctl(key);
    const change: AppliedChange = { key, requested, before, after: before, status: 'skipped' };
    changes.push(change);
    if (!key.startsWith('net.')) {
      change.reason = 'not per network namespace: it would change the whole host; run the sysctl command yourself';
      continue;
    }
    const path = sysctlPath(key);
    try {
      const { mode } = await fs.stat(path);
      if ((mode & 0o222) === 0) {
        change.reason = 'read-only in this network namespace; set it in the initial namespace';
        continue;
      }
      await fs.writeFile(path, requested);
      change.after = await readSysctl(key);
      change.status = 'applied';
    } catch (error) {
      change.status = 'failed';
      change.reason = (error as Error).message;
    }
  }
  return changes;
}
