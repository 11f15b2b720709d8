// `myriad monitor` end to end: the counters move when connections open and fail (exactly, inside a
// private network namespace whose counters nothing else touches), JSON lines when not a terminal,
// a screen redrawn in place on one, the serveStats() endpoint and its discovery by pid, and usage
// errors. All traffic stays on loopback.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemSampler, announcementFile, serveStats, type MonitorRecord } from '../lib/monitor';
import { compileLib, type CompiledLib } from './doctor-build';

let lib: CompiledLib;
let cli: string;
beforeAll(() => {
  lib = compileLib(['cli.ts']);
  cli = join(lib.dir, 'cli.js');
}, 60_000);
afterAll(() => lib?.remove());

/** Runs the CLI without blocking this process's event loop (it may be serving the stats). */
function runCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const records = (stdout: string): MonitorRecord[] => stdout.trim().split('\n').map((line) => JSON.parse(line) as MonitorRecord);

/** A loopback port with nothing listening: connecting to it fails with ECONNREFUSED. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Linux only: cumulative counters from /proc (Windows gives context switches as a rate; its parsers are tested from recorded outputs).
describe.runIf(process.platform === 'linux')('system counters', () => {
  it('move when this process opens and fails connections', async () => {
    const OPEN = 5;
    const FAIL = 3;
    const accepted: Socket[] = [];
    const server: Server = createServer((socket) => accepted.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const refused = await deadPort();
    const sampler = new SystemSampler();
    const before = await sampler.sample();

    const clients = await Promise.all(Array.from({ length: OPEN }, () => new Promise<Socket>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(socket)).on('error', reject);
    })));
    await Promise.all(Array.from({ length: FAIL }, () => new Promise((resolve) => connect(refused, '127.0.0.1').on('error', resolve))));
    const after = await sampler.sample();
    sampler.close();
    for (const socket of [...clients, ...accepted]) socket.destroy();
    server.close();

    // Other processes share these host-wide counters, so they can only have moved further.
    expect(after.values.tcpActiveOpens! - before.values.tcpActiveOpens!).toBeGreaterThanOrEqual(OPEN + FAIL);
    expect(after.values.tcpPassiveOpens! - before.values.tcpPassiveOpens!).toBeGreaterThanOrEqual(OPEN);
    expect(after.values.tcpAttemptFails! - before.values.tcpAttemptFails!).toBeGreaterThanOrEqual(FAIL);
    expect(after.values.memoryAvailableBytes).toBeGreaterThan(0);
    expect(after.values.contextSwitches).toBeGreaterThan(before.values.contextSwitches!);
  });
});

// Linux only: runs in a network namespace made with unshare -n.
describe.runIf(process.platform === 'linux')('myriad monitor in a private network namespace', () => {
  it('prints one JSON line per sample whose counters match the connections made', () => {
    const OPEN = 20;
    const FAIL = 7;
    // Inside the namespace: start the monitor, and after its first line open OPEN connections and
    // fail FAIL; hold them across two samples, then close them.
    const driver = join(lib.dir, 'monitor-traffic-driver.js');
    writeFileSync(driver, `
      const { spawn, execFileSync } = require('node:child_process');
      const net = require('node:net');
      execFileSync('ip', ['link', 'set', 'lo', 'up']);
      const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
      (async () => {
        const accepted = [];
        const server = net.createServer((socket) => accepted.push(socket));
        const port = await listen(server);
        const closed = net.createServer();
        const refused = await listen(closed);
        await new Promise((resolve) => closed.close(resolve));
        const monitor = spawn(process.execPath, [${JSON.stringify(cli)}, 'monitor', '--interval', '300ms', '--count', '5'], { stdio: ['ignore', 'pipe', 'inherit'] });
        const lines = [];
        const clients = [];
        let pending = '';
        monitor.stdout.setEncoding('utf8').on('data', async (chunk) => {
          pending += chunk;
          for (let i; (i = pending.indexOf('\\n')) >= 0; pending = pending.slice(i + 1)) {
            lines.push(pending.slice(0, i));
            if (lines.length === 1) {
              await Promise.all(Array.from({ length: ${OPEN} }, () => new Promise((resolve) => clients.push(net.connect(port, '127.0.0.1', resolve)))));
              await Promise.all(Array.from({ length: ${FAIL} }, () => new Promise((resolve) => net.connect(refused, '127.0.0.1').on('error', resolve))));
            }
            if (lines.length === 3) {
              for (const socket of [...clients, ...accepted]) socket.destroy();
              server.close();
            }
          }
        });
        monitor.on('exit', (code) => console.log(JSON.stringify({ code, lines })));
      })();
    `);
    const result = spawnSync('unshare', ['-n', process.execPath, driver], { encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toBe('');
    const { code, lines } = JSON.parse(result.stdout) as { code: number; lines: string[] };
    expect(code).toBe(0);
    expect(lines).toHaveLength(5);
    const samples = lines.map((line) => JSON.parse(line) as MonitorRecord);
    const [first, second, third, , last] = samples;

    expect(first.intervalMs).toBe(300);
    expect(first.system.tcpEstablished).toBe(0);
    // Both ends of every connection are in this namespace.
    expect(second.system.tcpEstablished).toBe(2 * OPEN);
    expect(third.system.tcpEstablished).toBe(2 * OPEN);
    expect(last.system.tcpEstablished).toBe(0);
    expect(last.system.tcpTimeWait).toBeGreaterThanOrEqual(OPEN);

    const delta = (name: 'tcpActiveOpens' | 'tcpPassiveOpens' | 'tcpAttemptFails') => last.system[name]! - first.system[name]!;
    expect(delta('tcpActiveOpens')).toBe(OPEN + FAIL);
    expect(delta('tcpPassiveOpens')).toBe(OPEN);
    expect(delta('tcpAttemptFails')).toBe(FAIL);

    // Rates are per second over the time since the previous sample: together they give the change.
    const failuresFromRates = samples.slice(1).reduce((sum, s) => sum + (s.ratePerSecond.tcpAttemptFails! * s.elapsedMs) / 1000, 0);
    expect(failuresFromRates).toBeCloseTo(FAIL, 6);
    expect(Math.max(...samples.map((s) => s.ratePerSecond.tcpAttemptFails!))).toBeGreaterThan(0);
    expect(first.ratePerSecond.tcpAttemptFails).toBe(0);
    for (const s of samples) expect(s.elapsedMs).toBeGreaterThan(200);
    for (const s of samples) {
      expect(s.ratePerSecond.contextSwitches).toBeGreaterThan(0);
      expect(s.system.memoryAvailableBytes).toBeGreaterThan(0);
      expect(s.process).toBeUndefined();
    }
  }, 60_000);
});

// Not under Wine: node.exe's own fetch()/http client fails there with connect UNKNOWN (Wine, not myriad); runs on Linux and real Windows.
describe.runIf(process.env.MYRIAD_UNDER_WINE !== '1')('attaching to a process', () => {
  /** A stand-in for the engine's stats(): bytesRead grows by 1000 per call. */
  const fakeStats = () => {
    let calls = 0;
    return () => {
      calls++;
      return { connectionsEstablished: 5, bytesRead: calls * 1000, reactors: [{ eventsHandled: calls }, { eventsHandled: 2 * calls }] };
    };
  };

  it('serves stats() as JSON on loopback, and nothing else', async () => {
    const server = await serveStats(() => ({ connectionsEstablished: 1 }));
    try {
      expect(server.host).toBe('127.0.0.1');
      const base = `http://127.0.0.1:${server.port}`;
      const response = await fetch(`${base}/myriad/stats`);
      expect(response.status).toBe(200);
      const body = await response.json() as { pid: number; time: string; stats: unknown };
      expect(body).toEqual({ pid: process.pid, time: expect.any(String), stats: { connectionsEstablished: 1 } });
      expect((await fetch(`${base}/other`)).status).toBe(404);
      expect((await fetch(`${base}/myriad/stats`, { method: 'POST' })).status).toBe(405);
      expect(existsSync(announcementFile(process.pid))).toBe(false); // not asked to announce
    } finally {
      await server.close();
    }
    const failing = await serveStats(() => {
      throw new Error('engine gone');
    });
    const response = await fetch(`http://127.0.0.1:${failing.port}/myriad/stats`);
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: 'engine gone' });
    await failing.close();
  });

  it('rejects bad arguments with Node-style errors', async () => {
    await expect(serveStats('stats' as unknown as () => object)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(serveStats(() => ({}), { port: 70000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(serveStats(() => ({}), { path: 'stats' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('--attach host:port shows the process\'s stats with rates', async () => {
    const server = await serveStats(fakeStats());
    const result = await runCli(['monitor', '--attach', `127.0.0.1:${server.port}`, '--interval', '200ms', '--count', '3']);
    await server.close();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const lines = records(result.stdout);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      const attached = line.process as { pid: number; stats: Record<string, unknown>; ratePerSecond: Record<string, number> };
      expect(attached.pid).toBe(process.pid);
      expect(attached.stats.connectionsEstablished).toBe(5);
      expect(attached.ratePerSecond.connectionsEstablished).toBe(0);
      // +1000 bytes per sample ~0.2 s apart: about 5000/s (bounds allow for a busy machine).
      expect(attached.ratePerSecond.bytesRead).toBeGreaterThan(1000);
      expect(attached.ratePerSecond.bytesRead).toBeLessThan(20000);
      expect(attached.ratePerSecond['reactors.1.eventsHandled']).toBeCloseTo(2 * attached.ratePerSecond['reactors.0.eventsHandled'], 5);
    }
  });

  it('--pid finds an announced endpoint, and says so when there is none', async () => {
    const server = await serveStats(fakeStats(), { announce: true });
    const file = announcementFile(process.pid);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ pid: process.pid, host: '127.0.0.1', port: server.port, path: '/myriad/stats' });
    const found = await runCli(['monitor', '--pid', String(process.pid), '--interval', '100ms', '--count', '1']);
    expect(found.status).toBe(0);
    expect(records(found.stdout)[0].process).toMatchObject({ pid: process.pid, stats: { connectionsEstablished: 5 } });

    await server.close();
    expect(existsSync(file)).toBe(false);
    const gone = await runCli(['monitor', '--pid', String(process.pid), '--count', '1']);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/has not announced a stats endpoint/);
    expect(gone.stdout).toBe('');
  });

  it('removes the announcement when the process exits, and does not keep it alive', () => {
    const child = spawnSync(process.execPath, ['-e', `
      const { serveStats, announcementFile } = require(${JSON.stringify(join(lib.dir, 'monitor.js'))});
      const fs = require('node:fs');
      serveStats(() => ({}), { announce: true }).then(() => {
        console.log(announcementFile(process.pid) + ' ' + fs.existsSync(announcementFile(process.pid)));
      });
    `], { encoding: 'utf8', timeout: 10_000 });
    expect(child.status).toBe(0); // ended by itself: the server is unref'd
    const [file, existed] = child.stdout.trim().split(' ');
    expect(existed).toBe('true');
    expect(existsSync(file)).toBe(false);
  });

  it('reports a per-sample error when the endpoint does not answer', async () => {
    const port = await deadPort();
    const result = await runCli(['monitor', '--attach', `127.0.0.1:${port}`, '--interval', '100ms', '--count', '2']);
    expect(result.status).toBe(0);
    for (const line of records(result.stdout)) expect(line.process).toEqual({ error: expect.stringMatching(/fetch failed|ECONNREFUSED/) });
  });
});

describe('myriad monitor output and usage', () => {
  // Linux only: script(1) provides the pseudo-terminal.
  it.runIf(process.platform === 'linux')('redraws one screen in place on a terminal', () => {
    // script(1) gives the monitor a pseudo-terminal as stdout.
    const result = spawnSync('script', ['-qec', `"${process.execPath}" "${cli}" monitor --interval 100ms --count 3`, '/dev/null'], { encoding: 'utf8', timeout: 20_000 });
    expect(result.status).toBe(0);
    expect(result.stdout.split('\x1b[H').length - 1).toBe(3); // cursor home once per sample
    expect(result.stdout).toContain('TCP connections established');
    expect(result.stdout).toContain('context switches');
    expect(result.stdout).toContain('\x1b[?25h'); // cursor shown again at the end
    expect(result.stdout).not.toContain('{"time"');
  });

  it('rejects bad flags and values with usage and exit code 2', async () => {
    for (const args of [
      ['--interval', '0'],
      ['--interval', 'fast'],
      ['--count', '0'],
      ['--count', '-1'],
      ['--pid', 'abc'],
      ['--attach', 'nohost'],
      ['--pid', '1', '--attach', '127.0.0.1:1'],
      ['--verbose'],
    ]) {
      const result = await runCli(['monitor', ...args]);
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stdout, args.join(' ')).toBe('');
      expect(result.stderr, args.join(' ')).toMatch(/^myriad monitor: [\s\S]+\n\nUsage: myriad monitor/);
    }
  });
});
