// The Server-Sent Events example with real clients: `curl -N` and an EventSource-compatible
// client (the eventsource package) subscribe; every subscriber gets every published event in
// order; malformed requests get 400 and a close, and the server keeps serving.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { once } from 'node:events';
import { EventSource } from 'eventsource';
import { ROOT, waitUntil } from './helpers';

let server: ChildProcess;
let port = 0;

async function publish(message: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/publish`, { method: 'POST', body: message });
  return { status: res.status, body: await res.text() };
}

/** Sends raw bytes, returns everything the server answers until it closes. */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.end(bytes);
  });
}

// Linux only: the curl clients are Debian's curl, and under Wine node.exe's fetch (undici, which the
// eventsource client and publish() use) fails to connect to loopback with UNKNOWN (tried
// 2026-11-29), while node:net connects there fine.
describe.runIf(process.platform === 'linux')('examples/comet-sse', () => {
  beforeAll(async () => {
    server = spawn(process.execPath, [join(ROOT, 'examples/comet-sse/server.js'), '--port', '0', '--tick', '200'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = await once(server.stdout!, 'data');
    port = JSON.parse(String(line)).listening.port;
  });
  afterAll(() => { server?.kill('SIGKILL'); });

  it('delivers every published event, in order, to curl -N and EventSource clients', async () => {
    const curls = Array.from({ length: 5 }, () => {
      const p = spawn('curl', ['-sN', `http://127.0.0.1:${port}/events`]);
      const c = { proc: p, text: '' };
      p.stdout.setEncoding('utf8');
      p.stdout.on('data', (d: string) => { c.text += d; });
      return c;
    });
    const sources = Array.from({ length: 5 }, () => {
      const es = new EventSource(`http://127.0.0.1:${port}/events`);
      const s = { es, messages: [] as string[], ticks: 0, open: false };
      es.addEventListener('open', () => { s.open = true; });
      es.addEventListener('message', (e) => s.messages.push(e.data));
      es.addEventListener('tick', () => { s.ticks++; });
      return s;
    });
    try {
      await waitUntil(() => sources.every((s) => s.open) && curls.every((c) => c.text.includes(': subscribed')), 10_000, 'subscribed');
      const published: string[] = [];
      for (let i = 0; i < 30; i++) {
        const msg = i === 7 ? `multi\nline ${i}` : `message ${i} ${'x'.repeat(i * 10)}`;
        const r = await publish(msg);
        expect(r.status).toBe(202);
        expect(JSON.parse(r.body).delivered).toBe(10);
        published.push(msg);
      }
      await waitUntil(() => sources.every((s) => s.messages.length >= 30), 10_000, 'EventSource clients got all');
      // The timer's events come every 200 ms: the 30 messages may all be through before the first.
      await waitUntil(() => sources.every((s) => s.ticks > 0), 5_000, 'a tick for every client');
      for (const s of sources) expect(s.messages).toEqual(published);
      // curl saw the raw stream: the same data lines, in order, with increasing ids.
      const dataOf = (text: string) => text.split('\n\n').filter((e) => e.includes('event: message'))
        .map((e) => e.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'));
      await waitUntil(() => curls.every((c) => dataOf(c.text).length >= 30), 10_000, 'curl clients got all');
      for (const c of curls) {
        expect(dataOf(c.text)).toEqual(published);
        const ids = [...c.text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
      }
    } finally {
      for (const s of sources) s.es.close();
      for (const c of curls) c.proc.kill();
    }
  });

  it('answers malformed requests with 400 and closes, then keeps serving', async () => {
    const bad = [
      'GARBAGE\r\n\r\n',
      'GET /events HTTP/1.1\r\n\r\n', // no Host
      'GET /events HTTP/2.0\r\nHost: x\r\n\r\n',
      'GET  /events HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /events HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      'POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /events HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n',
      Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]),
    ];
    for (const b of bad) {
      const answer = await raw(b);
      expect(answer, JSON.stringify(String(b))).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    }
    expect(await raw(`GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await raw('GET /nope HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 404 /);
    expect(await raw('PUT /events HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 405 /);
    expect(await raw('POST /publish HTTP/1.1\r\nHost: x\r\n\r\n')).toMatch(/^HTTP\/1\.1 411 /);
    // Still alive and serving.
    expect((await publish('still alive')).status).toBe(202);
    expect(server.exitCode).toBe(null);
  });
});
