// The process's open-file limit (RLIMIT_NOFILE): every connection is one file descriptor, so the
// soft limit is how many connections the process can hold. Most systems start processes with a
// low soft limit (often 1024) under a much higher hard limit that any process may raise itself to,
// which is what Go's runtime does at start; raiseOpenFileLimit() does the same for Node.
// Windows has no such limit for sockets: both functions return null there.
import { getBinding } from './binding';

export interface OpenFileLimit {
  /** Infinity when unlimited. */
  soft: number;
  hard: number;
}

/** The current soft and hard open-file limits of this process; null where there is none (Windows). */
export function openFileLimit(): OpenFileLimit | null {
  const limits = getBinding().rlimitNofile(false);
  return limits && { soft: limits[0], hard: limits[1] };
}

/**
 * Lifts the soft open-file limit to the hard limit (no privilege needed) and returns the new
 * limits, with `before` the soft limit it replaced; null where there is no such limit (Windows).
 * Raising the hard limit itself needs root or the service manager (limits.conf, systemd
 * LimitNOFILE): `myriad doctor` says how.
 */
export function raiseOpenFileLimit(): (OpenFileLimit & { before: number }) | null {
  const binding = getBinding();
  const before = binding.rlimitNofile(false);
  const after = binding.rlimitNofile(true);
  return before && after && { soft: after[0], hard: after[1], before: before[0] };
}
