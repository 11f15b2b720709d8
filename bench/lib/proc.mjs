// proc.mjs - child processes for the bench: bounded in time (coreutils `timeout`), optionally
// pinned to a CPU (taskset), read line by line (JSON lines parsed), and all killed on cleanup.
import { spawn, spawnSync } from 'node:child_process';

// Pinning needs taskset (util-linux); without it processes run unpinned (CPU figures get noisier).
const HAVE_TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

const live = new Set();

/**
 * Kills every process started through this module, with everything it started: each runs in its
 * own process group (the `timeout` wrapper leads it), and the whole group gets SIGKILL.
 */
export function killAll() {
  for (const p of live) {
    try { process.kill(-p.pid, 'SIGKILL'); } catch { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  }
  live.clear();
}

export class Proc {
  /**
   * @param {string} cmd
   * @param {string[]} args
   * @param {{ cpu?: number|string, timeoutS?: number, name?: string, env?: object, onLine?: (line: string, json: any) => void }} opts
   */
  constructor(cmd, args, opts = {}) {
    const argv = [];
    if (opts.timeoutS) argv.push('timeout', '-k', '3', String(opts.timeoutS));
    if (opts.cpu !== undefined && HAVE_TASKSET) argv.push('taskset', '-c', String(opts.cpu));
    argv.push(cmd, ...args);
    this.name = opts.name ?? cmd;
    this.lines = [];
    this.json = [];
    this.entries = []; // { line, json }
    this.waiters = [];
    this.stderr = '';
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, detached: true });
    live.add(this.proc);
    this.pid = this.proc.pid;
    let buf = '';
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let j;
        if (line.startsWith('{')) try { j = JSON.parse(line); } catch { /* not JSON */ }
        this.lines.push(line);
        this.entries.push({ line, json: j });
        if (j !== undefined) this.json.push(j);
        opts.onLine?.(line, j);
        for (let k = 0; k < this.waiters.length; k++) {
          const w = this.waiters[k];
          if (w.pred(line, j)) {
            this.waiters.splice(k--, 1);
            clearTimeout(w.timer);
            w.resolve(j ?? line);
          }
        }
      }
    });
    this.proc.stderr.setEncoding('utf8');
    this.proc.stderr.on('data', (c) => { if (this.stderr.length < 20000) this.stderr += c; });
    this.proc.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        live.delete(this.proc);
        this.code = code ?? signal;
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.name} exited (${code ?? signal}) before the expected output\n${this.tail()}`));
        }
        resolve(code ?? signal);
      });
    });
  }

  tail() {
    return [...this.lines.slice(-8), this.stderr.slice(-2000)].join('\n');
  }

  /** Resolves with the first line (parsed JSON if it is) matching pred, past or future. */
  waitFor(pred, timeoutMs = 60_000, what = 'output') {
    for (const e of this.entries) if (pred(e.line, e.json)) return Promise.resolve(e.json ?? e.line);
    if (this.code !== undefined) return Promise.reject(new Error(`${this.name} exited (${this.code}) before ${what}\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject, timer: undefined };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The first JSON line whose `event` (or `tool` for loadgen) matches. */
  event(name, timeoutMs) {
    return this.waitFor((_l, j) => j !== undefined && (j.event === name || (name === 'loadgen' && j.tool === 'loadgen')), timeoutMs, `"${name}"`);
  }

  send(line) {
    if (this.code === undefined) this.proc.stdin.write(line + '\n');
  }

  kill(sig = 'SIGTERM') {
    if (this.code === undefined) {
      try { process.kill(-this.pid, sig); } catch { this.proc.kill(sig); }
    }
    return this.exited;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
