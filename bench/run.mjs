#!/usr/bin/env node
// `npm run bench`: myriad against node:net and against the practical limit (a plain C epoll server
// and load generator, bench/c/), on this machine, same run, same load generator.
//
//   npm run bench                          every scenario (about 15 minutes)
//   npm run bench -- echo broadcast        some of them
//   npm run bench -- scale --connections 200000     the many-process scale run (bench/scale.mjs)
//   npm run bench -- hammer --minutes 10             the long hammer (bench/hammer.mjs; issue 7)
//   options: --rounds N (default 3)  --quick (1 round, short runs)  --connections N
//            --impls c,myriad,myriad-net,node  --out DIR (default bench/results)  --no-netns  --list
//            --quiet-wait S (wait at most S s, default 600, for both CPUs to be idle before each measurement)
//            --retries N (default 3: a measurement during which other processes used > 10% of a CPU is
//              repeated; after N retries it is kept and marked noisy)  --resume FILE.jsonl (reuse the
//              clean measurements of an interrupted run)  --from FILE.json (re-render table and chart)
//
// Every measurement runs in its own process inside a fresh network namespace (unshare -n; root)
// with the servers pinned to CPU 1 and the load generator to CPU 0; scenarios run several rounds,
// implementations alternating order, and report median [min..max]. Output: a table here, a JSON
// file with every figure and the machine, a markdown table and an SVG chart (vega-lite).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, writeFileSync, appendFileSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { BENCH, ROOT, BIN, IMPLS } from './lib/ctx.mjs';
import { machine, cpuTimes } from './lib/system.mjs';
import { summarize, tableRows, textTable, markdownTable, bars, renderChart } from './lib/report.mjs';
import { sleep } from './lib/proc.mjs';

export const SCENARIOS = ['idle', 'accept', 'connect', 'churn', 'echo', 'broadcast', 'wall'];

function parseArgs(argv) {
  const o = { quietWait: 600, retries: 3, names: [], rounds: 3, quick: false, netns: true, out: join(BENCH, 'results'), impls: null, connections: undefined, list: false, chart: true, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]; if (v === undefined) usage(`${a} needs a value`); return v; };
    if (a === '--rounds' || a.startsWith('--rounds=')) o.rounds = Number(val());
    else if (a === '--quick') o.quick = true;
    else if (a === '--no-netns') o.netns = false;
    else if (a === '--no-chart') o.chart = false;
    else if (a === '--out' || a.startsWith('--out=')) o.out = val();
    else if (a === '--impls' || a.startsWith('--impls=')) o.impls = val().split(',');
    else if (a === '--connections' || a.startsWith('--connections=')) o.connections = Number(val());
    else if (a === '--list') o.list = true;
    else if (a === '--from' || a.startsWith('--from=')) o.from = val();
    else if (a === '--resume' || a.startsWith('--resume=')) o.resume = val();
    else if (a === '--retries' || a.startsWith('--retries=')) o.retries = Number(val());
    else if (a === '--quiet-wait' || a.startsWith('--quiet-wait=')) o.quietWait = Number(val());
    else if (a === '-h' || a === '--help') usage();
    else if (a.startsWith('-')) o.rest.push(a);
    else o.names.push(a);
  }
  if (o.quick && !argv.some((a) => a.startsWith('--rounds'))) o.rounds = 1;
  if (!Number.isInteger(o.rounds) || o.rounds < 1) usage('--rounds must be a positive integer');
  if (o.connections !== undefined && (!Number.isInteger(o.connections) || o.connections < 1)) usage('--connections must be a positive integer');
  return o;
}

function usage(msg) {
  if (msg) console.error(`bench: ${msg}`);
  console.error(`usage: npm run bench -- [${SCENARIOS.join('|')}|scale ...] [--rounds N] [--quick] [--connections N] [--impls ${Object.keys(IMPLS).join(',')}] [--out DIR] [--no-netns]`);
  process.exit(2);
}

function buildTools() {
  mkdirSync(BIN, { recursive: true });
  for (const p of ['loadgen', 'cserver']) {
    const src = join(BENCH, 'c', `${p}.c`);
    const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', join(BIN, p), src], { stdio: 'inherit' });
    if (r.error || r.status !== 0) throw new Error(`cannot build ${src} (gcc: ${r.error?.message ?? `exit ${r.status}`}); the bench needs a C compiler`);
  }
  if (!existsSync(join(ROOT, 'dist', 'index.js')) || !existsSync(join(ROOT, 'dist', 'net-binding.js'))) {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('build failed');
  }
}

// Waits until the machine is quiet (both CPUs < 15% busy over 0.5 s), at most maxS seconds:
// CPU-time figures from a machine that something else is using are not figures.
async function quietGate(maxS = 90) {
  const t0 = Date.now();
  let busy = 0;
  for (;;) {
    const a = cpuTimes();
    await sleep(500);
    const b = cpuTimes();
    busy = Math.max(...Object.keys(b).map((k) => (b[k].total - a[k].total ? (100 * (b[k].busy - a[k].busy)) / (b[k].total - a[k].total) : 0)));
    if (busy < 15 || Date.now() - t0 > maxS * 1000) return { waited_s: (Date.now() - t0) / 1000, busy_pct: Math.round(busy) };
  }
}

// Without a namespace of its own, the bench listens on a port nothing else uses.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

// CPU time (jiffies) of every process on the host, by pid: utime + stime + cutime + cstime (the last
// two catch short-lived children reaped meanwhile). Used to see whether anything besides the
// measurement ran during it: "foreign" CPU time makes CPU-per-operation figures meaningless.
function procCpu() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      // ksoftirqd runs the network stack's deferred work: the measurement's own traffic, not foreign.
      if (st.includes('(ksoftirqd/')) continue;
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { ppid: Number(f[1]), t: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch { /* gone */ }
  }
  return out;
}
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })) || 100; } catch { return 100; } })();
function foreignCpuSeconds(before, after, exclude) {
  let j = 0;
  for (const [pid, a] of after) {
    if (exclude.has(pid)) continue;
    j += a.t - (before.get(pid)?.t ?? 0);
  }
  return j / CLK_TCK;
}

let current; // the running measurement process, killed on Ctrl-C
async function runOne(scenario, kase, impl, params, o) {
  const port = o.netns ? 9000 : await freePort();
  const inner = [process.execPath, join(BENCH, 'measure.mjs'), scenario, kase, impl, JSON.stringify(params)];
  const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0 ? ['taskset', '-c', '0'] : [];
  // As root: a fresh network namespace, and a PID namespace whose end (when measure.mjs, its PID 1,
  // exits or is killed) takes every process of the measurement with it.
  const argv = ['timeout', '-k', '5', '400', ...(o.netns ? ['unshare', '-n', '-p', '-f', '--kill-child', '--'] : []), ...pin, ...inner];
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MYRIAD_BENCH_NETNS: o.netns ? '1' : '0', MYRIAD_BENCH_PORT: String(port) } });
    current = p;
    // Our own tree right after the spawn (the measurement's processes are gone by the end).
    const c0 = procCpu();
    const ours = new Set([process.pid, p.pid]);
    const t0 = Date.now();
    let out = '', err = '';
    p.stdout.on('data', (c) => { out += c; });
    p.stderr.on('data', (c) => { err += c; });
    p.on('exit', (code) => {
      current = undefined;
      const foreign = { cpu_s: +foreignCpuSeconds(c0, procCpu(), ours).toFixed(3), wall_s: (Date.now() - t0) / 1000 };
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      try {
        const j = JSON.parse(line);
        resolve(j.ok ? { ok: true, result: j.result, foreign } : { ok: false, error: j.error, foreign });
      } catch {
        resolve({ ok: false, error: `measurement exited ${code}: ${(err || out).slice(-1500)}`, foreign });
      }
    });
  });
}

function progress(text) {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K${text}`);
}
function log(text) {
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[2K');
  console.log(text);
}

// Re-renders table, bars, markdown and chart from a JSON file of an earlier run (--from FILE).
async function fromFile(o) {
  const report = JSON.parse(readFileSync(o.from, 'utf8'));
  const names = [...new Set(report.measurements.map((x) => x.scenario))].filter((n) => SCENARIOS.includes(n));
  const scenarios = [];
  for (const n of SCENARIOS) if (names.includes(n)) scenarios.push((await import(`./scenarios/${n}.mjs`)).default);
  const summaries = summarize(report.measurements, scenarios);
  const rows = tableRows(summaries);
  const barList = bars(summaries);
  console.log(textTable(rows));
  for (const b of barList) console.log(`${b.met ? 'MET   ' : 'MISSED'} ${b.text}: ${b.value}${b.detail ? `  (${b.detail})` : ''}`);
  mkdirSync(o.out, { recursive: true });
  writeFileSync(join(o.out, 'latest.md'), `${markdownTable(rows)}\n\n${barList.map((b) => `- ${b.met ? 'met' : '**missed**'}: ${b.text}: ${b.value}${b.detail ? ` (${b.detail})` : ''}`).join('\n')}\n`);
  const m = report.machine;
  const c = await renderChart(summaries, `myriad vs node:net vs C epoll — ${m.cpu}, ${m.cores} cores, node ${m.node}, ${report.date.slice(0, 10)}`);
  if (c.svg) writeFileSync(join(o.out, 'chart.svg'), c.svg);
  console.log(c.svg ? `chart: ${join(o.out, 'chart.svg')}` : `chart skipped: ${c.reason}`);
}

export async function runSuite(o) {
  if (o.from) return fromFile(o);
  const names = o.names.length ? o.names : SCENARIOS;
  for (const n of names) if (!SCENARIOS.includes(n)) usage(`unknown scenario '${n}' (have: ${SCENARIOS.join(', ')}, scale)`);
  const scenarios = [];
  for (const n of names) scenarios.push((await import(`./scenarios/${n}.mjs`)).default);
  const plan = [];
  for (const sc of scenarios) {
    for (const c of sc.cases({ connections: o.connections, quick: o.quick })) {
      const impls = c.impls.filter((i) => !o.impls || o.impls.includes(i));
      for (let r = 1; r <= o.rounds; r++) {
        for (const impl of r % 2 ? impls : [...impls].reverse()) {
          if (r > Math.min(o.rounds, c.maxRounds?.[impl] ?? Infinity)) continue; // a scenario may cap slow ones
          plan.push({ scenario: sc.name, case: c.case, impl, round: r, params: c.params });
        }
      }
    }
  }
  if (o.list) {
    for (const p of plan) console.log(`${p.scenario} ${p.case} ${p.impl} round ${p.round} ${JSON.stringify(p.params)}`);
    return;
  }
  if (o.netns && process.getuid?.() !== 0) {
    console.warn('bench: not root, so no fresh network namespace per measurement (--no-netns): figures will be noisier');
    o.netns = false;
  }
  buildTools();
  mkdirSync(o.out, { recursive: true });
  const started = new Date();
  const m = machine();
  const stamp = started.toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const jsonl = join(o.out, `bench-${stamp}.jsonl`);
  log(`myriad bench: ${names.join(', ')}; ${o.rounds} round(s); ${plan.length} measurements${o.netns ? ', each in a fresh network namespace' : ''}`);
  log(`machine: ${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB, Linux ${m.kernel}, node ${m.node}, open files ${m.openFiles?.soft}/${m.openFiles?.hard}, somaxconn ${m.somaxconn}, ports ${m.ipLocalPortRange}`);
  const measurements = [];
  const resumed = o.resume ? readFileSync(o.resume, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((x) => x.ok && !x.noisy) : [];
  const t0 = Date.now();
  for (let i = 0; i < plan.length; i++) {
    const p = plan[i];
    const tag = `[${i + 1}/${plan.length}] ${p.scenario} ${p.case} · ${IMPLS[p.impl]} · round ${p.round}`;
    const elapsed = () => { const s = Math.round((Date.now() - t0) / 1000); return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`; };
    const prior = resumed.find((x) => x.scenario === p.scenario && x.case === p.case && x.impl === p.impl && x.round === p.round);
    if (prior) {
      measurements.push(prior);
      appendFileSync(jsonl, JSON.stringify(prior) + '\n');
      log(`${tag}: from ${o.resume}`);
      continue;
    }
    let r, quiet, ts, tries = 0;
    for (;;) {
      progress(`${tag} · waiting for a quiet machine · ${elapsed()}`);
      quiet = await quietGate(o.quietWait);
      progress(`${tag} · running${tries ? ` (again: something else used ${r.foreign.cpu_s} s of CPU during the last try)` : ''} · ${elapsed()}`);
      ts = Date.now();
      r = await runOne(p.scenario, p.case, p.impl, p.params, o);
      // Other processes used more than 10% of a CPU (and 0.2 s) meanwhile: the figure is not ours alone.
      r.noisy = r.foreign.cpu_s > Math.max(0.2, 0.1 * r.foreign.wall_s);
      if (!r.noisy || ++tries > o.retries) break;
    }
    const rec = { ...p, ...r, secs: (Date.now() - ts) / 1000, quiet, tries: tries + 1 };
    measurements.push(rec);
    appendFileSync(jsonl, JSON.stringify(rec) + '\n');
    const brief = r.ok ? Object.entries(r.result).filter(([, v]) => typeof v === 'number').slice(0, 4).map(([k, v]) => `${k}=${Math.round(v * 100) / 100}`).join(' ') : `FAILED: ${r.error.split('\n')[0]}`;
    log(`${tag}: ${brief}${r.noisy ? `  (NOISY: other processes used ${r.foreign.cpu_s} s of CPU during it)` : ''}`);
  }
  const summaries = summarize(measurements, scenarios);
  const rows = tableRows(summaries);
  const barList = bars(summaries);
  console.log(`\n== median [min..max] of ${o.rounds} round(s); C = bench/c (the anchors), myriad = native, myriad on net = the same code on node:net ==\n`);
  console.log(textTable(rows));
  if (barList.length) {
    console.log('\n== bars ==');
    for (const b of barList) console.log(`${b.met ? 'MET   ' : 'MISSED'} ${b.text}: ${b.value}${b.detail ? `  (${b.detail})` : ''}`);
  }
  const report = {
    tool: 'myriad bench', date: started.toISOString(), command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(), rounds: o.rounds,
    netns: o.netns, machine: m, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), impls: IMPLS, summaries, bars: barList, measurements,
  };
  const jsonPath = join(o.out, `bench-${stamp}.json`);
  writeFileSync(jsonPath, JSON.stringify(report, null, 1));
  writeFileSync(join(o.out, 'latest.json'), JSON.stringify(report, null, 1));
  writeFileSync(join(o.out, 'latest.md'), `${markdownTable(rows)}\n\n${barList.map((b) => `- ${b.met ? 'met' : '**missed**'}: ${b.text}: ${b.value}${b.detail ? ` (${b.detail})` : ''}`).join('\n')}\n`);
  if (o.chart) {
    const c = await renderChart(summaries, `myriad vs node:net vs C epoll — ${m.cpu}, ${m.cores} cores, node ${m.node}, ${started.toISOString().slice(0, 10)}`);
    if (c.svg) {
      writeFileSync(join(o.out, 'chart.svg'), c.svg);
      console.log(`\nchart: ${join(o.out, 'chart.svg')}`);
    } else console.log(`\nchart skipped: ${c.reason}`);
  }
  console.log(`figures: ${jsonPath} (and latest.json, latest.md)`);
  return report;
}

async function main() {
  const argv = process.argv.slice(2);
  process.on('SIGINT', () => { current?.kill('SIGTERM'); process.exit(130); });
  process.on('SIGTERM', () => { current?.kill('SIGTERM'); process.exit(143); });
  if (argv[0] === 'scale') {
    const { runScale } = await import('./scale.mjs');
    process.exitCode = await runScale(argv.slice(1));
    return;
  }
  if (argv[0] === 'hammer') {
    const { hammerMain } = await import('./hammer.mjs');
    process.exitCode = await hammerMain(argv.slice(1));
    return;
  }
  await runSuite(parseArgs(argv));
}

if (process.argv[1] && process.argv[1].endsWith('run.mjs')) {
  main().catch((err) => { console.error(err); process.exit(1); });
}
