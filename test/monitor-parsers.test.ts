// The monitor's parsers and arithmetic: /proc/net tables, Windows `netstat -s` and `typeperf`
// output (recorded English and German outputs in test/fixtures/windows), intervals, rates.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  flattenNumbers,
  parseInterval,
  parseNetstatTcp,
  parseProcNetPairs,
  parseTypeperfLine,
  systemRates,
  type SystemSample,
  type SystemValues,
} from '../lib/monitor';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/windows/${name}`, import.meta.url), 'latin1');

describe('/proc/net/snmp and /proc/net/netstat', () => {
  it('pairs each header line with its value line', () => {
    const snmp = [
      'Ip: Forwarding DefaultTTL InReceives',
      'Ip: 1 64 4111',
      'Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs',
      'Tcp: 1 200 120000 -1 37 2 5 1 12 4053',
      'Udp: InDatagrams NoPorts',
      'Udp: 10 0',
    ].join('\n');
    expect(parseProcNetPairs(snmp, 'Tcp')).toEqual({
      RtoAlgorithm: 1, RtoMin: 200, RtoMax: 120000, MaxConn: -1, ActiveOpens: 37, PassiveOpens: 2,
      AttemptFails: 5, EstabResets: 1, CurrEstab: 12, InSegs: 4053,
    });
    const netstat = 'TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 17 19\nIpExt: InNoRoutes\nIpExt: 0\n';
    expect(parseProcNetPairs(netstat, 'TcpExt')).toEqual({ SyncookiesSent: 0, ListenOverflows: 17, ListenDrops: 19 });
    expect(parseProcNetPairs(netstat, 'Tcp')).toEqual({});
  });
});

describe('Windows netstat -s', () => {
  const expected = {
    ipv4: { activeOpens: 46188, passiveOpens: 120931, failedConnectionAttempts: 2173, resetConnections: 8850, currentConnections: 40012, segmentsReceived: 2135509, segmentsSent: 1580270, segmentsRetransmitted: 4125 },
    ipv6: { activeOpens: 310, passiveOpens: 77, failedConnectionAttempts: 9, resetConnections: 14, currentConnections: 21, segmentsReceived: 90876, segmentsSent: 59903, segmentsRetransmitted: 3 },
  };

  it('reads both TCP sections of the English output and skips IP, ICMP and UDP', () => {
    expect(parseNetstatTcp(fixture('netstat-s.en-US.txt'))).toEqual(expected);
  });

  it('reads the German output (TCP-Statistik für IPv4) in code page 850 the same way', () => {
    expect(parseNetstatTcp(fixture('netstat-s.de-DE.cp850.txt'))).toEqual(expected);
  });

  it('reads the output recorded from Wine\'s netstat, which has no IPv6 sections', () => {
    expect(parseNetstatTcp(fixture('netstat-s.wine.txt'))).toEqual({
      ipv4: { activeOpens: 73769, passiveOpens: 73683, failedConnectionAttempts: 41, resetConnections: 6, currentConnections: 0, segmentsReceived: 535461, segmentsSent: 530758, segmentsRetransmitted: 508 },
      ipv6: null,
    });
  });

  it('reports a missing section as null', () => {
    const onlyV4 = fixture('netstat-s.en-US.txt').split('TCP Statistics for IPv6')[0];
    expect(parseNetstatTcp(onlyV4)).toEqual({ ipv4: expected.ipv4, ipv6: null });
    expect(parseNetstatTcp('')).toEqual({ ipv4: null, ipv6: null });
  });
});

describe('typeperf CSV', () => {
  it('reads rates with a decimal point or a decimal comma, and skips the header', () => {
    const en = fixture('typeperf-context-switches.en-US.csv').split(/\r?\n/).map(parseTypeperfLine);
    expect(en.filter((v) => v !== null)).toEqual([15872.331297, 16011.90812]);
    const de = fixture('typeperf-context-switches.de-DE.csv').split(/\r?\n/).map(parseTypeperfLine);
    expect(de.filter((v) => v !== null)).toEqual([15872.331297, 16011.90812]);
    expect(parseTypeperfLine('"(PDH-CSV 4.0)","\\\\HOST\\System\\Context Switches/sec"')).toBeNull();
    expect(parseTypeperfLine('Error: No valid counters.')).toBeNull();
  });
});

describe('parseInterval', () => {
  it('accepts seconds, milliseconds and bare seconds', () => {
    expect(parseInterval('1s')).toBe(1000);
    expect(parseInterval('500ms')).toBe(500);
    expect(parseInterval('2')).toBe(2000);
    expect(parseInterval('0.25s')).toBe(250);
  });

  it('rejects nonsense with ERR_INVALID_ARG_VALUE', () => {
    for (const bad of ['0', '0s', '10ms', '-1s', '1m', 'fast', '', '5000s']) {
      expect(() => parseInterval(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    }
  });
});

describe('rates and stats flattening', () => {
  const values = (overrides: Partial<SystemValues>): SystemValues => ({
    tcpEstablished: 10, tcpTimeWait: 0, memoryAvailableBytes: 1, memoryTotalBytes: 2,
    tcpActiveOpens: 100, tcpPassiveOpens: 50, tcpAttemptFails: 7, tcpEstabResets: 0,
    tcpListenOverflows: 0, tcpListenDrops: 0, contextSwitches: 1000, ...overrides,
  });

  it('divides each counter\'s change by the seconds between samples', () => {
    const previous: SystemSample = { at: 1000, values: values({}), reportedRates: {} };
    const current: SystemSample = { at: 3000, values: values({ tcpActiveOpens: 140, tcpAttemptFails: 13, contextSwitches: null }), reportedRates: {} };
    const rates = systemRates(previous, current);
    expect(rates.tcpActiveOpens).toBe(20);
    expect(rates.tcpAttemptFails).toBe(3);
    expect(rates.tcpPassiveOpens).toBe(0);
    expect(rates.contextSwitches).toBeNull();
    // A rate the OS reports itself (Windows' context switches/sec) is used as it is.
    expect(systemRates(previous, { ...current, reportedRates: { contextSwitches: 4321 } }).contextSwitches).toBe(4321);
  });

  it('flattens every numeric leaf, known or not, under a dotted path', () => {
    expect(flattenNumbers({
      connectionsEstablished: 3,
      label: 'x',
      reactors: [{ eventsHandled: 10, wakeups: 2 }, { eventsHandled: 20 }],
      future: { nested: 1 },
    })).toEqual({
      connectionsEstablished: 3,
      'reactors.0.eventsHandled': 10,
      'reactors.0.wakeups': 2,
      'reactors.1.eventsHandled': 20,
      'future.nested': 1,
    });
  });
});
