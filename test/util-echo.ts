// Small in-process building blocks for the behaviour tests.
import { listen, Dialer, type Connection, type Server } from '../lib/index';
import { waitUntil } from './helpers';

export async function echoServer(endpoints: any[] = ['127.0.0.1:0'], extra: Record<string, unknown> = {}): Promise<Server> {
  return listen({
    endpoints,
    ...extra,
    onConnection: (c) => {
      c.on('data', (d) => c.write(d));
      c.on('end', () => c.end());
    },
  });
}

/** Collects everything a connection receives. */
export function collect(conn: Connection): { bytes(): Buffer; ended: () => boolean; closed: () => boolean } {
  const chunks: Buffer[] = [];
  let ended = false;
  let closed = false;
  conn.on('data', (d) => chunks.push(Buffer.from(d)));
  conn.on('end', () => { ended = true; });
  conn.on('close', () => { closed = true; });
  return { bytes: () => Buffer.concat(chunks), ended: () => ended, closed: () => closed };
}

export async function roundTrip(conn: Connection, payload: Buffer | string): Promise<Buffer> {
  const want = Buffer.from(payload);
  const chunks: Buffer[] = [];
  const onData = (d: Buffer) => chunks.push(Buffer.from(d));
  conn.on('data', onData);
  conn.write(payload);
  await waitUntil(() => Buffer.concat(chunks).length >= want.length, 10_000, 'echo');
  conn.off('data', onData);
  return Buffer.concat(chunks);
}

export const dialer = () => new Dialer();
