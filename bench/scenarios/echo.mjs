// echo: 1,000 connections, 64-byte messages, pipeline depth 1 and 16 (messages outstanding per
// connection). The C load generator counts echoes over 5 s after 1 s of warm-up and times every
// message (send of its last byte to arrival of its echo's last byte). Server CPU per message =
// busy time of CPU 1 inside the measurement window / messages echoed in it.
import { startServer, startLoadgen } from '../lib/ctx.mjs';
import { cpuTimes, cpuBusy } from '../lib/system.mjs';

export default {
  name: 'echo',
  title: 'Echo: 1,000 connections, 64-byte messages',
  cases: (o) => [1, 16].map((pl) => ({ case: `p${pl}`, impls: ['c', 'myriad', 'myriad-net', 'node'], params: { n: 1000, pipeline: pl, size: 64, secs: o.quick ? 1 : 5 } })),
  async measure(_case, impl, p) {
    await startServer(impl, 'echo');
    let k0;
    const lg = startLoadgen(['-n', String(p.n), '-s', '127.0.0.2', '-m', 'echo', '-P', String(p.pipeline), '-S', String(p.size), '-T', String(p.secs),
      '--warmup', '1', '--timeout', '40'], { onLine: (line) => { if (line.startsWith('window:')) k0 = cpuTimes(); } });
    const l = await lg.event('loadgen', 60_000);
    const k1 = cpuTimes();
    if (!k0 || !l.msgs) throw new Error(`echo did not run: ${JSON.stringify(l)}`);
    const cpu = cpuBusy(k0, k1);
    return { msgs_per_s: l.msgs_per_s, server_us_per_msg: (cpu.busy_s * 1e6) / l.msgs, lat_p50_us: l.lat_p50_us, lat_p99_us: l.lat_p99_us, core1_pct: cpu.pct, failed: l.failed };
  },
  metrics: [
    { case: 'p1', key: 'server_us_per_msg', label: 'pipeline 1: server CPU per message', unit: 'us', better: 'lower', chart: true, chartTitle: 'echo, pipeline 1: server CPU per message (us)' },
    { case: 'p1', key: 'msgs_per_s', label: 'pipeline 1: messages per second', unit: '/s', better: 'higher' },
    { case: 'p1', key: 'lat_p50_us', label: 'pipeline 1: latency p50', unit: 'us', better: 'lower' },
    { case: 'p1', key: 'lat_p99_us', label: 'pipeline 1: latency p99', unit: 'us', better: 'lower' },
    { case: 'p16', key: 'server_us_per_msg', label: 'pipeline 16: server CPU per message', unit: 'us', better: 'lower', chart: true, chartTitle: 'echo, pipeline 16: server CPU per message (us)' },
    { case: 'p16', key: 'msgs_per_s', label: 'pipeline 16: messages per second', unit: '/s', better: 'higher' },
    { case: 'p16', key: 'lat_p50_us', label: 'pipeline 16: latency p50', unit: 'us', better: 'lower' },
    { case: 'p16', key: 'lat_p99_us', label: 'pipeline 16: latency p99', unit: 'us', better: 'lower' },
  ],
};
