// churn: open/close cycles. The C load generator keeps 256 connections cycling (connect, FIN,
// wait for the server's FIN, close) over 8 source addresses for 3 s; each server answers FIN with
// FIN. Server CPU per cycle = busy time of CPU 1 over the run / completed cycles.
import { startServer, runLoadgen, SRC8 } from '../lib/ctx.mjs';
import { cpuTimes, cpuBusy } from '../lib/system.mjs';

export default {
  name: 'churn',
  title: 'Churn: open+close cycles, 256 concurrent',
  cases: (o) => [{ case: 'cycles', impls: ['c', 'myriad', 'myriad-net', 'node'], params: { concurrency: 256, secs: o.quick ? 1 : 3 } }],
  async measure(_case, impl, p) {
    await startServer(impl, 'churn');
    const k0 = cpuTimes();
    const l = await runLoadgen(['-m', 'churn', '-c', String(p.concurrency), '-i', String(p.concurrency), '-T', String(p.secs), '-s', SRC8, '--timeout', '30']);
    const cpu = cpuBusy(k0, cpuTimes());
    return { conns_per_s: l.conns_per_s, completed: l.completed, failed: l.failed, server_us_per_op: l.completed ? (cpu.busy_s * 1e6) / l.completed : null, core1_pct: cpu.pct };
  },
  metrics: [
    { key: 'server_us_per_op', label: 'server CPU per open+close cycle', unit: 'us', better: 'lower', chart: true, chartTitle: 'churn: server CPU per open+close (us)' },
    { key: 'conns_per_s', label: 'cycles per second', unit: '/s', better: 'higher' },
  ],
};
