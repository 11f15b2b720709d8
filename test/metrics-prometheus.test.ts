// metrics() / createMetricsCollector(): stats() fields and system counters in the Prometheus text
// format through prom-client, on a private registry or inside one the application already has.
import { createServer, connect } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsCollector, metrics, statsSeries } from '../lib/metrics';

/** Parses the exposition text into `name{labels}` → value, and `name` → declared TYPE. */
function parseExposition(text: string): { values: Map<string, number>; types: Map<string, string> } {
  const values = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      expect(types.has(type[1]), `TYPE declared twice for ${type[1]}`).toBe(false);
      types.set(type[1], type[2]);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const sample = /^(\S+?(?:\{[^}]*\})?) (\S+)$/.exec(line);
    expect(sample, line).not.toBeNull();
    values.set(sample![1], Number(sample![2]));
  }
  return { values, types };
}

/** A mutable stand-in for the engine's stats(). */
function engineStats() {
  const state = {
    connectionsEstablished: 3,
    connectionsAccepted: 10,
    bytesRead: 100,
    someFutureField: 7,
    reactors: [{ eventsHandled: 10, connections: 1 }, { eventsHandled: 20, connections: 2 }],
  } as Record<string, unknown>;
  return { state, provider: () => structuredClone(state) };
}

describe('statsSeries', () => {
  it('names fields in snake_case with a myriad_ prefix, counters with _total, arrays as labels', () => {
    expect(statsSeries({ bytesRead: 5, connectionsEstablished: 2, reactors: [{ eventsHandled: 9 }], name: 'x' })).toEqual([
      { name: 'myriad_bytes_read_total', help: 'myriad stats() bytesRead', type: 'counter', labels: {}, value: 5 },
      { name: 'myriad_connections_established', help: 'myriad stats() connectionsEstablished', type: 'gauge', labels: {}, value: 2 },
      { name: 'myriad_reactor_events_handled_total', help: 'myriad stats() reactor.eventsHandled', type: 'counter', labels: { reactor: '0' }, value: 9 },
    ]);
  });
});

describe('metrics()', () => {
  // Linux only: expects the /proc system counters (context switches as a total).
  it.runIf(process.platform === 'linux')('exposes every stats() field and the system counters', async () => {
    const { provider } = engineStats();
    const { values, types } = parseExposition(await metrics(provider));

    expect(values.get('myriad_connections_established')).toBe(3);
    expect(types.get('myriad_connections_established')).toBe('gauge');
    expect(values.get('myriad_connections_accepted_total')).toBe(10);
    expect(types.get('myriad_connections_accepted_total')).toBe('counter');
    expect(values.get('myriad_bytes_read_total')).toBe(100);
    expect(values.get('myriad_some_future_field')).toBe(7); // unknown fields: gauges
    expect(values.get('myriad_reactor_events_handled_total{reactor="0"}')).toBe(10);
    expect(values.get('myriad_reactor_events_handled_total{reactor="1"}')).toBe(20);
    expect(values.get('myriad_reactor_connections{reactor="1"}')).toBe(2);

    for (const name of [
      'myriad_system_tcp_connections_established',
      'myriad_system_tcp_active_opens_total',
      'myriad_system_tcp_connection_failures_total',
      'myriad_system_tcp_listen_overflows_total',
      'myriad_system_tcp_listen_drops_total',
      'myriad_system_memory_available_bytes',
      'myriad_system_context_switches_total',
    ]) {
      expect(values.get(name), name).toBeGreaterThanOrEqual(0);
    }
    expect(values.get('myriad_system_memory_available_bytes')).toBeGreaterThan(0);
  });

  it('follows the counters as they change, including a restart from zero and new fields', async () => {
    const { state, provider } = engineStats();
    await metrics(provider);
    state.bytesRead = 250;
    state.connectionsEstablished = 1;
    (state.reactors as Array<{ eventsHandled: number }>)[0].eventsHandled = 15;
    let { values } = parseExposition(await metrics(provider));
    expect(values.get('myriad_bytes_read_total')).toBe(250);
    expect(values.get('myriad_connections_established')).toBe(1);
    expect(values.get('myriad_reactor_events_handled_total{reactor="0"}')).toBe(15);

    state.bytesRead = 40; // a new engine: its counters start again
    state.acceptErrors = 2; // a field that was not there before
    ({ values } = parseExposition(await metrics(provider)));
    expect(values.get('myriad_bytes_read_total')).toBe(40);
    expect(values.get('myriad_accept_errors_total')).toBe(2);
  });

  it('counts connection failures the system saw', async () => {
    const { provider } = engineStats();
    const failures = async () => parseExposition(await metrics(provider)).values.get('myriad_system_tcp_connection_failures_total')!;
    const before = await failures();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    await Promise.all([1, 2, 3].map(() => new Promise((resolve) => connect(port, '127.0.0.1').on('error', resolve))));
    expect(await failures()).toBeGreaterThanOrEqual(before + 3);
  });

  it('rejects a provider that is not a function', async () => {
    await expect(metrics(undefined as unknown as () => object)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('createMetricsCollector()', () => {
  it('adds myriad\'s metrics to an application\'s own registry, and removes them on close', async () => {
    const registry = new Registry();
    const requests = new Counter({ name: 'app_requests_total', help: 'requests', registers: [registry] });
    requests.inc(4);
    const { state, provider } = engineStats();
    const collector = createMetricsCollector(provider, registry);

    let { values } = parseExposition(await registry.metrics());
    expect(values.get('app_requests_total')).toBe(4);
    expect(values.get('myriad_connections_accepted_total')).toBe(10);
    expect(values.get('myriad_system_tcp_connections_established')).toBeGreaterThanOrEqual(0);

    state.connectionsAccepted = 12;
    ({ values } = parseExposition(await registry.metrics()));
    expect(values.get('myriad_connections_accepted_total')).toBe(12);

    collector.close();
    ({ values } = parseExposition(await registry.metrics()));
    expect([...values.keys()]).toEqual(['app_requests_total']);
  });

  it('returns the whole registry from metrics() when given one', async () => {
    const registry = new Registry();
    new Counter({ name: 'app_jobs_total', help: 'jobs', registers: [registry] }).inc();
    const { provider } = engineStats();
    const { values } = parseExposition(await metrics(provider, registry));
    expect(values.get('app_jobs_total')).toBe(1);
    expect(values.get('myriad_bytes_read_total')).toBe(100);
    // A second call reuses the same collector instead of registering the names twice.
    expect(parseExposition(await metrics(provider, registry)).values.get('myriad_bytes_read_total')).toBe(100);
  });
});
