// conn.toStream(): a Duplex that node:http serves over and stream.pipeline moves bytes through.
import { describe, expect, it } from 'vitest';
import { createServer, request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { listen, Dialer } from '../lib/index';

describe('toStream()', () => {
  it('serves HTTP/1.1 with node:http over myriad connections', async () => {
    const http = createServer((req, res) => res.end(`you asked for ${req.url}`));
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => http.emit('connection', c.toStream()) });
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.endpoints[0].port, path: '/hello' }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (x) => { s += x; });
        res.on('end', () => resolve(`${res.statusCode} ${s}`));
      }).on('error', reject).end();
    });
    expect(body).toBe('200 you asked for /hello');
    await server.close({ destroyConnections: true });
  });

  it('moves 8 MiB through stream.pipeline intact, with backpressure', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'], onConnection: (c) => {
      const s = c.toStream();
      s.pipe(s); // echo through the stream layer
    } });
    const conn = await new Dialer().connect(server.endpoints[0]);
    const data = randomBytes(8 << 20);
    const stream = conn.toStream();
    const sink = new PassThrough();
    const received = createHash('sha256');
    let n = 0;
    sink.on('data', (d) => { received.update(d); n += d.length; if (n === data.length) stream.end(); });
    await Promise.all([
      pipeline(Readable.from([data.subarray(0, 3 << 20), data.subarray(3 << 20)]), stream, { end: false }),
      pipeline(stream, sink),
    ]);
    expect(n).toBe(data.length);
    expect(received.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    await server.close({ destroyConnections: true });
  });
});
