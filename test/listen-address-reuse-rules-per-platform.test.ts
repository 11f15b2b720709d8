// Address reuse as each platform's kernel allows it, through listen():
// - a second listener on an endpoint in use gets EADDRINUSE with the default options, on every
//   platform. On Windows that is SO_EXCLUSIVEADDRUSE at work: Windows SO_REUSEADDR would let the
//   second socket take the port (the risk the README describes).
// - reusePort: shares the endpoint on Linux; on Windows (no load-balancing equivalent) it fails
//   with ENOTSUP and leaves nothing bound.
// Under Wine, Wine's own server applies Winsock's reuse rules: the Windows half runs there.
import { describe, expect, it } from 'vitest';
import { listen, Dialer } from '../lib/index';
import { netBackend } from './helpers';

const isWindows = process.platform === 'win32';

describe('address reuse rules', () => {
  it('a second listener on an endpoint in use gets EADDRINUSE (default options)', async () => {
    const a = await listen({ endpoints: ['127.0.0.1:0'] });
    const port = a.endpoints[0].port;
    const err: any = await listen({ endpoints: [`127.0.0.1:${port}`] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', address: '127.0.0.1', port });
    // The first one still serves.
    const c = await new Dialer().connect(`127.0.0.1:${port}`);
    c.destroy();
    await a.close();
    // ... and once it is closed the port can be listened on again.
    const b = await listen({ endpoints: [`127.0.0.1:${port}`] });
    expect(b.endpoints[0].port).toBe(port);
    await b.close();
  });

  // One test for both platforms, each asserting its own rule (nothing is skipped anywhere).
  it('reusePort: shared on Linux; ENOTSUP on Windows, with nothing left bound', async () => {
    const a = await listen({ endpoints: ['127.0.0.1:0'], reusePort: true }).catch((e) => e);
    if (isWindows || (netBackend && a instanceof Error)) {
      // Windows has no load-balancing SO_REUSEPORT; node:net before 22.12 has no reusePort at all.
      expect(a).toBeInstanceOf(Error);
      expect(a.code).toBe('ENOTSUP');
      const s = await listen({ endpoints: ['127.0.0.1:0'] });
      await s.close();
      return;
    }
    const b = await listen({ endpoints: [a.endpoints[0]], reusePort: true });
    expect(b.endpoints[0].port).toBe(a.endpoints[0].port);
    await Promise.all([a.close(), b.close()]);
  });
});
