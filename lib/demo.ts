// `npm start`: the headline demo. More connections to ONE endpoint than the ephemeral port range
// allows: server processes share 127.0.0.1:<port> (reusePort), dialer processes spread over
// several 127.0.0.x source addresses. Needs no set-up; ends by itself and cleans up.
import { ScaleRun, ephemeralPortRange } from './scale/orchestrator';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const [lo, hi] = ephemeralPortRange();
  const wall = hi - lo + 1;
  const arg = process.argv.find((a) => a.startsWith('--connections='));
  const connections = arg ? Number(arg.split('=')[1]) : wall + 12_000;
  if (!Number.isInteger(connections) || connections < 1) {
    console.error('usage: npm start -- --connections=N');
    process.exit(2);
  }
  console.log(`myriad demo: ${fmt(connections)} connections to ONE endpoint.`);
  console.log(`One source address reaches one endpoint through at most ${fmt(wall)} ports (ip_local_port_range ${lo}-${hi});`);
  console.log('node:net from the default source stops there with EADDRNOTAVAIL. myriad spreads over several source addresses.\n');

  const run = new ScaleRun({
    connections,
    onProgress(p) {
      const rate = p.elapsedMs > 0 ? (p.established / p.elapsedMs) * 1000 : 0;
      const line = `  established ${fmt(p.established).padStart(9)} / ${fmt(p.target)}   ${fmt(rate).padStart(7)}/s   failed ${fmt(p.failed)}`;
      if (process.stdout.isTTY) process.stdout.write(`\r${line}`);
    },
  });
  try {
    const r = await run.run();
    if (process.stdout.isTTY) process.stdout.write('\n');
    console.log(`\n  ${fmt(r.established)} connections held to 127.0.0.1:${r.port}` +
      ` (${r.established > wall ? `${fmt(r.established - wall)} past` : 'within'} one source's port range)`);
    console.log(`  processes: ${r.servers} servers sharing the endpoint (reusePort), ${r.dialers} dialers over ${r.sources.length} sources (${r.sources.join(', ')})`);
    console.log(`  set-up: ${(r.setupMs / 1000).toFixed(2)} s, ${fmt(r.connectionsPerSecond)} connections/s`);
    console.log(`  process memory per connection: ${fmt(r.serverBytesPerConnection)} B server side, ${fmt(r.dialerBytesPerConnection)} B dialer side`);
    if (r.kernelBytesPerPair !== undefined) console.log(`  kernel memory (slab) per connection pair: ${fmt(r.kernelBytesPerPair)} B`);
    if (r.failed > 0) console.log(`  failed: ${fmt(r.failed)}${r.firstError ? ` (first: ${r.firstError.code ?? ''} ${r.firstError.message})` : ''}`);
    console.log('\n  Scale further: `npx myriad doctor` tells what limits this machine has and how to lift them.');
    process.exitCode = r.established === connections ? 0 : 1;
  } finally {
    run.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
