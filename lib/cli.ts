// The `myriad` command (package.json bin → dist/cli.js; the build adds the shebang).
// Exit codes: 0 done, 1 failed at run time, 2 usage error (unknown command or flag, bad value).
// A subcommand is one entry in COMMANDS: its flags (node:util parseArgs), usage text and run().
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { doctor, formatDoctorReport } from './doctor';
import { invalidArgValue } from './errors';
import { parseInterval, runMonitor } from './monitor';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
  /** Aborted on Ctrl-C: long-running commands stop cleanly. */
  signal?: AbortSignal;
}

type FlagValues = Record<string, string | boolean | undefined>;

interface Command {
  name: string;
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run(flags: FlagValues, io: CliIO): Promise<number>;
}

/** Bad input from the command line: reported with the usage text, exit code 2. */
class UsageError extends Error {}

function integerFlag(name: string, text: string | boolean | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (typeof text !== 'string' || !/^\d+$/.test(text) || value < min || value > max) {
    throw invalidArgValue(name, text, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the limits that cap how many connections this host can hold or open, and how to lift them',
  usage: [
    'Usage: myriad doctor [--json] [--sources N] [--target host:port] [--apply]',
    '',
    '  --json               print the report as one JSON object',
    '  --sources N          outbound capacity to one destination from N source addresses',
    '  --target host:port   outbound capacity to this destination ([v6addr]:port for IPv6)',
    '  --apply              Linux, as root: set the recommended net.* sysctls in this network',
    '                       namespace and report each value before and after',
  ].join('\n'),
  options: {
    json: { type: 'boolean' },
    sources: { type: 'string' },
    target: { type: 'string' },
    apply: { type: 'boolean' },
  },
  async run(flags, io) {
    const report = await doctor({
      sources: integerFlag('--sources', flags.sources, 1, 2 ** 24 - 2),
      target: flags.target as string | undefined,
      apply: flags.apply === true,
    });
    io.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatDoctorReport(report));
    return report.applied?.some((change) => change.status === 'failed') ? 1 : 0;
  },
};

const monitorCommand: Command = {
  name: 'monitor',
  summary: 'live TCP, memory and context-switch counters, and a myriad process\'s stats()',
  usage: [
    'Usage: myriad monitor [--interval 1s] [--count N] [--pid P | --attach host:port]',
    '',
    '  --interval T         time between samples: 1s, 500ms, 2 (seconds); default 1s',
    '  --count N            stop after N samples (default: until Ctrl-C)',
    '  --pid P              also show stats() of process P, which must call',
    '                       serveStats(stats, { announce: true })',
    '  --attach host:port   also show stats() from a serveStats() endpoint',
    '',
    'On a terminal one screen is refreshed in place. Otherwise each sample is one JSON line:',
    '  {"time":..,"intervalMs":..,"elapsedMs":..,"system":{..},"ratePerSecond":{..},"process":{..}}',
  ].join('\n'),
  options: {
    interval: { type: 'string' },
    count: { type: 'string' },
    pid: { type: 'string' },
    attach: { type: 'string' },
  },
  async run(flags, io) {
    if (flags.pid !== undefined && flags.attach !== undefined) throw new UsageError('--pid and --attach cannot be used together');
    await runMonitor({
      intervalMs: flags.interval === undefined ? undefined : parseInterval(String(flags.interval)),
      count: integerFlag('--count', flags.count, 1, Number.MAX_SAFE_INTEGER),
      pid: integerFlag('--pid', flags.pid, 1, 2 ** 31 - 1),
      attach: flags.attach as string | undefined,
      output: io.stdout,
      signal: io.signal,
    });
    return 0;
  },
};

export const COMMANDS: readonly Command[] = [doctorCommand, monitorCommand];

function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
  return [
    'Usage: myriad <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run 'myriad <command> --help' for a command's options.",
  ].join('\n');
}

/** Errors caused by what the user typed: parseArgs' and our own argument validation. */
function isUsageError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  return error instanceof UsageError || code.startsWith('ERR_PARSE_ARGS_') || code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM';
}

/** Runs the command line `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainUsage() + '\n');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`myriad: ${name === undefined ? 'missing command' : `unknown command '${name}'`}\n\n${mainUsage()}\n`);
    return 2;
  }
  try {
    const { values } = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
    if (values.help) {
      io.stdout.write(command.usage + '\n');
      return 0;
    }
    return await command.run(values as FlagValues, io);
  } catch (error) {
    if (isUsageError(error)) {
      io.stderr.write(`myriad ${command.name}: ${(error as Error).message}\n\n${command.usage}\n`);
      return 2;
    }
    io.stderr.write(`myriad ${command.name}: ${(error as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  const interrupted = new AbortController();
  process.once('SIGINT', () => {
    interrupted.abort();
    // Commands that do not watch the signal still end: like the default SIGINT, with code 130.
    setTimeout(() => process.exit(130), 1000).unref();
  });
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: interrupted.signal }).then(
    (code) => {
      process.exitCode = code;
    },
  );
}
