// myriad's counters in the Prometheus text format, through prom-client so they join an existing
// /metrics endpoint in one line:
//   createMetricsCollector(stats, register)        // prom-client's default registry, or yours
// or, without a registry of your own:
//   res.end(await metrics(stats))
//
// Naming: every numeric field of stats() becomes `myriad_<snake_case>`; fields of arrays of
// objects become one series per element, labelled by the singular of the array's name
// (reactors[2].eventsHandled -> myriad_reactor_events_handled_total{reactor="2"}). Fields known to
// only grow are counters (with `_total`); every other field, including ones this module has never
// heard of, is exported as a gauge, which is right for any number. The system counters that
// `myriad monitor` shows are exported as myriad_system_*.
import { Counter, Gauge, Registry, register as defaultRegistry } from 'prom-client';
import { SystemSampler, type SystemCounterName, type SystemGaugeName, type SystemSample } from './monitor';
import { invalidArgType } from './errors';

/** stats() fields (at any depth) that only ever increase. */
const COUNTER_FIELDS = new Set([
  'connectionsAccepted',
  'connectionsDialed',
  'connectionsClosed',
  'connectionFailures',
  'acceptErrors',
  'bytesRead',
  'bytesWritten',
  'eventsHandled',
  'wakeups',
  'batches',
]);

export interface Series {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labels: Record<string, string>;
  value: number;
}

const snakeCase = (name: string): string =>
  name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^a-zA-Z0-9]+/g, '_').toLowerCase();
const singular = (name: string): string => (name.endsWith('s') ? name.slice(0, -1) : name);

function statsMetric(path: string[], field: string, value: number, labels: Record<string, string>): Series {
  const counter = COUNTER_FIELDS.has(field);
  const name = `myriad_${[...path, field].map(snakeCase).join('_')}${counter ? '_total' : ''}`;
  return { name, help: `myriad stats() ${[...path, field].join('.')}`, type: counter ? 'counter' : 'gauge', labels, value };
}

/** The Prometheus series of one stats() snapshot. */
export function statsSeries(stats: object): Series[] {
  const series: Series[] = [];
  const walk = (value: object, path: string[], labels: Record<string, string>) => {
    for (const [key, child] of Object.entries(value)) {
      if (typeof child === 'number' && Number.isFinite(child)) series.push(statsMetric(path, key, child, labels));
      else if (Array.isArray(child)) {
        const label = snakeCase(singular(key));
        child.forEach((element, index) => {
          if (element && typeof element === 'object') walk(element, [...path, singular(key)], { ...labels, [label]: String(index) });
        });
      } else if (child && typeof child === 'object') walk(child, [...path, key], labels);
    }
  };
  walk(stats, [], {});
  return series;
}

interface SystemMetric {
  source: SystemCounterName | SystemGaugeName;
  name: string;
  help: string;
  type: 'counter' | 'gauge';
}

const SYSTEM_METRICS: SystemMetric[] = [
  { source: 'tcpEstablished', name: 'myriad_system_tcp_connections_established', help: 'TCP connections now established (Linux CurrEstab, Windows Current Connections)', type: 'gauge' },
  { source: 'tcpActiveOpens', name: 'myriad_system_tcp_active_opens_total', help: 'TCP connections opened by connect()', type: 'counter' },
  { source: 'tcpPassiveOpens', name: 'myriad_system_tcp_passive_opens_total', help: 'TCP connections accepted', type: 'counter' },
  { source: 'tcpAttemptFails', name: 'myriad_system_tcp_connection_failures_total', help: 'TCP connection attempts that failed (Linux AttemptFails, Windows Failed Connection Attempts)', type: 'counter' },
  { source: 'tcpEstabResets', name: 'myriad_system_tcp_established_resets_total', help: 'established TCP connections reset', type: 'counter' },
  { source: 'tcpListenOverflows', name: 'myriad_system_tcp_listen_overflows_total', help: 'connections dropped because an accept queue was full', type: 'counter' },
  { source: 'tcpListenDrops', name: 'myriad_system_tcp_listen_drops_total', help: 'SYNs to listening sockets dropped', type: 'counter' },
  { source: 'tcpTimeWait', name: 'myriad_system_tcp_time_wait_sockets', help: 'TCP sockets in TIME_WAIT', type: 'gauge' },
  { source: 'memoryAvailableBytes', name: 'myriad_system_memory_available_bytes', help: 'memory available for new allocations (MemAvailable, ullAvailPhys)', type: 'gauge' },
  { source: 'contextSwitches', name: 'myriad_system_context_switches_total', help: 'context switches since boot', type: 'counter' },
];

/** Windows reports context switches only as a rate (PDH), so that one is a gauge there. */
const WINDOWS_CONTEXT_SWITCHES: SystemMetric = {
  source: 'contextSwitches',
  name: 'myriad_system_context_switches_per_second',
  help: 'context switches per second (\\System\\Context Switches/sec)',
  type: 'gauge',
};

/** The system series of one sample; values the platform does not provide are left out. */
export function systemSeries(sample: SystemSample): Series[] {
  const series: Series[] = [];
  for (const metric of SYSTEM_METRICS) {
    const reported = metric.source === 'contextSwitches' ? sample.reportedRates.contextSwitches : undefined;
    if (reported !== undefined) {
      series.push({ ...WINDOWS_CONTEXT_SWITCHES, labels: {}, value: reported });
      continue;
    }
    const value = sample.values[metric.source];
    if (value !== null) series.push({ name: metric.name, help: metric.help, type: metric.type, labels: {}, value });
  }
  return series;
}

/** Which system metrics this platform provides: known before the first sample, so they register up front. */
function platformSystemMetrics(): SystemMetric[] {
  const available: Record<string, Array<SystemMetric['source']>> = {
    linux: SYSTEM_METRICS.map((m) => m.source),
    win32: ['tcpEstablished', 'tcpActiveOpens', 'tcpPassiveOpens', 'tcpAttemptFails', 'tcpEstabResets', 'memoryAvailableBytes'],
  };
  const sources = available[process.platform] ?? ['memoryAvailableBytes'];
  const metrics = SYSTEM_METRICS.filter((m) => sources.includes(m.source));
  return process.platform === 'win32' ? [...metrics, WINDOWS_CONTEXT_SWITCHES] : metrics;
}

type Family = Counter<string> | Gauge<string>;

export interface MetricsCollector {
  readonly registry: Registry;
  /** Unregisters the metrics and stops the system sampler. */
  close(): void;
}

class Collector implements MetricsCollector {
  private readonly families = new Map<string, Family>();
  /** Last value given to each counter series, to increment by the difference. */
  private readonly counted = new Map<string, number>();
  private readonly sampler = new SystemSampler();
  private scrape: Promise<Map<string, Series[]>> | null = null;

  constructor(
    private readonly statsProvider: () => object,
    readonly registry: Registry,
  ) {
    for (const metric of platformSystemMetrics()) this.family(metric.name, metric.help, metric.type, []);
    this.registerFamilies(statsSeries(statsProvider()));
  }

  /** Registers families for fields that appeared since; they are exported from the next scrape. */
  private registerFamilies(series: Series[]): void {
    for (const s of series) this.family(s.name, s.help, s.type, Object.keys(s.labels));
  }

  /** Reads stats() and the system once, registering families for fields that appeared since. */
  private read(): Promise<Map<string, Series[]>> {
    return this.sampler.sample().then((sample) => {
      const byName = new Map<string, Series[]>();
      const stats = statsSeries(this.statsProvider());
      this.registerFamilies(stats);
      for (const s of [...systemSeries(sample), ...stats]) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
      return byName;
    });
  }

  /**
   * The series of the scrape in progress. prom-client's registry.metrics() calls every family's
   * collect() synchronously, one after the other, before awaiting any: the first call starts one
   * read and the rest of that loop shares it; the read is forgotten a microtask later, so the next
   * scrape reads afresh.
   */
  series(): Promise<Map<string, Series[]>> {
    if (!this.scrape) {
      this.scrape = this.read();
      queueMicrotask(() => (this.scrape = null));
    }
    return this.scrape;
  }

  /** The registry's text, after registering any new families so that this scrape has them. */
  async exposition(): Promise<string> {
    const scrape = this.read();
    await scrape;
    this.scrape = scrape; // the collect() calls made inside registry.metrics() reuse this read
    try {
      return this.registry.metrics();
    } finally {
      this.scrape = null;
    }
  }

  private family(name: string, help: string, type: 'counter' | 'gauge', labelNames: string[]): Family {
    const existing = this.families.get(name);
    if (existing) return existing;
    const collector = this;
    const config = {
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect(this: Family) {
        for (const s of (await collector.series()).get(name) ?? []) collector.record(this, s);
      },
    };
    const family = type === 'counter' ? new Counter(config) : new Gauge(config);
    this.families.set(name, family);
    return family;
  }

  private record(family: Family, s: Series): void {
    if (family instanceof Gauge) {
      family.set(s.labels, s.value);
      return;
    }
    const key = `${s.name}${JSON.stringify(s.labels)}`;
    const last = this.counted.get(key) ?? 0;
    if (s.value < last) family.remove(s.labels); // the source restarted from zero
    family.inc(s.labels, s.value < last ? s.value : s.value - last);
    this.counted.set(key, s.value);
  }

  close(): void {
    for (const name of this.families.keys()) this.registry.removeSingleMetric(name);
    this.families.clear();
    this.sampler.close();
  }
}

/**
 * Registers myriad's metrics (stats() fields and system counters) into a prom-client registry,
 * by default prom-client's global one. Its `metrics()` then includes them on every scrape.
 */
export function createMetricsCollector(statsProvider: () => object, registry: Registry = defaultRegistry): MetricsCollector {
  if (typeof statsProvider !== 'function') throw invalidArgType('statsProvider', 'of type function', statsProvider);
  return new Collector(statsProvider, registry);
}

/** Collectors already made, so repeated metrics() calls reuse them: one per provider and registry. */
const privateCollectors = new WeakMap<() => object, Collector>();
const registryCollectors = new WeakMap<Registry, Map<() => object, Collector>>();

function collectorFor(statsProvider: () => object, registry: Registry | undefined): Collector {
  if (!registry) {
    let collector = privateCollectors.get(statsProvider);
    if (!collector) privateCollectors.set(statsProvider, (collector = new Collector(statsProvider, new Registry())));
    return collector;
  }
  let byProvider = registryCollectors.get(registry);
  if (!byProvider) registryCollectors.set(registry, (byProvider = new Map()));
  let collector = byProvider.get(statsProvider);
  if (!collector) byProvider.set(statsProvider, (collector = new Collector(statsProvider, registry)));
  return collector;
}

/**
 * The metrics in the Prometheus text format. Without `registry`, a private registry holding only
 * myriad's metrics is used (created on the first call); with one, myriad's metrics are registered
 * into it once and its whole content is returned.
 */
export async function metrics(statsProvider: () => object, registry?: Registry): Promise<string> {
  if (typeof statsProvider !== 'function') throw invalidArgType('statsProvider', 'of type function', statsProvider);
  return collectorFor(statsProvider, registry).exposition();
}
