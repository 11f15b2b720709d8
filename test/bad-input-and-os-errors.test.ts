// Misuse throws Node's codes before anything native runs; OS failures reject with Node-style
// errors (code, errno, syscall, address, port); nothing is left open afterwards.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { listen, Dialer, configure, type Connection } from '../lib/index';
import { absentAddress, fdCount, fdsAtMost, waitUntil } from './helpers';
import { errnoOf } from '../lib/errors';

describe('bad input', () => {
  it('rejects bad listen options with Node codes', async () => {
    await expect(listen(undefined as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(listen({ endpoints: 'x' } as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(listen({ endpoints: [] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(listen({ endpoints: ['127.0.0.1:99999'] })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    await expect(listen({ endpoints: ['127.0.0.1:-1'] })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    await expect(listen({ endpoints: [{ host: '127.0.0.1', port: 1.5 }] })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    await expect(listen({ endpoints: ['1.2.3:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_IP_ADDRESS' });
    await expect(listen({ endpoints: ['localhost:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_IP_ADDRESS' });
    await expect(listen({ endpoints: ['[::1:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(listen({ endpoints: ['::1:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(listen({ endpoints: ['[127.0.0.1]:80'] })).rejects.toMatchObject({ code: 'ERR_INVALID_IP_ADDRESS' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], backlog: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], backlog: '5' as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], acceptBatch: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], acceptBatch: NaN })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], reusePort: 1 as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], keepAlive: 'yes' as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(listen({ endpoints: ['127.0.0.1:0'], onConnection: 5 as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('rejects bad dialer options and targets', async () => {
    expect(() => new Dialer({ localAddresses: ['nope'] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_IP_ADDRESS' }));
    expect(() => new Dialer({ localAddresses: '127.0.0.1' as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Dialer({ localPortRange: [5000, 4000] })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Dialer({ localPortRange: [0, 4000] })).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => new Dialer({ maxPending: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Dialer({ timeoutMs: -5 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    const d = new Dialer();
    expect(() => d.connect('127.0.0.1:0')).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => d.connect('host:99999')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_IP_ADDRESS' }));
    expect(() => d.connect('127.0.0.1:99999')).toThrow(expect.objectContaining({ code: 'ERR_SOCKET_BAD_PORT' }));
    expect(() => d.connect(42 as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => d.connect('127.0.0.1:80', { localPort: 5000 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => d.connect('127.0.0.1:80', { localAddress: '::1' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => d.connect('127.0.0.1:80', { signal: {} as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => d.connectMany('127.0.0.1:80', -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => configure({ threads: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => configure({ thread: 2 } as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
  });

  it('rejects bad connection calls', async () => {
    const server = await listen({ endpoints: ['127.0.0.1:0'] });
    const conn: Connection = await new Dialer().connect(server.endpoints[0]);
    expect(() => conn.write(42 as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conn.write({} as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conn.setTimeout(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => conn.setTimeout(1, 'x' as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conn.setNoDelay('yes' as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => conn.setKeepAlive(true, -1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    const errors: any[] = [];
    conn.on('error', (e) => errors.push(e));
    conn.end();
    expect(conn.write('after end')).toBe(false);
    await waitUntil(() => errors.length === 1, 2000, 'write-after-end error');
    expect(errors[0].code).toBe('ERR_STREAM_WRITE_AFTER_END');
    await server.close({ destroyConnections: true });
  });
});

describe('OS errors', () => {
  it('ECONNREFUSED, in node:net form', async () => {
    const fds = fdCount();
    const err: any = await new Dialer().connect('127.0.0.1:1').catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ECONNREFUSED', errno: errnoOf('ECONNREFUSED'), syscall: 'connect', address: '127.0.0.1', port: 1 });
    expect(err.message).toBe('connect ECONNREFUSED 127.0.0.1:1');
    await waitUntil(() => fdsAtMost(fds + 4), 2000, 'no leaked fd'); // +4: the reactors, if this started them
  });

  it('EADDRINUSE for a port in use, and the other endpoints are released', async () => {
    const a = await listen({ endpoints: ['127.0.0.1:0'] });
    const port = a.endpoints[0].port;
    const fds = fdCount();
    const err: any = await listen({ endpoints: ['127.0.0.2:0', `127.0.0.1:${port}`], reuseAddress: false }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE', errno: errnoOf('EADDRINUSE'), syscall: 'bind', address: '127.0.0.1', port });
    await waitUntil(() => fdsAtMost(fds), 2000, 'the 127.0.0.2 listener closed');
    await a.close();
  });

  it('EADDRNOTAVAIL for an address this host does not have', async () => {
    // An address this host does not have: bind() fails locally and nothing is sent.
    const err: any = await listen({ endpoints: [`${absentAddress()}:0`] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind', address: absentAddress(), port: 0 });
    const err2: any = await new Dialer().connect('127.0.0.1:9', { localAddress: absentAddress() }).catch((e) => e);
    expect(err2).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
  });

  // Linux only: the silent listener is a python3 socket that never accepts (Windows answers a
  // full backlog with a reset instead of dropping the SYN).
  it.runIf(process.platform === 'linux')('ETIMEDOUT when the connect timeout passes', async () => {
    // A listener that never accepts, with the smallest backlog: once its queue is full the kernel
    // drops further SYNs, so those connects can only end by our timeout.
    const py = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [line] = await once(py.stdout!, 'data');
      const port = Number(String(line).trim());
      const d = new Dialer({ timeoutMs: 300 });
      const t0 = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 4 }, () => d.connect({ host: '127.0.0.1', port })));
      const timedOut = results.filter((r) => r.status === 'rejected' && (r.reason as any).code === 'ETIMEDOUT');
      expect(timedOut.length).toBeGreaterThan(0);
      expect((timedOut[0] as PromiseRejectedResult).reason).toMatchObject({ syscall: 'connect', address: '127.0.0.1', port });
      expect(Date.now() - t0).toBeLessThan(3000);
      for (const r of results) if (r.status === 'fulfilled') r.value.destroy();
    } finally {
      py.kill();
    }
  });
});
