// myriad - very many TCP connections from Node.js.
// The public API: everything a user imports comes from here.
import { backendName, binding, configureEngine, isStarted } from './engine';
import type { NativeStats } from './binding';
import { invalidArgValue, validateInt, validateObject } from './errors';

export { listen, Server } from './server';
export type { ListenOptions, CloseOptions } from './server';
export { Dialer } from './dialer';
export type { DialerOptions, ConnectOptions, ConnectManyOptions } from './dialer';
export { Connection } from './connection';
export { createGroup, Group } from './group';
export type { GroupBroadcastOptions } from './group';
export type { ConnectionOptions } from './options';
export type { Endpoint, EndpointInput } from './address';

export interface ConfigureOptions {
  /** Reactor threads (default: the number of CPUs, at most 8). Only before first use. */
  threads?: number;
  /**
   * 'native' (epoll/IOCP reactors) or 'net' (the same API on node:net, for comparison and for
   * platforms without a native build). Default: native, falling back to net with a warning.
   */
  backend?: 'native' | 'net';
}

/** Sets engine-wide options. Must run before the first listen() or connect(). */
export function configure(options: ConfigureOptions): void {
  const o = validateObject(options, 'options');
  for (const key of Object.keys(o)) {
    if (key !== 'threads' && key !== 'backend') throw invalidArgValue('options', key, 'has an unknown key');
  }
  const threads = o.threads === undefined ? undefined : validateInt(o.threads, 'options.threads', 1, 16);
  if (o.backend !== undefined && o.backend !== 'native' && o.backend !== 'net') {
    throw invalidArgValue('options.backend', o.backend, "must be 'native' or 'net'");
  }
  configureEngine(threads, o.backend as 'native' | 'net' | undefined);
}

/** The backend in use ('native' or 'net'), or undefined before first use. */
export function backend(): 'native' | 'net' | undefined {
  return backendName();
}

export type Stats = NativeStats;

/** Process counters (this thread's engine). All zero before first use. */
export function stats(): Stats {
  if (!isStarted()) {
    return {
      connectionsEstablished: 0, connectionsAccepted: 0, connectionsDialed: 0, connectionsClosed: 0,
      connectionFailures: 0, acceptErrors: 0, bytesRead: 0, bytesWritten: 0, broadcasts: 0, messagesQueued: 0,
      messagesDropped: 0, slowConsumersClosed: 0, bytesBuffered: 0, reactors: [],
    };
  }
  return binding().stats();
}

// ---- tuning and counters: doctor, monitor, metrics ----
import { metrics as metricsOf, createMetricsCollector as collectorOf, type MetricsCollector } from './metrics';
import { serveStats as serveStatsOf, type ServeStatsOptions, type StatsServer } from './monitor';
import type { Registry } from 'prom-client';

export { doctor, formatDoctorReport } from './doctor';
export type { DoctorReport, DoctorOptions, Finding, Fix, Severity, Capacity, OutboundCapacity, AppliedChange } from './doctor';
export { openFileLimit, raiseOpenFileLimit } from './limits';
export type { OpenFileLimit } from './limits';
export type { ServeStatsOptions, StatsServer, MetricsCollector };

/** myriad's counters and the system's, in the Prometheus text format (prom-client). */
export function metrics(registry?: Registry): Promise<string> {
  return metricsOf(stats, registry); // `stats` itself, not a new arrow: collectors are cached per provider
}

/** Registers myriad's counters into a prom-client registry (default: prom-client's global one). */
export function createMetricsCollector(registry?: Registry): MetricsCollector {
  return collectorOf(stats, registry);
}

/**
 * Opt-in local endpoint with this process's stats() as JSON, for `npx myriad monitor --pid P`
 * (with `announce: true`) or `--attach host:port`.
 */
export function serveStats(options?: ServeStatsOptions): Promise<StatsServer> {
  return serveStatsOf(stats, options);
}
