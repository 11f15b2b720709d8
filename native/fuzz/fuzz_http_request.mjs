#!/usr/bin/env node
// fuzz_http_request.mjs - a coverage-guided fuzzer for the SSE example's request-head reader
// (examples/comet-sse/http-request.js), which is JavaScript, so libFuzzer cannot drive it and
// @jazzer.js's native module does not load on this glibc (see test/fuzz-http-request.test.ts).
// It works the way libFuzzer does, on V8's own block coverage (the inspector's precise
// coverage, read after every input): mutate an input of the corpus (bit/byte flips, inserted
// dictionary tokens, deleted or duplicated ranges, splices of two inputs); keep it when it
// reaches a block, or a block hit-count bucket (1, 2, 3, 4-7, 8-15, 16-127, 128+), not seen before.
// Every input goes through native/fuzz/http_request_oracle.js: the answer must match the
// reference reader, nothing may throw, and time must stay linear.
//
//   node native/fuzz/fuzz_http_request.mjs [--seconds 60] [--seed N] [--corpus DIR] [--out DIR] [--max-len 9000]
// --corpus: seeds to start from (default native/fuzz/corpus/http-request); --out: where new
// inputs are written (default: nowhere; pass the corpus dir to grow it). A failing input is
// written to crash-<sha1> in the current directory and the exit status is 1.
// Prints one JSON line at the end: {"execs":N,"corpus":N,"features":N,"failures":N,"seconds":N}.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Session } from 'node:inspector';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const seconds = Number(opt('seconds', 60));
const seed = Number(opt('seed', Date.now() % 2_147_483_647));
const corpusDir = opt('corpus', join(here, 'corpus', 'http-request'));
const outDir = opt('out', undefined);
const maxLen = Number(opt('max-len', 9000));
console.error(`fuzz_http_request: seed ${seed}, ${seconds} s, corpus ${corpusDir}`);

const session = new Session();
session.connect();
const post = (method, params) => {
  let out;
  let error;
  session.post(method, params, (e, r) => { error = e; out = r; }); // synchronous on this thread
  if (error) throw error;
  return out;
};
post('Profiler.enable');
post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
const targetPath = join(root, 'examples', 'comet-sse', 'http-request.js');
const { readRequestHead } = require(targetPath);
const { check } = require(join(here, 'http_request_oracle.js'));
const targetUrl = `file://${targetPath}`;

// mulberry32
let s = seed >>> 0;
const rnd = () => {
  s = (s + 0x6d2b79f5) | 0;
  let t = Math.imul(s ^ (s >>> 15), 1 | s);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const below = (n) => Math.floor(rnd() * n);

const DICT = ['\r\n', '\r\n\r\n', ':', ': ', ' ', '\t', '\0', '\r', '\n', '?', '/', 'HTTP/1.1', 'HTTP/1.0', 'GET', 'POST',
  'Host', 'host: x', 'Content-Length', 'content-length: 5', 'Transfer-Encoding', '0', '999999999', '1234567890', '\x7f', '\x80', '\xff',
  ' '.repeat(64), 'a'.repeat(512)].map((t) => Buffer.from(t, 'latin1'));
const INTERESTING = [0, 9, 10, 13, 32, 33, 47, 58, 63, 0x7e, 0x7f, 0x80, 0xff];

function features() {
  const r = post('Profiler.takePreciseCoverage').result.find((x) => x.url === targetUrl);
  const f = [];
  if (r === undefined) return f;
  r.functions.forEach((fn, i) => {
    for (const range of fn.ranges) {
      if (range.count === 0) continue;
      const c = range.count;
      const bucket = c === 1 ? 1 : c === 2 ? 2 : c === 3 ? 3 : c < 8 ? 4 : c < 16 ? 5 : c < 128 ? 6 : 7;
      f.push(`${i}:${range.startOffset}:${range.endOffset}:${bucket}`);
    }
  });
  return f;
}

function mutate(input, corpus) {
  let b = Buffer.from(input);
  const n = 1 + below(4);
  for (let k = 0; k < n; k++) {
    const at = below(b.length + 1);
    switch (below(8)) {
      case 0: if (b.length) b[below(b.length)] ^= 1 << below(8); break;
      case 1: if (b.length) b[below(b.length)] = INTERESTING[below(INTERESTING.length)]; break;
      case 2: if (b.length) b[below(b.length)] = below(256); break;
      case 3: { const t = DICT[below(DICT.length)]; b = Buffer.concat([b.subarray(0, at), t, b.subarray(at)]); break; }
      case 4: { const len = 1 + below(16); b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + len))]); break; }
      case 5: { const len = 1 + below(Math.max(1, Math.min(64, b.length - at))); const piece = b.subarray(at, at + len); b = Buffer.concat([b.subarray(0, at), piece, piece, b.subarray(at + len)]); break; }
      case 6: { const other = corpus[below(corpus.length)]; const cut = below(other.length + 1); b = Buffer.concat([b.subarray(0, at), other.subarray(cut)]); break; }
      case 7: { const len = below(8); b = Buffer.concat([b.subarray(0, at), Buffer.alloc(len, INTERESTING[below(INTERESTING.length)]), b.subarray(at)]); break; }
    }
  }
  return b.length > maxLen ? b.subarray(0, maxLen) : b;
}

const seen = new Set();
const corpus = [];
let failures = 0;
function run(buf, keep) {
  const problem = check(readRequestHead, buf);
  const f = features();
  if (problem !== undefined) {
    failures++;
    const name = `crash-${createHash('sha1').update(buf).digest('hex')}`;
    writeFileSync(name, buf);
    console.error(`fuzz_http_request: FAILURE: ${problem}\n  input written to ${name}: ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`);
    return;
  }
  let fresh = false;
  for (const x of f) if (!seen.has(x)) { seen.add(x); fresh = true; }
  if (fresh || keep) {
    corpus.push(buf);
    if (fresh && outDir !== undefined && !keep) writeFileSync(join(outDir, createHash('sha1').update(buf).digest('hex')), buf);
  }
}

features(); // reset what loading the module counted
if (outDir !== undefined && !existsSync(outDir)) mkdirSync(outDir, { recursive: true });
if (existsSync(corpusDir)) for (const f of readdirSync(corpusDir)) run(readFileSync(join(corpusDir, f)), true);
if (corpus.length === 0) corpus.push(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
const seeds = corpus.length;
const t0 = Date.now();
let execs = 0;
while (Date.now() - t0 < seconds * 1000 && failures < 5) {
  for (let i = 0; i < 200; i++) {
    run(mutate(corpus[below(corpus.length)], corpus), false);
    execs++;
  }
}
const result = { execs, seeds, corpus: corpus.length, features: seen.size, failures, seconds: Math.round((Date.now() - t0) / 1000), seed };
console.log(JSON.stringify(result));
process.exit(failures === 0 ? 0 : 1);
