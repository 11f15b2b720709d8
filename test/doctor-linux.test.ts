// `myriad doctor` on Linux: the parsers, the report against /proc read directly, and the CLI in a
// private network namespace (unshare -n) where the test sets the sysctls to known values, so the
// figures are exact and --apply can be shown to change that namespace and nothing else.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { doctor, formatDoctorReport, type DoctorReport, type Finding } from '../lib/doctor';
import {
  LINUX_SYSCTLS,
  applySysctlFixes,
  ephemeralPortCount,
  parsePortRange,
  parseProcLimits,
  parseReservedPorts,
  parseSockstat,
  sysctlPath,
} from '../lib/doctor-linux';
import { compileLib, type CompiledLib } from './doctor-build';

const readSysctl = (key: string): string | null => {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return null;
  }
};

/** Values that only the kernel changes (conntrack's live count) are left out of "unchanged" checks. */
const hostSysctls = () =>
  Object.fromEntries(LINUX_SYSCTLS.filter((key) => key !== 'net.netfilter.nf_conntrack_count').map((key) => [key, readSysctl(key)]));

const finding = (report: DoctorReport, id: string): Finding => {
  const found = report.findings.find((f) => f.id === id);
  if (!found) throw new Error(`no finding ${id} in ${report.findings.map((f) => f.id).join(', ')}`);
  return found;
};

describe('Linux parsers', () => {
  it('reads the open-file limits from /proc/<pid>/limits', () => {
    const text = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             95913                95913                processes ',
      'Max open files            1024                 524288               files     ',
      'Max locked memory         8388608              8388608              bytes     ',
    ].join('\n');
    expect(parseProcLimits(text)).toEqual({ soft: 1024, hard: 524288 });
    expect(parseProcLimits('Max open files            unlimited            unlimited            files')).toEqual({ soft: null, hard: null });
    expect(parseProcLimits('Max processes 1 1 processes')).toBeNull();
  });

  it('counts ephemeral ports net of reserved ones inside the range', () => {
    const range = parsePortRange('32768 60999');
    expect(range).toEqual({ first: 32768, last: 60999 });
    expect(parsePortRange('32768')).toBeNull();
    const reserved = parseReservedPorts('8080,32768-32867,60999,61000-61010');
    expect(reserved).toEqual([
      { first: 8080, last: 8080 },
      { first: 32768, last: 32867 },
      { first: 60999, last: 60999 },
      { first: 61000, last: 61010 },
    ]);
    // 28232 ports, less 100 + 1 reserved inside; 8080 and 61000-61010 are outside.
    expect(ephemeralPortCount(range!, reserved)).toBe(28232 - 101);
    expect(parseReservedPorts('')).toEqual([]);
  });

  it('reads TIME_WAIT and buffer pages from /proc/net/sockstat', () => {
    const text = 'sockets: used 310\nTCP: inuse 12 orphan 1 tw 345 alloc 20 mem 77\nUDP: inuse 3 mem 2\n';
    expect(parseSockstat(text)).toEqual({ inUse: 12, orphan: 1, timeWait: 345, memPages: 77 });
    expect(parseSockstat('UDP: inuse 3 mem 2')).toBeNull();
  });
});

// Linux only: reads /proc and sysctls of this host.
describe.runIf(process.platform === 'linux')('doctor() on this host', () => {
  it('reports what /proc says, quickly and without changing anything', async () => {
    const before = hostSysctls();
    const started = performance.now();
    const report = await doctor();
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(1000);
    expect(hostSysctls()).toEqual(before);

    for (const key of LINUX_SYSCTLS) {
      if (key !== 'net.netfilter.nf_conntrack_count') expect(report.settings[key], key).toBe(before[key]);
    }
    const limits = parseProcLimits(readFileSync('/proc/self/limits', 'utf8'));
    expect(report.openFiles).toEqual(limits);
    expect(report.capacity.perProcess.connections).toBe(limits!.soft);

    const [first, last] = before['net.ipv4.ip_local_port_range']!.split(' ').map(Number);
    let ports = last - first + 1;
    for (const part of (before['net.ipv4.ip_local_reserved_ports'] ?? '').split(',').filter(Boolean)) {
      const [low, high = low] = part.split('-').map(Number);
      for (let port = low; port <= high; port++) if (port >= first && port <= last) ports--;
    }
    expect(report.ephemeralPorts.ipv4).toEqual({ first, last, count: ports });
    expect(report.timeWaitSeconds).toBe(60);

    // Every 127.x.y.z is a usable source here, so the loopback row multiplies by 2^24 - 2.
    expect(report.sources.loopbackIPv4.usable).toBe(true);
    const loopback = report.capacity.toOneDestination.find((row) => row.destination.startsWith('loopback IPv4'))!;
    expect(loopback.connections).toBe(ports * (2 ** 24 - 2));
    expect(loopback.inOneProcess).toBe(Math.min(ports * (2 ** 24 - 2), limits!.soft!));

    const ids = report.findings.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const f of report.findings) {
      expect(f.why.length, f.id).toBeGreaterThan(20);
      if (f.severity !== 'ok') expect(f.fix.length, f.id).toBeGreaterThan(0);
    }
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('renders every fix command of the JSON report in the text report', async () => {
    const report = await doctor();
    const text = formatDoctorReport(report);
    for (const f of report.findings) {
      expect(text).toContain(f.title);
      for (const fix of f.fix) expect(text).toContain(fix.command);
    }
  });

  it('rejects bad options with Node-style errors', async () => {
    await expect(doctor({ sources: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(doctor({ sources: 1.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(doctor({ target: '127.0.0.1' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(doctor({ target: '127.0.0.1:70000' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('never writes a sysctl that is not per network namespace', async () => {
    // The requested value is the current one, so even a wrong write would leave the host as it was.
    const current = readSysctl('fs.nr_open')!;
    const changes = await applySysctlFixes([{
      id: 'test', severity: 'warn', title: 't', value: current, why: 'w',
      fix: [{ description: 'd', command: 'c', sysctl: { key: 'fs.nr_open', value: current } }],
    }]);
    expect(changes).toEqual([expect.objectContaining({ key: 'fs.nr_open', status: 'skipped', before: current, after: current })]);
    expect(changes[0].reason).toMatch(/whole host/);
  });
});

// Linux only: runs in a network namespace made with unshare -n.
describe.runIf(process.platform === 'linux')('myriad doctor CLI in a private network namespace', () => {
  let lib: CompiledLib;
  let cli: string;
  beforeAll(() => {
    lib = compileLib(['cli.ts']);
    cli = join(lib.dir, 'cli.js');
  }, 60_000);
  afterAll(() => lib?.remove());

  /** Runs `script` under `unshare -n` after bringing lo up and setting the known values. */
  const inNamespace = (script: string) => {
    const setup = [
      'set -e',
      'ip link set lo up',
      'echo "20000 29999" > /proc/sys/net/ipv4/ip_local_port_range',
      'echo 1234 > /proc/sys/net/core/somaxconn',
      'echo 42 > /proc/sys/net/ipv4/tcp_fin_timeout',
    ].join('\n');
    const result = spawnSync('unshare', ['-n', 'sh', '-c', `${setup}\n${script}`], {
      encoding: 'utf8',
      env: { ...process.env, CLI: cli, NODE: process.execPath },
    });
    return result;
  };

  it('reports the values set in the namespace and the capacity they give', () => {
    const result = inNamespace('"$NODE" "$CLI" doctor --json --sources 3');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as DoctorReport;

    expect(report.settings['net.ipv4.ip_local_port_range']).toBe('20000 29999');
    expect(report.settings['net.core.somaxconn']).toBe('1234');
    expect(report.settings['net.ipv4.tcp_fin_timeout']).toBe('42');
    expect(report.settings['net.ipv4.tcp_mem']).toBeNull(); // global: absent outside the initial namespace
    expect(report.ephemeralPorts.ipv4).toEqual({ first: 20000, last: 29999, count: 10000 });

    const soft = report.openFiles!.soft!;
    const row = (prefix: string) => report.capacity.toOneDestination.find((r) => r.destination.startsWith(prefix))!;
    // Only lo exists in the namespace: no source address reaches a remote destination.
    expect(report.sources.ipv4).toEqual([]);
    expect(row('remote IPv4')).toMatchObject({ sourceAddresses: 0, portsPerSource: 10000, connections: 0 });
    expect(row('loopback IPv4')).toMatchObject({ sourceAddresses: 2 ** 24 - 2, connections: 10000 * (2 ** 24 - 2), inOneProcess: soft });
    expect(row('loopback IPv6')).toMatchObject({ sourceAddresses: 1, connections: 10000 });
    expect(row('loopback IPv6').closeFirstRatePerSecond).toBe(Math.floor(10000 / 60));
    expect(report.capacity.requested).toMatchObject({
      sourceAddresses: 3,
      connections: 30000,
      inOneProcess: Math.min(30000, soft),
      limitedBy: soft < 30000 ? 'connections per process' : 'ports x sources',
    });

    const somaxconn = finding(report, 'linux.net.core.somaxconn');
    expect(somaxconn).toMatchObject({ severity: 'warn', value: '1234' });
    expect(somaxconn.fix.map((f) => f.command)).toEqual([
      'sysctl -w net.core.somaxconn=65535',
      "echo 'net.core.somaxconn = 65535' >> /etc/sysctl.d/99-myriad.conf",
    ]);
    expect(finding(report, 'linux.net.ipv4.tcp_fin_timeout')).toMatchObject({ severity: 'info', value: '42' });
    const range = finding(report, 'linux.net.ipv4.ip_local_port_range');
    expect(range.severity).toBe('warn');
    expect(range.value).toBe('20000 29999 (10,000 ports)');
    expect(range.fix[0].command).toBe('sysctl -w net.ipv4.ip_local_port_range="1024 65535"');
    expect(report.applied).toBeUndefined();
  });

  it('computes the capacity to a --target from the sources that reach it', () => {
    const v6 = JSON.parse(inNamespace('"$NODE" "$CLI" doctor --json --target [::1]:80').stdout) as DoctorReport;
    expect(v6.capacity.requested).toMatchObject({ family: 6, sourceAddresses: 1, connections: 10000, limitedBy: 'ports x sources' });
    const v4 = JSON.parse(inNamespace('"$NODE" "$CLI" doctor --json --target 127.0.0.1:9 --sources 5').stdout) as DoctorReport;
    expect(v4.capacity.requested).toMatchObject({ destination: '127.0.0.1:9 from 5 source addresses', family: 4, sourceAddresses: 5, connections: 50000 });
    const all = JSON.parse(inNamespace('"$NODE" "$CLI" doctor --json --target 127.0.0.1:9').stdout) as DoctorReport;
    expect(all.capacity.requested).toMatchObject({ sourceAddresses: 2 ** 24 - 2, limitedBy: 'connections per process' });
  });

  it('prints the same findings as a readable report', () => {
    const result = inNamespace('"$NODE" "$CLI" doctor --target [::1]:80');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('net.core.somaxconn (accept queue length cap): 1234');
    expect(result.stdout).toContain('sysctl -w net.core.somaxconn=65535');
    expect(result.stdout).toContain('to one [::1]:80: 10,000 (10,000 ports x 1 source address');
    expect(() => JSON.parse(result.stdout)).toThrow();
  });

  it('--apply changes the sysctls in that namespace and nowhere else', () => {
    const hostBefore = hostSysctls();
    const result = inNamespace([
      '"$NODE" "$CLI" doctor --json --apply',
      'echo "--- after"',
      'cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/core/somaxconn /proc/sys/net/ipv4/tcp_fin_timeout',
    ].join('\n'));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const [json, after] = result.stdout.split('--- after\n');
    const report = JSON.parse(json) as DoctorReport;
    const change = (key: string) => report.applied!.find((c) => c.key === key);

    expect(change('net.ipv4.ip_local_port_range')).toEqual({ key: 'net.ipv4.ip_local_port_range', requested: '1024 65535', before: '20000 29999', after: '1024 65535', status: 'applied' });
    expect(change('net.core.somaxconn')).toMatchObject({ before: '1234', after: '65535', status: 'applied' });
    expect(change('net.ipv4.tcp_fin_timeout')).toMatchObject({ before: '42', after: '15', status: 'applied' });
    expect(after.trim().split(/\s+/)).toEqual(['1024', '65535', '65535', '15']);
    // The report after applying is re-read: those findings are now fine.
    expect(finding(report, 'linux.net.core.somaxconn').severity).toBe('ok');
    expect(report.ephemeralPorts.ipv4?.count).toBe(64512);
    // conntrack's limit is global, read-only outside the initial namespace: skipped, not failed.
    const conntrack = change('net.netfilter.nf_conntrack_max');
    if (conntrack) expect(conntrack).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/read-only/) });
    expect(report.applied!.every((c) => c.status !== 'failed')).toBe(true);

    expect(hostSysctls()).toEqual(hostBefore);
  });

  it('rejects bad flags and values with usage and exit code 2', () => {
    for (const args of [
      ['doctor', '--sources', '0'],
      ['doctor', '--sources', 'three'],
      ['doctor', '--target', 'nohost'],
      ['doctor', '--target', '127.0.0.1:0'],
      ['doctor', '--verbose'],
      ['doctor', 'extra'],
      ['doctors'],
      [],
    ]) {
      const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.stderr, args.join(' ')).toMatch(/Usage: myriad/);
    }
    const help = spawnSync(process.execPath, [cli, 'doctor', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: myriad doctor/);
  });
});
