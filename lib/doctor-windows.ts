// Windows probes for `myriad doctor`: the TCP dynamic (ephemeral) port ranges from
// `netsh interface ipv4|ipv6 show dynamicport tcp` and the TCP/IP registry values from
// `reg query HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`.
//
// The parsers are pure and locale-independent, so they are tested everywhere against recorded
// outputs (test/fixtures/windows): netsh translates its labels ("Start Port", "Startport",
// "Port de démarrage"...) and prints them in the console's OEM code page, but always prints the
// start port first and the number of ports second, each after a colon; `reg query` prints
// `    Name    REG_TYPE    data` lines in every language.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import type { Finding, Fix, PlatformFacts, PortRange } from './doctor';

export const TCPIP_PARAMETERS_KEY = 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters';

/** The registry values doctor reports; the report's `settings` has one entry per name (null = absent). */
export const TCPIP_REGISTRY_VALUES = ['MaxUserPort', 'TcpTimedWaitDelay', 'TcpNumConnections', 'MaxFreeTcbs'] as const;

/** TIME_WAIT length when TcpTimedWaitDelay is absent, since Windows Server 2003 (0x78). */
export const DEFAULT_TIME_WAIT_SECONDS = 120;
/** TcpNumConnections when absent: 0xFFFFFE, also its maximum. */
export const DEFAULT_TCP_NUM_CONNECTIONS = 0xfffffe;
/** What `netsh int ipv4 set dynamicport tcp start=1025 num=64511` gives: every port above 1024. */
const RECOMMENDED_DYNAMIC_RANGE = { start: 1025, num: 64511 };
const MIN_PORT_COUNT = 60_000;
const RECOMMENDED_TIME_WAIT_SECONDS = 30;

/**
 * Parses `netsh interface ipv4|ipv6 show dynamicport tcp` output in any display language:
 * the first two `label : number` lines are the start port and the number of ports.
 */
export function parseNetshDynamicPort(text: string): PortRange | null {
  const numbers: number[] = [];
  for (const line of text.split(/\r?\n/)) {
    const match = /[:\uff1a]\s*(\d+)\s*$/.exec(line);
    if (match) numbers.push(Number(match[1]));
  }
  if (numbers.length < 2) return null;
  const [first, count] = numbers;
  if (first < 1 || count < 1 || first + count - 1 > 65535) return null;
  return { first, last: first + count - 1, count };
}

export interface RegistryValue {
  type: string;
  data: string;
}

/**
 * Parses `reg query <key>` output: the values directly under the queried key, by name.
 * Subkeys (`HKEY_LOCAL_MACHINE\...\Parameters\Interfaces`) and their values are ignored.
 */
export function parseRegQuery(text: string): Record<string, RegistryValue> {
  const values: Record<string, RegistryValue> = {};
  let keysSeen = 0;
  for (const line of text.split(/\r?\n/)) {
    if (/^HKEY_/i.test(line)) {
      keysSeen++;
      continue;
    }
    if (keysSeen !== 1) continue;
    // Fields are separated by four spaces; names may contain single spaces ("NV Hostname").
    const match = /^ {4}(.+?) {4}(REG_[A-Z_]+)(?: {4}(.*))?$/.exec(line);
    if (match) values[match[1]] = { type: match[2], data: (match[3] ?? '').trimEnd() };
  }
  return values;
}

/** A REG_DWORD's number (`reg query` prints it as `0x1e`); null when absent or of another type. */
export function registryDword(values: Record<string, RegistryValue>, name: string): number | null {
  const value = values[name];
  if (!value || value.type !== 'REG_DWORD') return null;
  const number = Number.parseInt(value.data, 16);
  return Number.isNaN(number) ? null : number;
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    // latin1 keeps every byte: the digits and colons we parse are ASCII in all OEM code pages.
    execFile(command, args, { encoding: 'latin1', windowsHide: true, timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')}: ${(stderr || error.message).trim()}`));
      else resolve(stdout);
    });
  });
}

function regAddFix(name: string, value: number): Fix {
  return {
    description: 'as Administrator; TCP/IP reads it at boot, so restart Windows',
    command: `reg add "${TCPIP_PARAMETERS_KEY}" /v ${name} /t REG_DWORD /d ${value} /f`,
  };
}

function dynamicPortFinding(family: 'ipv4' | 'ipv6', range: PortRange): Finding {
  const severity = range.count < MIN_PORT_COUNT ? 'warn' : 'ok';
  const { start, num } = RECOMMENDED_DYNAMIC_RANGE;
  return {
    id: `windows.dynamicport.${family}`,
    severity,
    title: `TCP dynamic port range over ${family === 'ipv4' ? 'IPv4' : 'IPv6'} (netsh int ${family} show dynamicport tcp)`,
    value: `${range.first}-${range.last} (${range.count.toLocaleString('en-US')} ports)`,
    why:
      'Each outbound connection to the same destination address and port needs its own source port from this range ' +
      '(per source address). The default 49152-65535 gives 16,384; ports below 1025 stay reserved.',
    fix: severity === 'ok' ? [] : [{
      description: 'as Administrator; applies to new connections at once, no restart',
      command: `netsh int ${family} set dynamicport tcp start=${start} num=${num}`,
    }],
  };
}

/** What the three commands printed, or why they could not run. */
export interface WindowsProbeOutputs {
  ipv4DynamicPorts: string | Error;
  ipv6DynamicPorts: string | Error;
  tcpipParameters: string | Error;
}

/** Runs netsh and reg query (in parallel) and builds the facts from their output. */
export async function probeWindows(targetConnections: number): Promise<PlatformFacts> {
  const capture = (promise: Promise<string>) => promise.catch((error: Error) => error);
  const [ipv4DynamicPorts, ipv6DynamicPorts, tcpipParameters] = await Promise.all([
    capture(run('netsh', ['interface', 'ipv4', 'show', 'dynamicport', 'tcp'])),
    capture(run('netsh', ['interface', 'ipv6', 'show', 'dynamicport', 'tcp'])),
    capture(run('reg', ['query', TCPIP_PARAMETERS_KEY])),
  ]);
  return windowsFacts({ ipv4DynamicPorts, ipv6DynamicPorts, tcpipParameters }, targetConnections);
}

/**
 * The report's Windows part from recorded command output (pure, so it is tested on any OS).
 * `targetConnections`: the scale the recommendations aim at (doctor's TARGET_CONNECTIONS).
 */
export function windowsFacts(outputs: WindowsProbeOutputs, targetConnections: number): PlatformFacts {
  const errors: string[] = [];
  const parsePorts = (what: string, output: string | Error) => {
    if (output instanceof Error) {
      errors.push(`${what}: ${output.message}`);
      return null;
    }
    const range = parseNetshDynamicPort(output);
    if (!range) errors.push(`${what}: unrecognised netsh output: ${JSON.stringify(output.trim().slice(0, 200))}`);
    return range;
  };
  const ipv4 = parsePorts('IPv4 dynamic port range', outputs.ipv4DynamicPorts);
  const ipv6 = parsePorts('IPv6 dynamic port range', outputs.ipv6DynamicPorts);
  let registry: Record<string, RegistryValue> | null = null;
  if (outputs.tcpipParameters instanceof Error) errors.push(`TCP/IP registry values: ${outputs.tcpipParameters.message}`);
  else registry = parseRegQuery(outputs.tcpipParameters);
  const dword = (name: string) => (registry ? registryDword(registry, name) : null);

  const settings: Record<string, string | number | null> = {
    'netsh int ipv4 show dynamicport tcp': ipv4 ? `start=${ipv4.first} num=${ipv4.count}` : null,
    'netsh int ipv6 show dynamicport tcp': ipv6 ? `start=${ipv6.first} num=${ipv6.count}` : null,
  };
  for (const name of TCPIP_REGISTRY_VALUES) settings[name] = dword(name);

  const findings: Finding[] = [];
  if (ipv4) findings.push(dynamicPortFinding('ipv4', ipv4));
  if (ipv6) findings.push(dynamicPortFinding('ipv6', ipv6));
  if (registry) findings.push(...registryFindings(dword, targetConnections));

  const timeWait = dword('TcpTimedWaitDelay') ?? DEFAULT_TIME_WAIT_SECONDS;
  const numConnections = dword('TcpNumConnections') ?? DEFAULT_TCP_NUM_CONNECTIONS;
  return {
    settings,
    // Windows has no per-process descriptor limit for sockets; the CRT's file limit does not apply.
    openFiles: null,
    ephemeralPorts: { ipv4, ipv6 },
    timeWaitSeconds: registry ? timeWait : null,
    perProcess: registry
      ? { connections: numConnections, limitedBy: 'TcpNumConnections (all processes together; no per-process socket limit on Windows)' }
      : { connections: null, limitedBy: 'unknown' },
    findings,
    errors,
  };
}

function registryFindings(dword: (name: string) => number | null, targetConnections: number): Finding[] {
  const release = os.release();
  const shown = (name: string, defaultText: string) => {
    const value = dword(name);
    return value === null ? `absent (${defaultText})` : `${value} (0x${value.toString(16)})`;
  };
  const timeWait = dword('TcpTimedWaitDelay') ?? DEFAULT_TIME_WAIT_SECONDS;
  const timeWaitSeverity = timeWait > DEFAULT_TIME_WAIT_SECONDS ? 'warn' : timeWait > RECOMMENDED_TIME_WAIT_SECONDS ? 'info' : 'ok';
  const numConnections = dword('TcpNumConnections') ?? DEFAULT_TCP_NUM_CONNECTIONS;
  const numConnectionsSeverity = numConnections < targetConnections ? 'warn' : 'ok';
  return [
    {
      id: 'windows.MaxUserPort',
      severity: 'ok',
      title: 'MaxUserPort (registry)',
      value: shown('MaxUserPort', 'default: the netsh dynamic port range applies'),
      why:
        'Highest ephemeral port on Windows Server 2003 and earlier (default 5000 there). Since Windows Vista / Server 2008 ' +
        `the dynamic port range shown by netsh is what applies (this is Windows ${release}); change that instead.`,
      fix: [],
    },
    {
      id: 'windows.TcpTimedWaitDelay',
      severity: timeWaitSeverity,
      title: 'TcpTimedWaitDelay (registry, seconds in TIME_WAIT)',
      value: shown('TcpTimedWaitDelay', `default ${DEFAULT_TIME_WAIT_SECONDS} s on current Windows`),
      why:
        'A connection this side closes keeps its (source, destination) pair in TIME_WAIT this long; a client that opens and ' +
        'closes connections to one server can sustain only ports / TcpTimedWaitDelay new connections per second. Range 30-300.',
      fix: timeWaitSeverity === 'ok' ? [] : [regAddFix('TcpTimedWaitDelay', RECOMMENDED_TIME_WAIT_SECONDS)],
    },
    {
      id: 'windows.TcpNumConnections',
      severity: numConnectionsSeverity,
      title: 'TcpNumConnections (registry, TCP connections system-wide)',
      value: shown('TcpNumConnections', `default ${DEFAULT_TCP_NUM_CONNECTIONS.toLocaleString('en-US')}, the maximum`),
      why: 'The most TCP connections the whole system may have open at once.',
      fix: numConnectionsSeverity === 'ok' ? [] : [regAddFix('TcpNumConnections', DEFAULT_TCP_NUM_CONNECTIONS)],
    },
    {
      id: 'windows.MaxFreeTcbs',
      severity: 'ok',
      title: 'MaxFreeTcbs (registry)',
      value: shown('MaxFreeTcbs', 'default: TCP control blocks are allocated on demand'),
      why:
        'Pre-allocated TCP control blocks on Windows Server 2003 and earlier (default there depends on RAM). ' +
        'The TCP/IP stack of Windows Vista / Server 2008 and later allocates them as needed.',
      fix: [],
    },
  ];
}
