// accept: a connect storm of 18,000 from the C load generator (4 source addresses, 1,000
// connecting at once) against each server at default settings (somaxconn as the host has it).
// Server CPU per accepted connection = busy time of the server's CPU (1; the load generator runs on
// CPU 0) from the storm's start until the server has accepted all, divided by the count. Listen
// overflows (dropped SYNs, each costing its client a 1 s retransmit) from this namespace's TcpExt.
import { startServer, warmUpAndBaseline, startLoadgen, SRC4 } from '../lib/ctx.mjs';
import { cpuTimes, cpuBusy, tcpExt, diffCounters } from '../lib/system.mjs';

export default {
  name: 'accept',
  title: 'Accept storm: 18,000 connections, default somaxconn',
  cases: (o) => [{ case: 'storm', impls: ['c', 'myriad', 'myriad-net', 'node'], params: { n: o.connections ?? 18_000, warm: 1000 } }],
  async measure(_case, impl, p) {
    let kReached;
    const server = await startServer(impl, 'hold', { n: p.n, waitBaseline: impl !== 'c',
      onLine: (_l, j) => { if (j?.event === 'reached') kReached = cpuTimes(); } });
    if (impl !== 'c') await warmUpAndBaseline(server, p.warm);
    const c0 = tcpExt();
    const k0 = cpuTimes();
    const lg = startLoadgen(['-m', 'connect', '-n', String(p.n), '-s', SRC4, '-i', '1000', '--hold-seconds', '100']);
    const l = await lg.event('loadgen', 90_000);
    const reached = await server.event('reached', 60_000);
    const kernel = diffCounters(c0, tcpExt());
    const cpu = cpuBusy(k0, kReached ?? cpuTimes());
    return {
      n: p.n, lg_conns_per_s: l.conns_per_s, accepts_per_s: reached.accepts_per_s, listen_overflows: kernel.ListenOverflows ?? 0,
      server_us_per_accept: (cpu.busy_s * 1e6) / p.n, core1_pct: cpu.pct, kernel,
    };
  },
  metrics: [
    { key: 'server_us_per_accept', label: 'server CPU per accepted connection', unit: 'us', better: 'lower', chart: true, chartTitle: 'accept storm: server CPU per accept (us)' },
    { key: 'accepts_per_s', label: 'server accept rate', unit: '/s', better: 'higher' },
    { key: 'lg_conns_per_s', label: 'connect rate seen by the load generator', unit: '/s', better: 'higher' },
    { key: 'listen_overflows', label: 'listen overflows (dropped SYNs)', unit: '', better: 'lower' },
  ],
};
