// broadcast: one 64-byte message to 18,000 connections whose clients are the C load generator
// (another process, 4 source addresses). 3 rounds, 1 s apart; per round, the time from the
// round's first byte arriving anywhere until every connection has it (measured by the load
// generator), and the time the server's JS thread spent inside the broadcast call / send loop.
import { startServer, startLoadgen, SRC4 } from '../lib/ctx.mjs';
import { median } from '../lib/stats.mjs';

export default {
  name: 'broadcast',
  title: 'Broadcast 64 B to 18,000 connections',
  cases: (o) => [{ case: 'fanout', impls: ['c', 'myriad', 'myriad-net', 'node'], params: { n: o.connections ?? 18_000, rounds: 3, pauseMs: 1000 } }],
  async measure(_case, impl, p) {
    const server = await startServer(impl, 'broadcast', { n: p.n, rounds: p.rounds, pauseMs: p.pauseMs });
    const lg = startLoadgen(['-n', String(p.n), '-s', SRC4, '-i', '1000', '-m', 'recv', '-b', '64', '-R', String(p.rounds), '--timeout', '60'], { timeoutS: 90 });
    const l = await lg.event('loadgen', 80_000);
    const rounds = server.json.filter((j) => j.event === 'broadcast');
    if (l.failed || l.rounds_ms.some((x) => x < 0)) throw new Error(`broadcast incomplete: ${JSON.stringify(l)}`);
    return { all_have_ms: median(l.rounds_ms), rounds_ms: l.rounds_ms, send_loop_ms: median(rounds.map((r) => r.send_loop_ms)), sent: rounds[0]?.sent };
  },
  metrics: [
    { key: 'all_have_ms', label: 'until all 18,000 have the message', unit: 'ms', better: 'lower', chart: true, chartTitle: 'broadcast 64 B: until every client has it (ms)' },
    { key: 'send_loop_ms', label: 'JS thread inside broadcast / send loop', unit: 'ms', better: 'lower' },
  ],
};
