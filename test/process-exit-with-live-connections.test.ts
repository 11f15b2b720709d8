// Exiting while reactors are busy with thousands of connections: no crash, no hang. And a
// process whose servers and connections are all closed exits by itself (nothing holds the loop).
import { describe, expect, it } from 'vitest';
import { child, scaled } from './helpers';

const N = String(scaled(2000, 300));

describe('process exit with live connections', () => {
  it('process.exit() while busy exits cleanly', async () => {
    const c = child('exit-with-live-connections.js', ['exit', N]);
    const m = await c.message((x) => x.event === 'busy');
    expect(m.stats.connectionsEstablished).toBe(2 * Number(N));
    expect(await c.exited).toBe(0);
  });

  it('an exit handler that runs after myriad stopped its reactors can still call the API', async () => {
    const c = child('exit-with-live-connections.js', ['exit-then-use', N]);
    await c.message((x) => x.event === 'busy');
    expect(await c.exited).toBe(0);
    expect(c.stderr()).toMatch(/late stats \d+/); // the child's whole output
    expect(c.stderr()).not.toMatch(/Segmentation|Aborted|terminate called|Error:/);
  });

  it('an uncaught exception while busy exits with the usual code 1, no native crash', async () => {
    const c = child('exit-with-live-connections.js', ['throw', N]);
    await c.message((x) => x.event === 'busy');
    expect(await c.exited).toBe(1);
    expect(c.stderr()).toContain('boom');
    expect(c.stderr()).not.toMatch(/Segmentation|Aborted|terminate called/);
  });

  it('exits by itself once everything is closed', async () => {
    const c = child('exit-with-live-connections.js', ['natural', N]);
    await c.message((x) => x.event === 'busy');
    const code = await Promise.race([c.exited, new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    c.kill('SIGKILL');
    expect(code).toBe(0);
  });
});
