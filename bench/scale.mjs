// scale.mjs - `npm run bench -- scale --connections 200000`: that many concurrent connections to
// ONE endpoint on this host (server processes sharing it with reusePort, dialer processes over
// enough 127.0.0.x sources), then a 64-byte broadcast to all of them; per-process and total memory
// (processes' RSS, the kernel's slab and TCP memory), set-up and delivery times.
//   options: --connections N (default 200000)  --per-process N (default: what the fd limit allows,
//            at most 19000)  --rounds R (broadcasts, default 3)  --bytes B (default 64)
//            --backend native|net  --no-netns  --force (run even if the preflight says no)  --out DIR
// Preconditions are checked first with doctor's logic (open files, ports and sources, file-max,
// memory) and each problem says what to change. As root the run happens in a fresh network
// namespace, so every socket (and TIME_WAIT entry) goes away with it; every process is killed on
// exit or Ctrl-C, and the workers exit by themselves if this process dies.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { BENCH, ROOT } from './lib/ctx.mjs';
import { machine } from './lib/system.mjs';

const require = createRequire(import.meta.url);
const fmt = (n) => (n === undefined || n === null || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function parse(argv) {
  const o = { connections: 200_000, perProcess: undefined, rounds: 3, bytes: 64, backend: 'native', netns: true, force: false, out: join(BENCH, 'results') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]);
    if (a.startsWith('--connections')) o.connections = Number(val());
    else if (a.startsWith('--per-process')) o.perProcess = Number(val());
    else if (a.startsWith('--rounds')) o.rounds = Number(val());
    else if (a.startsWith('--bytes')) o.bytes = Number(val());
    else if (a.startsWith('--backend')) o.backend = val();
    else if (a.startsWith('--out')) o.out = val();
    else if (a === '--no-netns') o.netns = false;
    else if (a === '--force') o.force = true;
    else throw new Error(`unknown option ${a} (see bench/scale.mjs)`);
  }
  if (!Number.isInteger(o.connections) || o.connections < 1) throw new Error('--connections must be a positive integer');
  return o;
}

// What to do when the machine gave out before the target, by the error the last attempt got.
const REMEDY = {
  EADDRNOTAVAIL: 'ports ran out for some (source, destination) pairs: more source addresses (--per-process lower, or more 127.0.0.x), or a wider net.ipv4.ip_local_port_range',
  EADDRINUSE: 'ports ran out for some (source, destination) pairs: more source addresses',
  EMFILE: 'a process hit its open-file limit: raise the hard limit (ulimit -Hn) or lower --per-process so more processes share the load',
  ENFILE: 'the system-wide file table is full: sysctl -w fs.file-max=<more>',
  ENOMEM: 'the kernel ran out of memory for sockets: more RAM, or fewer connections',
  ENOBUFS: 'the kernel ran out of socket buffers: more RAM, or check net.ipv4.tcp_mem',
  ETIMEDOUT: 'connects timed out: SYNs were dropped (listen queue overflow?): raise net.core.somaxconn or lower --max-pending',
  ECONNREFUSED: 'a server process went away or its accept queue overflowed: check the server processes (OOM killer?)',
};

export async function runScale(argv) {
  const o = parse(argv);
  if (o.netns && process.getuid?.() === 0 && process.env.MYRIAD_SCALE_NETNS !== '1') {
    // Re-run inside a fresh network namespace: own loopback, own port space, own TIME_WAIT table.
    const child = spawn('unshare', ['-n', '--', process.execPath, join(BENCH, 'run.mjs'), 'scale', ...argv],
      { stdio: 'inherit', env: { ...process.env, MYRIAD_SCALE_NETNS: '1' } });
    const forward = (sig) => () => child.kill(sig);
    process.on('SIGINT', forward('SIGINT'));
    process.on('SIGTERM', forward('SIGTERM'));
    return new Promise((resolve) => child.on('exit', (code, sig) => resolve(code ?? (sig ? 130 : 1))));
  }
  if (process.env.MYRIAD_SCALE_NETNS === '1') execFileSync('ip', ['link', 'set', 'lo', 'up']);
  if (!existsSync(join(ROOT, 'dist', 'scale', 'orchestrator.js'))) {
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  }
  const { scalePreflight } = require(join(ROOT, 'dist', 'scale', 'preflight.js'));
  const { ScaleRun } = require(join(ROOT, 'dist', 'scale', 'orchestrator.js'));

  const m = machine();
  console.log(`myriad scale run: ${fmt(o.connections)} connections to one endpoint, then ${o.rounds} broadcast(s) of ${o.bytes} B to all`);
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Linux ${m.kernel}, node ${m.node}${process.env.MYRIAD_SCALE_NETNS === '1' ? ', fresh network namespace' : ''}`);
  const pre = await scalePreflight(o.connections, { perProcess: o.perProcess });
  console.log('\npreconditions (doctor):');
  for (const c of pre.checks) console.log(`  ${c.ok ? '[ok]  ' : '[FAIL]'} ${c.text}${c.ok ? '' : `\n         change: ${c.fix}`}`);
  const plan = pre.plan;
  console.log(`  plan: ${plan.servers} server processes (reusePort) + ${plan.dialers} dialer processes, up to ${fmt(plan.perProcess)} connections each, ${plan.sources.length} sources`);
  if (!pre.ok && !o.force) {
    console.log('\nnot starting: fix the above (or run with --force to see what the machine gives out first)');
    return 2;
  }

  const run = new ScaleRun({
    connections: o.connections, perProcess: plan.perProcess, sources: plan.sources, backend: o.backend,
    broadcast: o.rounds > 0 ? { bytes: o.bytes, rounds: o.rounds, pauseMs: 500, timeoutMs: 30_000 } : undefined,
    onPhase: (p) => { if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K'); console.log(`  ${p}...`); },
    onProgress: (p) => {
      const line = `  established ${fmt(p.established).padStart(9)} / ${fmt(p.target)}   ${fmt(p.elapsedMs > 0 ? (p.established / p.elapsedMs) * 1000 : 0).padStart(7)}/s   failed ${fmt(p.failed)}`;
      if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${line}`);
    },
  });
  const onSignal = () => { run.cleanup(); process.exit(130); };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const started = new Date();
  let r;
  try {
    r = await run.run();
  } catch (err) {
    run.cleanup();
    console.error(`\nscale run failed: ${err.message}`);
    return 1;
  } finally {
    run.cleanup();
  }
  if (process.stdout.isTTY) process.stdout.write('\n');
  const servers = r.processes.filter((p) => p.role === 'server');
  const dialers = r.processes.filter((p) => p.role === 'dialer');
  const rssSum = (ps) => ps.reduce((n, p) => n + p.rssAfter, 0);
  const tcpMem = r.sockstatAfter?.memBytes ?? 0;
  console.log(`\n  ${fmt(r.established)} of ${fmt(r.target)} connections to 127.0.0.1:${r.port}, up in ${(r.setupMs / 1000).toFixed(2)} s (${fmt(r.connectionsPerSecond)}/s)` +
    `${r.failed ? `; ${fmt(r.failed)} failed` : ''}`);
  console.log(`  processes: ${r.servers} servers, ${r.dialers} dialers over ${r.sources.length} sources (${r.sources[0]}..${r.sources[r.sources.length - 1]})`);
  console.log('\n  role    pid      connections   RSS        growth/conn');
  for (const p of r.processes) {
    console.log(`  ${p.role.padEnd(7)} ${String(p.pid).padEnd(8)} ${fmt(p.connections).padStart(11)}   ${mib(p.rssAfter).padStart(9)}  ${p.connections ? fmt((p.rssAfter - p.rssBefore) / p.connections) : '-'} B`);
  }
  const kernel = (r.kernelSlabBytes ?? 0) + tcpMem;
  console.log(`\n  memory: servers ${mib(rssSum(servers))} + dialers ${mib(rssSum(dialers))} = ${mib(r.processesRss)} process RSS; ` +
    `kernel ${mib(r.kernelSlabBytes ?? 0)} slab growth + ${mib(tcpMem)} TCP buffers (/proc/net/sockstat: ${fmt(r.sockstatAfter?.inuse)} TCP sockets in use) = ${mib(kernel)}`);
  console.log(`  total: ${mib(r.processesRss + kernel)}, ${fmt((r.processesRss + kernel) / Math.max(1, r.established))} B per connection (both ends on this host)`);
  console.log(`  per connection: ${fmt(r.serverBytesPerConnection)} B server process, ${fmt(r.dialerBytesPerConnection)} B dialer process, ${fmt(r.kernelBytesPerPair)} B kernel slab per pair`);
  for (const b of r.broadcasts) {
    console.log(`  broadcast ${b.round}: ${fmt(b.delivered)} of ${fmt(b.sent)} have ${o.bytes} B after ${b.deliveryMs.toFixed(1)} ms; ` +
      `longest broadcast() call ${b.maxCallMs.toFixed(2)} ms${b.complete ? '' : ' (INCOMPLETE)'}`);
  }
  if (r.established < r.target) {
    const code = r.firstError?.code;
    console.log(`\n  the machine gave out at ${fmt(r.established)}: ${code ?? 'unknown'}${r.firstError ? ` (${r.firstError.message})` : ''}`);
    console.log(`  what it would take: ${REMEDY[code] ?? 'see `npx myriad doctor`'}`);
  }
  const report = { tool: 'myriad bench scale', date: started.toISOString(), command: `npm run bench -- scale ${argv.join(' ')}`.trim(), machine: m,
    netns: process.env.MYRIAD_SCALE_NETNS === '1', preflight: { ok: pre.ok, checks: pre.checks, plan }, result: r };
  mkdirSync(o.out, { recursive: true });
  const stamp = started.toISOString().replace(/[:.]/g, '-').slice(0, 19);
  writeFileSync(join(o.out, `scale-${stamp}.json`), JSON.stringify(report, null, 1));
  writeFileSync(join(o.out, 'scale-latest.json'), JSON.stringify(report, null, 1));
  console.log(`\n  figures: ${join(o.out, `scale-${stamp}.json`)}`);
  return r.established === r.target && r.broadcasts.every((b) => b.complete) ? 0 : 1;
}
