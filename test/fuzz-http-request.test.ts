// Fuzzing the SSE example's HTTP request-head reader (examples/comet-sse/http-request.js), which
// is JavaScript: libFuzzer cannot drive it, and the coverage-guided JS fuzzer from npm
// (@jazzer.js/core 4.0.0) ships a native module built for glibc 2.38 (Debian bookworm has 2.36)
// while its older versions download their binaries at install time. So: fast-check with a
// grammar of HTTP request heads (valid ones, and valid ones mutated byte-wise), checked against
// an independent reference reader (native/fuzz/http_request_oracle.js), plus a small
// coverage-guided fuzzer on V8's own block coverage (native/fuzz/fuzz_http_request.mjs, run for
// a bounded time by scripts/test-hardening.sh) whose committed corpus is replayed here.
// MYRIAD_FUZZ_SEED replays a run (the seed is printed); MYRIAD_FUZZ_RUNS_SCALE scales the runs.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, underWine } from './helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { readRequestHead } = require('../examples/comet-sse/http-request.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { check, reference, MAX_HEAD } = require('../native/fuzz/http_request_oracle.js');

const seed = process.env.MYRIAD_FUZZ_SEED !== undefined ? Number(process.env.MYRIAD_FUZZ_SEED) : Date.now() % 2_147_483_647;
// Under Wine every socket call goes through wineserver: a tenth of the runs there.
const runs = (n: number) => Math.max(1, Math.round(n * Number(process.env.MYRIAD_FUZZ_RUNS_SCALE ?? (underWine ? 0.1 : 1))));
console.log(`fuzz-http-request: fast-check seed ${seed} (MYRIAD_FUZZ_SEED=${seed} replays it)`);

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = fc.string({ unit: fc.constantFrom(...TCHARS),  minLength: 1, maxLength: 12 });
const vchar = fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c));
const target = fc.tuple(fc.string({ unit: vchar,  maxLength: 30 }), fc.option(fc.string({ unit: vchar,  maxLength: 20 }), { nil: undefined }))
  .map(([p, q]) => `/${p.replace(/\?/g, '')}${q === undefined ? '' : `?${q}`}`);
const fieldChar = fc.oneof(
  { arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), weight: 8 },
  { arbitrary: fc.constantFrom('\t', ' '), weight: 2 },
  { arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), weight: 1 },
);
const fieldValue = fc.oneof(
  fc.string({ unit: fieldChar,  maxLength: 40 }),
  fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(' ', '\t', ' \t')).map(([n, ws]) => `y${ws.repeat(n)}y`), // long inner runs
);
const headerName = fc.oneof(token, fc.constantFrom('Host', 'host', 'Content-Length', 'Transfer-Encoding', 'Accept', 'X-A'));
const header = fc.tuple(headerName, fc.constantFrom('', ' ', '\t', '  '), fieldValue, fc.constantFrom('', ' ', '\t'))
  .map(([n, pre, v, post]) => `${n}:${pre}${v}${post}`);
const head = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'PUT'), token),
  target,
  version: fc.oneof({ arbitrary: fc.constantFrom('HTTP/1.1', 'HTTP/1.0'), weight: 5 }, { arbitrary: fc.constantFrom('HTTP/2.0', 'http/1.1', 'HTTP/1.1 ', ''), weight: 1 }),
  host: fc.option(fc.string({ unit: fieldChar,  maxLength: 20 }), { nil: undefined, freq: 5 }),
  headers: fc.array(header, { maxLength: 8 }),
  contentLength: fc.option(fc.oneof(fc.nat({ max: 999_999_999 }).map(String), fc.constantFrom('', '-1', '1e3', '0x10', '1234567890', ' 5')), { nil: undefined }),
  body: fc.uint8Array({ maxLength: 16 }),
}).map((h) => {
  const lines = [`${h.method} ${h.target} ${h.version}`];
  if (h.host !== undefined) lines.push(`Host: ${h.host}`);
  lines.push(...h.headers);
  if (h.contentLength !== undefined) lines.push(`Content-Length: ${h.contentLength}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(h.body)]);
});

// Byte-level mutations of a valid head: the edges of the grammar.
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.constantFrom(0, 9, 10, 13, 32, 58, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.oneof(fc.constantFrom('\r\n', '\r', '\n', '\r\n\r\n', ':', ' ', '\0', '\r\nHost: x', '\r\nContent-Length: 1', '\r\nTransfer-Encoding: chunked').map((s) => Buffer.from(s, 'latin1')), fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a))) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('pad' as const), n: fc.integer({ min: 1, max: MAX_HEAD + 100 }) }),
);
function mutate(buf: Buffer, ms: any[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of ms) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.kind === 'set' && b.length > 0) b[Math.min(at, b.length - 1)] = m.byte;
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + m.n))]);
    else if (m.kind === 'pad') b = Buffer.concat([Buffer.from(`GET / HTTP/1.1\r\nX: ${'a'.repeat(m.n)}`, 'latin1'), b]);
  }
  return b;
}

function ok(buf: Buffer, timing = true): void {
  const problem = check(readRequestHead, buf, { timing });
  if (problem !== undefined) throw new Error(`${problem}\ninput (latin1, ${buf.length} bytes): ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`);
}

describe('fuzz: the SSE example reader of HTTP request heads', () => {
  it('grammar-generated heads: the reader agrees with the reference reader', () => {
    fc.assert(fc.property(head, (buf) => ok(buf)), { seed, numRuns: runs(20_000), endOnFailure: true });
  });

  it('mutated heads: same answer as the reference, never a throw', () => {
    fc.assert(fc.property(head, fc.array(mutation, { minLength: 1, maxLength: 4 }), (buf, ms) => ok(mutate(buf, ms))), { seed, numRuns: runs(20_000), endOnFailure: true });
  });

  it('arbitrary bytes: same answer as the reference, never a throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (a) => ok(Buffer.from(a), false)), { seed, numRuns: runs(20_000), endOnFailure: true });
  });

  it('bytes arriving in pieces: incomplete until the head is whole, then the same answer', () => {
    fc.assert(fc.property(head, fc.array(fc.nat(), { maxLength: 5 }), (buf, cuts) => {
      const whole = reference(buf);
      const end = buf.indexOf('\r\n\r\n');
      for (const c of cuts) {
        const n = c % (buf.length + 1);
        const part = readRequestHead(buf.subarray(0, n));
        if (end < 0 || n < end + 4) {
          if (n <= MAX_HEAD) expect(part.incomplete === true || (part.error === 431 && n > MAX_HEAD)).toBe(true);
        } else {
          ok(buf.subarray(0, n), false);
        }
      }
      ok(buf, false);
      void whole;
    }), { seed, numRuns: runs(2_000), endOnFailure: true });
  });

  // A quadratic path: trimming a header value with /^[ \t]+|[ \t]+$/g retries the second
  // alternative from every blank of a long inner run ("y" + 8000 blanks + "y"): ~50 ms for one
  // 8 KiB head here, ~1000 times a normal one, so a client can keep the server's only JS thread
  // busy with a few requests a second.
  it('stays linear: a long run of blanks inside a header value is cheap', () => {
    ok(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: y${' '.repeat(8000)}y\r\n\r\n`, 'latin1'));
  });

  it('the committed corpus of the coverage-guided fuzzer still passes', () => {
    const dir = join(ROOT, 'native', 'fuzz', 'corpus', 'http-request');
    const files = readdirSync(dir);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) ok(readFileSync(join(dir, f)));
  });
});
