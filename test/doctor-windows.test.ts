// `myriad doctor` on Windows: the netsh and reg parsers and the findings built from their output,
// tested on every OS against recorded outputs in test/fixtures/windows (English, German and French
// layouts, in the OEM code pages a pipe delivers), plus the live probes where Windows (or Wine) runs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TARGET_CONNECTIONS, doctor, type Finding, type PlatformFacts } from '../lib/doctor';
import {
  DEFAULT_TCP_NUM_CONNECTIONS,
  DEFAULT_TIME_WAIT_SECONDS,
  TCPIP_PARAMETERS_KEY,
  parseNetshDynamicPort,
  parseRegQuery,
  registryDword,
  windowsFacts,
} from '../lib/doctor-windows';

/** Read as the probe reads command output: latin1, every byte kept whatever the code page. */
const fixture = (name: string) => readFileSync(new URL(`./fixtures/windows/${name}`, import.meta.url), 'latin1');

const finding = (facts: PlatformFacts, id: string): Finding => {
  const found = facts.findings.find((f) => f.id === id);
  if (!found) throw new Error(`no finding ${id}`);
  return found;
};

describe('netsh int ipv4|ipv6 show dynamicport tcp', () => {
  it('parses the English layout', () => {
    expect(parseNetshDynamicPort(fixture('netsh-ipv4-dynamicport-tcp.en-US.txt'))).toEqual({ first: 49152, last: 65535, count: 16384 });
    expect(parseNetshDynamicPort(fixture('netsh-ipv6-dynamicport-tcp.en-US.txt'))).toEqual({ first: 1025, last: 65535, count: 64511 });
  });

  it('parses the German layout (Startport / Anzahl Ports)', () => {
    expect(parseNetshDynamicPort(fixture('netsh-ipv4-dynamicport-tcp.de-DE.txt'))).toEqual({ first: 49152, last: 65535, count: 16384 });
  });

  it('parses the French layout in code page 850', () => {
    const text = fixture('netsh-ipv4-dynamicport-tcp.fr-FR.cp850.txt');
    expect(text).toContain('Port de d\x82marrage'); // the raw CP850 byte, not UTF-8
    expect(parseNetshDynamicPort(text)).toEqual({ first: 10000, last: 14999, count: 5000 });
  });

  it('returns null for output that is not a port range', () => {
    expect(parseNetshDynamicPort(fixture('netsh-command-not-found.en-US.txt'))).toBeNull();
    expect(parseNetshDynamicPort(fixture('netsh-ipv4-dynamicport-tcp.wine.txt'))).toBeNull(); // Wine's netsh prints nothing
    expect(parseNetshDynamicPort('Start Port : 60000\r\nNumber of Ports : 10000\r\n')).toBeNull(); // past 65535
    expect(parseNetshDynamicPort('')).toBeNull();
  });
});

describe('reg query HKLM\\...\\Tcpip\\Parameters', () => {
  it('reads the values under the key, names with spaces and empty strings included', () => {
    const values = parseRegQuery(fixture('reg-query-tcpip-parameters.tuned.en-US.txt'));
    expect(values['NV Hostname']).toEqual({ type: 'REG_SZ', data: 'COMET-01' });
    expect(values.NameServer).toEqual({ type: 'REG_SZ', data: '' });
    expect(values.DataBasePath).toEqual({ type: 'REG_EXPAND_SZ', data: '%SystemRoot%\\System32\\drivers\\etc' });
    expect(registryDword(values, 'MaxUserPort')).toBe(0xfffe);
    expect(registryDword(values, 'TcpTimedWaitDelay')).toBe(30);
    expect(registryDword(values, 'MaxFreeTcbs')).toBe(0x2000);
    expect(registryDword(values, 'TcpNumConnections')).toBe(0xfffffe);
    expect(registryDword(values, 'Hostname')).toBeNull(); // a REG_SZ is not a DWORD
    expect(Object.keys(values)).not.toContain('Adapters');
  });

  it('ignores values that belong to subkeys', () => {
    const text = [
      '',
      `HKEY_LOCAL_MACHINE\\${TCPIP_PARAMETERS_KEY.slice(5)}`,
      '    Hostname    REG_SZ    A',
      '',
      `HKEY_LOCAL_MACHINE\\${TCPIP_PARAMETERS_KEY.slice(5)}\\Winsock`,
      '    MaxUserPort    REG_DWORD    0x1388',
    ].join('\r\n');
    expect(parseRegQuery(text)).toEqual({ Hostname: { type: 'REG_SZ', data: 'A' } });
  });

  it('reads the output recorded from Wine\'s reg.exe', () => {
    expect(parseRegQuery(fixture('reg-query-tcpip-parameters.wine.txt'))).toEqual({
      DataBasePath: { type: 'REG_SZ', data: 'C:\\windows\\system32\\drivers\\etc' },
      Domain: { type: 'REG_SZ', data: '' },
      Hostname: { type: 'REG_SZ', data: 'vm' },
    });
  });

  it('finds none of the four values on a stock install', () => {
    const values = parseRegQuery(fixture('reg-query-tcpip-parameters.defaults.de-DE.txt'));
    expect(values.Hostname).toEqual({ type: 'REG_SZ', data: 'SRV-BERLIN' });
    for (const name of ['MaxUserPort', 'TcpTimedWaitDelay', 'TcpNumConnections', 'MaxFreeTcbs']) {
      expect(registryDword(values, name), name).toBeNull();
    }
  });
});

describe('Windows findings and capacity inputs from recorded output', () => {
  it('flags the default port range and the default TIME_WAIT, with the commands that fix them', () => {
    const facts = windowsFacts({
      ipv4DynamicPorts: fixture('netsh-ipv4-dynamicport-tcp.en-US.txt'),
      ipv6DynamicPorts: fixture('netsh-ipv6-dynamicport-tcp.en-US.txt'),
      tcpipParameters: fixture('reg-query-tcpip-parameters.defaults.de-DE.txt'),
    }, TARGET_CONNECTIONS);
    expect(facts.errors).toEqual([]);
    expect(facts.settings).toEqual({
      'netsh int ipv4 show dynamicport tcp': 'start=49152 num=16384',
      'netsh int ipv6 show dynamicport tcp': 'start=1025 num=64511',
      MaxUserPort: null,
      TcpTimedWaitDelay: null,
      TcpNumConnections: null,
      MaxFreeTcbs: null,
    });
    expect(facts.ephemeralPorts.ipv4).toEqual({ first: 49152, last: 65535, count: 16384 });

    const ipv4 = finding(facts, 'windows.dynamicport.ipv4');
    expect(ipv4.severity).toBe('warn');
    expect(ipv4.fix.map((f) => f.command)).toEqual(['netsh int ipv4 set dynamicport tcp start=1025 num=64511']);
    expect(finding(facts, 'windows.dynamicport.ipv6')).toMatchObject({ severity: 'ok', fix: [] });

    const timeWait = finding(facts, 'windows.TcpTimedWaitDelay');
    expect(timeWait.severity).toBe('info');
    expect(timeWait.value).toBe(`absent (default ${DEFAULT_TIME_WAIT_SECONDS} s on current Windows)`);
    expect(timeWait.fix.map((f) => f.command)).toEqual([
      'reg add "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters" /v TcpTimedWaitDelay /t REG_DWORD /d 30 /f',
    ]);
    expect(finding(facts, 'windows.MaxUserPort')).toMatchObject({ severity: 'ok', value: 'absent (default: the netsh dynamic port range applies)' });
    expect(finding(facts, 'windows.MaxFreeTcbs').value).toMatch(/^absent \(default: TCP control blocks are allocated on demand\)/);
    expect(finding(facts, 'windows.TcpNumConnections')).toMatchObject({ severity: 'ok', value: 'absent (default 16,777,214, the maximum)' });

    expect(facts.timeWaitSeconds).toBe(DEFAULT_TIME_WAIT_SECONDS);
    expect(facts.perProcess.connections).toBe(DEFAULT_TCP_NUM_CONNECTIONS);
    expect(facts.openFiles).toBeNull();
  });

  it('accepts the values the seed write-up recommends', () => {
    const facts = windowsFacts({
      ipv4DynamicPorts: fixture('netsh-ipv6-dynamicport-tcp.en-US.txt'),
      ipv6DynamicPorts: fixture('netsh-ipv6-dynamicport-tcp.en-US.txt'),
      tcpipParameters: fixture('reg-query-tcpip-parameters.tuned.en-US.txt'),
    }, TARGET_CONNECTIONS);
    expect(facts.findings.filter((f) => f.severity !== 'ok')).toEqual([]);
    expect(finding(facts, 'windows.TcpTimedWaitDelay').value).toBe('30 (0x1e)');
    expect(finding(facts, 'windows.MaxUserPort').value).toBe('65534 (0xfffe)');
    expect(facts.timeWaitSeconds).toBe(30);
  });

  it('warns about a long TIME_WAIT and a low connection cap set in the registry', () => {
    const facts = windowsFacts({
      ipv4DynamicPorts: fixture('netsh-ipv4-dynamicport-tcp.de-DE.txt'),
      ipv6DynamicPorts: fixture('netsh-ipv4-dynamicport-tcp.fr-FR.cp850.txt'),
      tcpipParameters: fixture('reg-query-tcpip-parameters.limiting.en-US.txt'),
    }, TARGET_CONNECTIONS);
    expect(finding(facts, 'windows.TcpTimedWaitDelay')).toMatchObject({ severity: 'warn', value: '240 (0xf0)' });
    const cap = finding(facts, 'windows.TcpNumConnections');
    expect(cap).toMatchObject({ severity: 'warn', value: '20000 (0x4e20)' });
    expect(cap.fix[0].command).toBe('reg add "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters" /v TcpNumConnections /t REG_DWORD /d 16777214 /f');
    expect(finding(facts, 'windows.dynamicport.ipv6').fix[0].command).toBe('netsh int ipv6 set dynamicport tcp start=1025 num=64511');
    expect(facts.perProcess.connections).toBe(20000);
    expect(facts.timeWaitSeconds).toBe(240);
  });

  it('uses what works under Wine: no port range from netsh, defaults from the registry', () => {
    const facts = windowsFacts({
      ipv4DynamicPorts: fixture('netsh-ipv4-dynamicport-tcp.wine.txt'),
      ipv6DynamicPorts: fixture('netsh-ipv4-dynamicport-tcp.wine.txt'),
      tcpipParameters: fixture('reg-query-tcpip-parameters.wine.txt'),
    }, TARGET_CONNECTIONS);
    expect(facts.ephemeralPorts).toEqual({ ipv4: null, ipv6: null });
    expect(facts.errors).toEqual([
      'IPv4 dynamic port range: unrecognised netsh output: ""',
      'IPv6 dynamic port range: unrecognised netsh output: ""',
    ]);
    expect(facts.findings.map((f) => f.id)).toEqual(['windows.MaxUserPort', 'windows.TcpTimedWaitDelay', 'windows.TcpNumConnections', 'windows.MaxFreeTcbs']);
    expect(facts.timeWaitSeconds).toBe(DEFAULT_TIME_WAIT_SECONDS);
  });

  it('still gives a well-formed result when the commands fail or print something else', () => {
    const facts = windowsFacts({
      ipv4DynamicPorts: fixture('netsh-command-not-found.en-US.txt'),
      ipv6DynamicPorts: new Error('netsh interface ipv6 show dynamicport tcp: spawn netsh ENOENT'),
      tcpipParameters: new Error('reg query: ERROR: The system was unable to find the specified registry key or value.'),
    }, TARGET_CONNECTIONS);
    expect(facts.ephemeralPorts).toEqual({ ipv4: null, ipv6: null });
    expect(facts.findings).toEqual([]);
    expect(facts.perProcess).toEqual({ connections: null, limitedBy: 'unknown' });
    expect(facts.timeWaitSeconds).toBeNull();
    expect(facts.errors).toHaveLength(3);
    expect(facts.errors[0]).toMatch(/^IPv4 dynamic port range: unrecognised netsh output: "The following command was not found/);
    expect(facts.errors[1]).toMatch(/ENOENT/);
    expect(facts.errors[2]).toMatch(/^TCP\/IP registry values: /);
  });
});

// The real netsh / reg calls exist only on Windows (or under Wine running the Windows build of Node).
describe.runIf(process.platform === 'win32')('doctor() on Windows', () => {
  it('runs netsh and reg query and returns a well-formed report', async () => {
    const report = await doctor();
    expect(report.platform).toBe('win32');
    expect(Object.keys(report.settings)).toEqual([
      'netsh int ipv4 show dynamicport tcp',
      'netsh int ipv6 show dynamicport tcp',
      'MaxUserPort',
      'TcpTimedWaitDelay',
      'TcpNumConnections',
      'MaxFreeTcbs',
    ]);
    // Each probe either produced its data or says why not (Wine's netsh lacks dynamicport).
    if (report.ephemeralPorts.ipv4 === null) expect(report.errors.join('\n')).toMatch(/IPv4 dynamic port range/);
    else expect(report.ephemeralPorts.ipv4.count).toBeGreaterThan(0);
    expect(report.capacity.toOneDestination).toHaveLength(4);
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });
});
