// connect: connectMany() opens 60,000 connections to ONE endpoint (127.0.0.1:9000, served by 5 C
// servers sharing it with SO_REUSEPORT) from 4 dialer processes over 5 source addresses
// (127.0.0.1-5: 12,000 per source, below the even-port half of the port range where Linux's
// connect() slows down). The processes start together; the time is the slowest one's, from its
// start signal to its last connection established. The C load generator (same split) is the limit.
// Every process of this scenario runs on every CPU (ALL_CPUS), as in the anchors' run
// (shared/anchors/run.sh portwall: no pinning).
// (myriad on node:net is in the wall scenario only: node:net binds an explicit source address with
// port 0 before connect(), and the kernel's search for a free port on that source costs ~2 ms per
// connection at 12,000 per source: 60,000 take about two minutes.)
import { startReusePortServers, startDialer, SRC5, ALL_CPUS } from '../lib/ctx.mjs';

// The dialers run with the library's default reactor threads (one per CPU), as a user's program
// does: with one reactor each, 4 processes x (JS thread + reactor) leave the CPUs idle more often
// (measured: ~1.75 s instead of ~1.45 s for 60,000 in an unsynchronized run; same CPU time in all).
export async function dialTogether(impl, procs, perProc, sources, timeoutMs = 120_000, threads = 'default') {
  const dialers = [];
  for (let i = 0; i < procs; i++) dialers.push(startDialer(impl, { n: perProc, sources, waitGo: impl !== 'c', timeoutS: timeoutMs / 1000 + 30, cpu: ALL_CPUS, threads }));
  if (impl !== 'c') {
    await Promise.all(dialers.map((d) => d.event('ready', 30_000)));
    for (const d of dialers) d.send('go');
  }
  const done = await Promise.all(dialers.map((d) => d.event(impl === 'c' ? 'loadgen' : 'done', timeoutMs)));
  const established = done.reduce((n, d) => n + d.established, 0);
  const failed = done.reduce((n, d) => n + d.failed, 0);
  const time_s = Math.max(...done.map((d) => d.time_to_all_established_s ?? d.time_s));
  // Wall time across the processes, from the first one's start to the last one's last connection
  // (CLOCK_MONOTONIC stamps from each): the C load generators start one after another as they are
  // spawned, the dialers together on "go", so only this figure compares the two like for like.
  const stamped = done.every((d) => d.start_mono_s > 0 && d.end_mono_s > 0);
  const wall_s = stamped ? Math.max(...done.map((d) => d.end_mono_s)) - Math.min(...done.map((d) => d.start_mono_s)) : null;
  // CPU time of the dialer processes (user + system, every thread) until their last connection.
  const cpu = done.every((d) => d.cpu_user_s !== undefined) ? done.reduce((t, d) => t + d.cpu_user_s + d.cpu_sys_s, 0) : null;
  const user = done.every((d) => d.cpu_user_s !== undefined) ? done.reduce((t, d) => t + d.cpu_user_s, 0) : null;
  const errors = {};
  for (const d of done) {
    if (d.errors) for (const [k, v] of Object.entries(d.errors)) errors[k] = (errors[k] ?? 0) + v;
    else if (d.first_error) errors[d.first_error] = (errors[d.first_error] ?? 0) + d.failed;
  }
  return { established, failed, time_s, wall_s: wall_s === null ? null : +wall_s.toFixed(4), conns_per_s: Math.round(established / time_s),
    dialer_cpu_us_per_conn: cpu === null || !established ? null : +(cpu * 1e6 / established).toFixed(2),
    dialer_user_us_per_conn: user === null || !established ? null : +(user * 1e6 / established).toFixed(2), errors, first_error: done.find((d) => d.first_error)?.first_error ?? null };
}

export default {
  name: 'connect',
  title: 'connectMany: 60,000 connections to one endpoint over 5 sources',
  cases: (o) => [{ case: '60k', impls: ['c', 'myriad'], params: { total: o.connections ?? 60_000, procs: 4, servers: 5 } }],
  async measure(_case, impl, p) {
    await startReusePortServers(p.servers);
    return { total: p.total, ...(await dialTogether(impl, p.procs, Math.ceil(p.total / p.procs), SRC5)) };
  },
  metrics: [
    { key: 'wall_s', label: 'time to open all (first start to last connection, all processes)', unit: 's', better: 'lower', chart: true, chartTitle: 'connectMany 60,000 over 5 sources: time (s)' },
    { key: 'time_s', label: 'time to open all (slowest process, its own clock)', unit: 's', better: 'lower' },
    { key: 'dialer_cpu_us_per_conn', label: 'dialer CPU per connection (user + system)', unit: 'us', better: 'lower' },
    { key: 'dialer_user_us_per_conn', label: 'dialer user-space CPU per connection', unit: 'us', better: 'lower' },
    { key: 'conns_per_s', label: 'connections per second', unit: '/s', better: 'higher' },
    { key: 'established', label: 'established', unit: '', better: 'higher' },
  ],
};
