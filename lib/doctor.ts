// `myriad doctor`: finds the operating-system limits that cap how many TCP connections a host can
// hold or open, computes the capacity they leave, and says how to lift each one.
//
// Most failures at scale are limits, not bugs. Every check produces a Finding (data: id, severity,
// value, why, fix commands) so the text report, the JSON report and `--apply` share one source.
// The default run only reads: files under /proc on Linux, `netsh` and `reg query` on Windows, the
// interface list, and one bind() to a random 127.x.y.z address (closed at once) to prove the whole
// loopback /8 is usable as source addresses. Nothing changes unless `apply: true` is passed.
import { lookup } from 'node:dns/promises';
import { isIP, createServer } from 'node:net';
import * as os from 'node:os';
import { probeLinux, applySysctlFixes, type AppliedChange } from './doctor-linux';
import { probeWindows } from './doctor-windows';
import { invalidArgValue, stateError } from './errors';

export type { AppliedChange } from './doctor-linux';

/** ok: nothing to do. info: below what very many connections want; fix given. warn: limits scale now. */
export type Severity = 'ok' | 'info' | 'warn';

export interface Fix {
  /** What the command does and when it takes effect. */
  description: string;
  /** The exact command (POSIX shell on Linux, cmd.exe on Windows). */
  command: string;
  /** Present when `apply` can make this change itself (a sysctl under /proc/sys). */
  sysctl?: { key: string; value: string };
}

export interface Finding {
  /** Stable identifier, e.g. `linux.ip_local_port_range`; safe to match on in scripts. */
  id: string;
  severity: Severity;
  title: string;
  /** The value found, as the system reports it (null: not present or not readable). */
  value: string | number | null;
  /** Why this matters for many connections. */
  why: string;
  /** Commands that lift the limit; empty when severity is `ok`. */
  fix: Fix[];
}

export interface PortRange {
  first: number;
  last: number;
  /** Ports the kernel may pick: last - first + 1, less reserved ports inside the range. */
  count: number;
}

export interface SourceAddress {
  address: string;
  interface: string;
  cidr: string | null;
}

export interface SourceAddresses {
  /** Non-loopback, non-link-local IPv4 addresses: sources towards any IPv4 destination. */
  ipv4: SourceAddress[];
  /** Non-loopback, non-link-local IPv6 addresses (global and unique-local). */
  ipv6: SourceAddress[];
  /** 127.0.0.0/8: usable when a bind to a random 127.x.y.z address succeeded; else the listed ones count. */
  loopbackIPv4: { cidr: '127.0.0.0/8'; usable: boolean; addresses: number; probedAddress: string; error: string | null };
  loopbackIPv6: string[];
}

export interface OutboundCapacity {
  /** What the figure is for: `remote IPv4`, `loopback IPv4`, a `--target`, or `--sources N`. */
  destination: string;
  family: 4 | 6;
  sourceAddresses: number;
  portsPerSource: number | null;
  /** Distinct (source address, source port) pairs towards one destination address and port. */
  connections: number | null;
  /** The same, capped by what one process can hold. */
  inOneProcess: number | null;
  limitedBy: 'ports x sources' | 'connections per process' | 'unknown';
  /** New connections per second sustainable when this side closes first (each pair sits in TIME_WAIT). */
  closeFirstRatePerSecond: number | null;
}

export interface Capacity {
  perProcess: { connections: number | null; limitedBy: string };
  toOneDestination: OutboundCapacity[];
  /** Present when `sources` or `target` was given. */
  requested: OutboundCapacity | null;
}

export interface DoctorReport {
  platform: NodeJS.Platform;
  release: string;
  arch: string;
  hostname: string;
  generatedAt: string;
  /** Raw values as read, keyed by sysctl name, registry value name or netsh query; null = absent. */
  settings: Record<string, string | number | null>;
  openFiles: { soft: number | null; hard: number | null } | null;
  ephemeralPorts: { ipv4: PortRange | null; ipv6: PortRange | null };
  /** How long a closed connection's address pair stays unusable (Linux: fixed 60 s). */
  timeWaitSeconds: number | null;
  sources: SourceAddresses;
  capacity: Capacity;
  findings: Finding[];
  /** Probes that could not run, with the reason; the rest of the report is still valid. */
  errors: string[];
  /** Present after `apply: true`: each change with the value before and after. */
  applied?: AppliedChange[];
}

export interface DoctorOptions {
  /** Plan for this many source addresses (e.g. addresses you will add) instead of the ones found. */
  sources?: number;
  /** `host:port` or `[v6]:port` of the one destination to compute the outbound capacity for. */
  target?: string;
  /** Linux, root: write the recommended sysctls in the current network namespace, then re-check. */
  apply?: boolean;
}

/** What a platform probe contributes to the report. */
export interface PlatformFacts {
  settings: Record<string, string | number | null>;
  openFiles: { soft: number | null; hard: number | null } | null;
  ephemeralPorts: { ipv4: PortRange | null; ipv6: PortRange | null };
  timeWaitSeconds: number | null;
  perProcess: { connections: number | null; limitedBy: string };
  findings: Finding[];
  errors: string[];
}

/** The scale the recommendations aim at: a million concurrent connections on one host. */
export const TARGET_CONNECTIONS = 1_048_576;

/** 127.0.0.0/8 less its network and broadcast addresses. */
const LOOPBACK_IPV4_ADDRESSES = 2 ** 24 - 2;

/** Parses `host:port`, `[v6addr]:port`; the port must be 1..65535. */
export function parseEndpoint(name: string, text: string): { host: string; port: number } {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!match) throw invalidArgValue(name, text, 'must be host:port or [ipv6]:port');
  const port = Number(match[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgValue(name, text, 'must have a port from 1 to 65535');
  return { host: match[1], port };
}

/** Runs every check for this platform and returns the report. Read-only unless `apply` is set. */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  if (options.sources !== undefined && (!Number.isInteger(options.sources) || options.sources < 1 || options.sources > LOOPBACK_IPV4_ADDRESSES)) {
    throw invalidArgValue('sources', options.sources, `must be an integer from 1 to ${LOOPBACK_IPV4_ADDRESSES}`);
  }
  const target = options.target === undefined ? undefined : parseEndpoint('target', options.target);
  if (options.apply && process.platform !== 'linux') {
    throw stateError('ERR_FEATURE_UNAVAILABLE_ON_PLATFORM',
      'apply is supported on Linux only (Windows changes need netsh/reg as Administrator and often a reboot)');
  }
  const before = await buildReport(options.sources, target);
  if (!options.apply) return before;
  const applied = await applySysctlFixes(before.findings);
  const after = await buildReport(options.sources, target);
  after.applied = applied;
  return after;
}

async function buildReport(plannedSources: number | undefined, target: { host: string; port: number } | undefined): Promise<DoctorReport> {
  const [facts, sources, resolvedTarget] = await Promise.all([
    probePlatform(),
    findSourceAddresses(),
    target ? resolveTarget(target) : Promise.resolve(undefined),
  ]);
  const capacity = computeCapacity(facts, sources, plannedSources, resolvedTarget);
  return {
    platform: process.platform,
    release: os.release(),
    arch: process.arch,
    hostname: os.hostname(),
    generatedAt: new Date().toISOString(),
    settings: facts.settings,
    openFiles: facts.openFiles,
    ephemeralPorts: facts.ephemeralPorts,
    timeWaitSeconds: facts.timeWaitSeconds,
    sources,
    capacity,
    findings: [...facts.findings, ...sourceFindings(sources, facts, capacity)],
    errors: facts.errors,
  };
}

async function probePlatform(): Promise<PlatformFacts> {
  if (process.platform === 'linux') return probeLinux(TARGET_CONNECTIONS);
  if (process.platform === 'win32') return probeWindows(TARGET_CONNECTIONS);
  // Other platforms get the cross-platform part (addresses, loopback) and say what is missing.
  return {
    settings: {},
    openFiles: null,
    ephemeralPorts: { ipv4: null, ipv6: null },
    timeWaitSeconds: null,
    perProcess: { connections: null, limitedBy: 'unknown' },
    findings: [],
    errors: [`no system probes for platform '${process.platform}' (Linux and Windows are supported)`],
  };
}

function isLinkLocal(address: string, family: 4 | 6): boolean {
  return family === 4 ? address.startsWith('169.254.') : /^fe[89ab][0-9a-f]:/i.test(address);
}

/** The interface addresses usable as connection sources, and a proof that all of 127/8 is. */
export async function findSourceAddresses(): Promise<SourceAddresses> {
  const ipv4: SourceAddress[] = [];
  const ipv6: SourceAddress[] = [];
  const loopbackIPv6: string[] = [];
  let loopbackIPv4Listed = 0;
  for (const [name, addresses] of Object.entries(os.networkInterfaces())) {
    for (const entry of addresses ?? []) {
      const family = entry.family === 'IPv4' ? 4 : 6;
      if (entry.internal) {
        if (family === 6) loopbackIPv6.push(entry.address);
        else loopbackIPv4Listed++;
        continue;
      }
      if (isLinkLocal(entry.address, family)) continue; // reaches only its own link, needs a scope id
      (family === 4 ? ipv4 : ipv6).push({ address: entry.address, interface: name, cidr: entry.cidr });
    }
  }
  return { ipv4, ipv6, loopbackIPv4: await probeLoopbackRange(loopbackIPv4Listed), loopbackIPv6 };
}

/**
 * Binding to an arbitrary 127.x.y.z address (not 127.0.0.1) succeeds only if the whole /8 is local,
 * which is what lets a dialer to a loopback server use ~16.7 million source addresses. If it is
 * not, only the loopback addresses the interfaces list (`listed`) count.
 */
async function probeLoopbackRange(listed: number): Promise<SourceAddresses['loopbackIPv4']> {
  const octet = () => 1 + Math.floor(Math.random() * 254);
  const probedAddress = `127.${octet()}.${octet()}.${octet()}`;
  const error = await new Promise<string | null>((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.code ?? 'error'}: ${err.message}`));
    server.listen({ host: probedAddress, port: 0, exclusive: true }, () => server.close(() => resolve(null)));
  });
  return {
    cidr: '127.0.0.0/8',
    usable: error === null,
    addresses: error === null ? LOOPBACK_IPV4_ADDRESSES : listed,
    probedAddress,
    error,
  };
}

interface ResolvedTarget {
  text: string;
  address: string;
  family: 4 | 6;
  loopback: boolean;
}

async function resolveTarget(target: { host: string; port: number }): Promise<ResolvedTarget> {
  const literal = isIP(target.host);
  const { address, family } = literal ? { address: target.host, family: literal } : await lookup(target.host);
  const isLoopback = family === 4 ? address.startsWith('127.') : address === '::1';
  const shown = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
  return { text: shown, address, family: family as 4 | 6, loopback: isLoopback };
}

function outbound(
  destination: string,
  family: 4 | 6,
  sourceAddresses: number,
  facts: PlatformFacts,
): OutboundCapacity {
  const range = family === 4 ? facts.ephemeralPorts.ipv4 : facts.ephemeralPorts.ipv6;
  const ports = range ? range.count : null;
  const connections = ports === null ? null : ports * sourceAddresses;
  const processLimit = facts.perProcess.connections;
  let inOneProcess: number | null = connections;
  let limitedBy: OutboundCapacity['limitedBy'] = connections === null ? 'unknown' : 'ports x sources';
  if (connections !== null && processLimit !== null && processLimit < connections) {
    inOneProcess = processLimit;
    limitedBy = 'connections per process';
  }
  const closeFirstRatePerSecond =
    connections === null || !facts.timeWaitSeconds ? null : Math.floor(connections / facts.timeWaitSeconds);
  return { destination, family, sourceAddresses, portsPerSource: ports, connections, inOneProcess, limitedBy, closeFirstRatePerSecond };
}

function computeCapacity(
  facts: PlatformFacts,
  sources: SourceAddresses,
  plannedSources: number | undefined,
  target: ResolvedTarget | undefined,
): Capacity {
  const toOneDestination = [
    outbound('remote IPv4', 4, sources.ipv4.length, facts),
    outbound('remote IPv6', 6, sources.ipv6.length, facts),
    outbound('loopback IPv4 (127.0.0.1)', 4, sources.loopbackIPv4.addresses, facts),
    outbound('loopback IPv6 (::1)', 6, sources.loopbackIPv6.length, facts),
  ];
  let requested: OutboundCapacity | null = null;
  if (target) {
    const found = target.loopback
      ? target.family === 4 ? sources.loopbackIPv4.addresses : sources.loopbackIPv6.length
      : target.family === 4 ? sources.ipv4.length : sources.ipv6.length;
    const label = plannedSources === undefined ? target.text : `${target.text} from ${plannedSources} source addresses`;
    requested = outbound(label, target.family, plannedSources ?? found, facts);
  } else if (plannedSources !== undefined) {
    requested = outbound(`one destination from ${plannedSources} source addresses`, 4, plannedSources, facts);
  }
  return { perProcess: facts.perProcess, toOneDestination, requested };
}

/** Findings about source addresses: shared by both platforms, only the fix command differs. */
function sourceFindings(sources: SourceAddresses, facts: PlatformFacts, capacity: Capacity): Finding[] {
  const findings: Finding[] = [];
  const loop = sources.loopbackIPv4;
  findings.push({
    id: 'loopback-source-range',
    severity: loop.usable ? 'ok' : 'warn',
    title: 'every 127.x.y.z usable as a source address',
    value: loop.usable ? `yes (bound ${loop.probedAddress})` : `no (${loop.probedAddress}: ${loop.error})`,
    why:
      'A load generator or proxy dialing a server on this host can use any of the ~16.7 million 127.x.y.z ' +
      'addresses as its source, so loopback tests are not limited to one address\'s ephemeral ports.',
    fix: loop.usable
      ? []
      : process.platform === 'win32'
        ? [{ description: 'loopback is built in on Windows; check that no filter driver blocks 127/8', command: 'netsh interface ipv4 show addresses "Loopback Pseudo-Interface 1"' }]
        : [{ description: 'bring loopback up with the whole /8 (inside a new network namespace lo starts down)', command: 'ip link set lo up && ip addr replace 127.0.0.1/8 dev lo' }],
  });

  const ports = facts.ephemeralPorts.ipv4?.count ?? null;
  const processLimit = facts.perProcess.connections;
  const remote = capacity.toOneDestination[0];
  const wanted = Math.max(processLimit ?? 0, TARGET_CONNECTIONS);
  const needed = ports ? Math.ceil(wanted / ports) : null;
  const enough = remote.connections !== null && remote.connections >= wanted;
  const example = sources.ipv4[0];
  const [, prefix] = example?.cidr?.split('/') ?? [];
  const addCommand = process.platform === 'win32'
    ? `netsh interface ipv4 add address "${example?.interface ?? '<interface>'}" <unused-address> ${prefix ? ipv4Mask(Number(prefix)) : '<mask>'}`
    : `ip addr add <unused-address>/${prefix ?? '<prefix>'} dev ${example?.interface ?? '<interface>'}`;
  const addDescription = `as root/Administrator, once per extra address${example ? `; pick unused addresses of ${subnetOf(example)}` : ''}`;
  findings.push({
    id: 'source-addresses',
    severity: enough || ports === null ? 'ok' : 'info',
    title: 'source addresses for outbound connections',
    value:
      `IPv4: ${sources.ipv4.map((s) => s.address).join(', ') || 'none'}; ` +
      `IPv6: ${sources.ipv6.map((s) => s.address).join(', ') || 'none'}`,
    why:
      'Each connection to one destination address and port needs its own (source address, source port) pair, ' +
      `so one process dialing one endpoint is capped at ports x addresses` +
      (remote.connections !== null ? ` = ${remote.connections.toLocaleString('en-US')} here` : '') +
      (needed !== null ? `; ${wanted.toLocaleString('en-US')} connections need ${needed} addresses` : '') +
      '. Dial from several local addresses after adding them.',
    fix: enough || ports === null ? [] : [{ description: addDescription, command: addCommand }],
  });
  return findings;
}

/** The network an IPv4 address is in, as a.b.c.d/prefix (IPv6: the interface's cidr as is). */
function subnetOf(source: SourceAddress): string {
  if (!source.cidr || source.address.includes(':')) return source.cidr ?? source.address;
  const bits = Number(source.cidr.split('/')[1]);
  const value = source.address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
  const network = bits === 0 ? 0 : value - (value % 2 ** (32 - bits));
  return `${dottedQuad(network)}/${bits}`;
}

const dottedQuad = (n: number): string => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const ipv4Mask = (bits: number): string => dottedQuad(2 ** 32 - 2 ** (32 - bits));

// ---------------------------------------------------------------------------------------------
// Text rendering: the same report as JSON, for people.

const formatNumber = (n: number | null): string => (n === null ? 'unknown' : n.toLocaleString('en-US'));

const SEVERITY_TAG: Record<Severity, string> = { ok: '[ok]  ', info: '[info]', warn: '[warn]' };

/** Renders the report as plain text (ASCII only, so Windows consoles show it as is). */
export function formatDoctorReport(report: DoctorReport): string {
  const lines: string[] = [];
  lines.push(`myriad doctor - ${report.platform} ${report.release} (${report.arch}), host ${report.hostname}, ${report.generatedAt}`);
  lines.push('');
  lines.push('Capacity');
  const perProcess = report.capacity.perProcess;
  lines.push(`  connections one process can hold: ${formatNumber(perProcess.connections)} (${perProcess.limitedBy})`);
  const rows = [...report.capacity.toOneDestination, ...(report.capacity.requested ? [report.capacity.requested] : [])];
  for (const row of rows) {
    const basis = `${formatNumber(row.portsPerSource)} ports x ${formatNumber(row.sourceAddresses)} source address${row.sourceAddresses === 1 ? '' : 'es'}`;
    const capped = row.limitedBy === 'connections per process' ? `; ${formatNumber(row.inOneProcess)} in one process` : '';
    // A connection rate above a million per second limits nothing real: not worth a line's width.
    const churn = row.closeFirstRatePerSecond !== null && row.connections && row.closeFirstRatePerSecond < 1_000_000
      ? `; ${formatNumber(row.closeFirstRatePerSecond)}/s sustained if this side closes first (TIME_WAIT ${report.timeWaitSeconds} s)`
      : '';
    lines.push(`  to one ${row.destination}: ${formatNumber(row.connections)} (${basis}${capped}${churn})`);
  }
  lines.push('');
  lines.push('Findings');
  for (const finding of report.findings) {
    lines.push(`  ${SEVERITY_TAG[finding.severity]} ${finding.title}: ${finding.value ?? 'not present'}`);
    if (finding.severity === 'ok') continue;
    lines.push(`         why: ${finding.why}`);
    for (const fix of finding.fix) {
      lines.push(`         fix (${fix.description}):`);
      lines.push(`           ${fix.command}`);
    }
  }
  if (report.applied) {
    lines.push('');
    lines.push('Applied (current network namespace)');
    for (const change of report.applied) {
      const detail = change.status === 'applied'
        ? `${change.before} -> ${change.after}`
        : `${change.status}: ${change.reason}`;
      lines.push(`  ${change.key}: ${detail}`);
    }
  }
  if (report.errors.length > 0) {
    lines.push('');
    lines.push('Could not check');
    for (const error of report.errors) lines.push(`  ${error}`);
  }
  const counts = { warn: 0, info: 0, ok: 0 };
  for (const finding of report.findings) counts[finding.severity]++;
  lines.push('');
  lines.push(`${counts.warn} warnings, ${counts.info} suggestions, ${counts.ok} ok.` +
    (report.applied || counts.warn + counts.info === 0 || process.platform !== 'linux' ? '' : ' Run as root with --apply to set the sysctls now (this network namespace only).'));
  return lines.join('\n') + '\n';
}
