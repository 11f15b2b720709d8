#!/usr/bin/env node
// measure.mjs - ONE measurement: node bench/measure.mjs <scenario> <case> <impl> '<params json>'
// run.mjs starts it inside a fresh network namespace (unshare -n: own loopback, own TIME_WAIT
// table and TCP counters, default sysctls) pinned to CPU 0 with the load generator; servers go on
// CPU 1. Prints one JSON line: {"ok":true,"result":{...}} or {"ok":false,"error":"..."}; every
// process it started is killed before it exits.
import { execFileSync } from 'node:child_process';
import { killAll } from './lib/proc.mjs';

const [scenarioName, kase, impl, json] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function main() {
  if (process.env.MYRIAD_BENCH_NETNS === '1') execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const scenario = (await import(`./scenarios/${scenarioName}.mjs`)).default;
  const params = JSON.parse(json || '{}');
  const result = await scenario.measure(kase, impl, params);
  out({ ok: true, result });
}

const onSignal = () => { killAll(); process.exit(143); };
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);
main().then(
  () => { killAll(); setTimeout(() => process.exit(0), 100); },
  (err) => { killAll(); out({ ok: false, error: String(err?.stack ?? err).slice(0, 4000) }); setTimeout(() => process.exit(1), 100); },
);
