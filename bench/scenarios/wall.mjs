// wall: how many connections reach ONE endpoint (127.0.0.1:9000, 5 C servers with SO_REUSEPORT).
// myriad: 65,000 attempts from 4 processes, its Dialer spreading over 5 127.0.0.x sources (native:
// IP_BIND_ADDRESS_NO_PORT, a port per 4-tuple; on node:net an explicit source address reserves a
// port per source at bind()). Idiomatic node:net connects from the default source address and
// stops at the ephemeral port range with EADDRNOTAVAIL: 2 processes x 16,250 attempts, past the
// wall but not far (every attempt past it scans the whole port range in connect() before failing,
// so 65,000 would take minutes and prove nothing more).
import { startReusePortServers, SRC5 } from '../lib/ctx.mjs';
import { dialTogether } from './connect.mjs';

export default {
  name: 'wall',
  title: 'The port-range wall: 65,000 connections to one endpoint',
  // Slow by nature, so fewer rounds: node:net takes ~45 s to reach the wall (connect()'s port search
  // slows down past half the range), myriad on node:net ~2 min (bind() to a source with port 0
  // searches that source's whole port space, per connection).
  cases: (o) => [{ case: '65k', impls: ['myriad', 'myriad-net', 'node'], maxRounds: { node: 2, 'myriad-net': 1 },
    params: { total: o.connections ?? 65_000, procs: 4, servers: 5, nodeProcs: 2 } }],
  async measure(_case, impl, p) {
    await startReusePortServers(p.servers);
    const portRange = (await import('node:fs')).readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    const procs = impl === 'node' ? p.nodeProcs : p.procs;
    const r = await dialTogether(impl, procs, Math.ceil(p.total / p.procs), impl === 'node' ? undefined : SRC5, 200_000);
    return { total: procs * Math.ceil(p.total / p.procs), port_range: portRange[1] - portRange[0] + 1, ...r };
  },
  metrics: [
    { key: 'established', label: 'connections established to one endpoint', unit: '', better: 'higher', chart: true, chartTitle: 'connections to ONE endpoint (myriad: 65,000 tried; node:net: 32,500)' },
    { key: 'time_s', label: 'time until every attempt settled', unit: 's', better: 'lower' },
  ],
};
