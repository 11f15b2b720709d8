#!/usr/bin/env node
// A Server-Sent Events (Comet) server on myriad.
//   GET  /events   subscribe: 200 text/event-stream, then every event, in order
//   POST /publish  body = the message; broadcast to every subscriber as one event
// Plus a timer event every --tick ms. Malformed requests get 400 and a close, never a crash.
//   node examples/comet-sse/server.js [--port 8080] [--host 127.0.0.1] [--tick 1000]
// Prints one JSON line {"listening": {...}} when ready.
'use strict';
const { listen, createGroup } = require('myriad');
const { readRequestHead } = require('./http-request');

const args = Object.fromEntries(process.argv.slice(2).join(' ').split('--').filter(Boolean).map((a) => a.trim().split(/\s+/)));
const port = Number(args.port ?? 8080);
const host = args.host ?? '127.0.0.1';
const tickMs = Number(args.tick ?? 1000);
const MAX_BODY = 64 * 1024;

const subscribers = createGroup();
let nextEventId = 1;

// One SSE event, multi-line data split into data: lines as the spec requires.
function event(type, data) {
  const id = nextEventId++;
  const lines = String(data).split(/\r\n|\r|\n/).map((l) => `data: ${l}\n`).join('');
  return `id: ${id}\n${type ? `event: ${type}\n` : ''}${lines}\n`;
}

function respond(conn, status, reason, body = '', extra = '') {
  conn.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`);
}

function onConnection(conn) {
  let buf = Buffer.alloc(0);
  let state = 'head'; // head -> body (publish) -> done
  let request;
  conn.on('error', () => {}); // a peer that vanishes is routine for a push server
  conn.on('end', () => conn.end());
  conn.on('data', (chunk) => {
    if (state === 'done') return;
    buf = buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([buf, chunk]);
    if (state === 'head') {
      const r = readRequestHead(buf);
      if (r.incomplete) return;
      if (r.error) {
        state = 'done';
        respond(conn, r.error, r.error === 431 ? 'Request Header Fields Too Large' : 'Bad Request', `${r.reason}\n`);
        return;
      }
      request = r;
      buf = buf.subarray(r.headLength);
      if (r.path === '/events') {
        state = 'done';
        if (r.method !== 'GET') return respond(conn, 405, 'Method Not Allowed', '', 'Allow: GET\r\n');
        conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n: subscribed\n\n');
        subscribers.add(conn);
        return;
      }
      if (r.path !== '/publish') {
        state = 'done';
        return respond(conn, 404, 'Not Found', 'try GET /events or POST /publish\n');
      }
      if (r.method !== 'POST') {
        state = 'done';
        return respond(conn, 405, 'Method Not Allowed', '', 'Allow: POST\r\n');
      }
      const length = Number(r.headers.get('content-length') ?? 'NaN');
      if (!Number.isInteger(length)) {
        state = 'done';
        return respond(conn, 411, 'Length Required');
      }
      if (length > MAX_BODY) {
        state = 'done';
        return respond(conn, 413, 'Content Too Large');
      }
      request.length = length;
      state = 'body';
    }
    if (state === 'body' && buf.length >= request.length) {
      state = 'done';
      const message = buf.subarray(0, request.length).toString('utf8');
      const delivered = subscribers.broadcast(event('message', message));
      respond(conn, 202, 'Accepted', `${JSON.stringify({ delivered })}\n`);
    }
  });
}

(async () => {
  const server = await listen({
    endpoints: [{ host, port }],
    onConnection,
    // A subscriber that stops reading is dropped rather than buffered without bound.
    maxBuffered: 1 << 20,
    slowConsumer: 'close',
  });
  const timer = setInterval(() => subscribers.broadcast(event('tick', new Date().toISOString())), tickMs);
  timer.unref();
  // Comments keep proxies from closing idle streams.
  setInterval(() => subscribers.broadcast(': keep-alive\n\n'), 15_000).unref();
  process.stdout.write(`${JSON.stringify({ listening: server.endpoints[0] })}\n`);
  const stop = async () => {
    clearInterval(timer);
    await server.close({ destroyConnections: true });
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
