/**
 * Command line of `npm run bench:crypto` (node dist/bench/crypto.js): record sizes,
 * measuring time per cell, repetitions, and where to write JSON.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from './options.js';

export { UsageError };

export interface CryptoBenchOptions {
  /** Plaintext bytes per record, in the order measured. */
  sizes: number[];
  /** Measured seconds per (size, backend) cell, split over `reps` repetitions. */
  seconds: number;
  /** Repetitions per cell; the best one is reported (noise on a shared machine only slows). */
  reps: number;
  /** noble's seconds per cell: a quarter of `seconds` (it runs at a few MB/s). */
  nobleSeconds: number;
  /** Whole seconds per `openssl speed` run (its -seconds takes integers >= 1); one run per repetition. */
  opensslSeconds: number;
  /** Records per allocation probe of the native path (the figure is scaled to 10^6 records). */
  allocRecords: number;
  /** --quick was given. */
  quick: boolean;
  /** --json FILE, or null. */
  json: string | null;
  /** --help / -h was given: print the usage and do nothing else. */
  help: boolean;
}

/** The sizes of the issue: a small packet, a TCP segment, a carrier record of MTU size, 8 KiB, 64 KiB. */
export const DEFAULT_SIZES = [64, 512, 1400, 8192, 65536];
const DEFAULT_SECONDS = 1;
const DEFAULT_REPS = 3;
const QUICK_SECONDS = 0.25;
const QUICK_REPS = 2;
/** Largest record: 16 records of it are held in memory at once (batch16), times 3 buffers. */
const MAX_SIZE = 1 << 20;

export const CRYPTO_USAGE = `usage: npm run bench:crypto -- [--sizes 64,512,1400,8192,65536] [--seconds 1] [--reps 3] [--quick] [--json FILE] [--help]
  --sizes    plaintext bytes per record, comma-separated without spaces (1..${MAX_SIZE})
  --seconds  measured seconds per size and backend (default ${DEFAULT_SECONDS}; noble gets a quarter),
             split over --reps repetitions of which the best is reported
  --reps     repetitions per cell (default ${DEFAULT_REPS}); openssl speed runs once per repetition
  --quick    a short run: --seconds ${QUICK_SECONDS} --reps ${QUICK_REPS} unless given
  --json     also write the results to FILE (its folder must exist and be writable; checked before the run)
  --help     this text (-h)
environment:
  QKDGW_NATIVE=0          measure without the native addon; QKDGW_NATIVE=1 fails the run when it is unavailable
  QKDGW_NATIVE_ADDON=PATH measure another build of the addon (relative to the working directory)`;

function num(flag: string, v: string, lo: number, hi: number, int: boolean): number {
  const ok = int ? /^[0-9]+$/.test(v) : /^[0-9]+(\.[0-9]+)?$/.test(v);
  const n = Number(v);
  if (!ok || !(n >= lo && n <= hi) || (lo === 0 && n === 0)) {
    throw new UsageError(`--${flag}: expected ${int ? 'an integer' : 'a number'} in ${lo === 0 ? '(0' : `[${lo}`}, ${hi}], got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Why `--json FILE` could not be written after the run, or null: checked BEFORE the run,
 * so a typo costs a usage error, not minutes of measuring. FILE (relative to the working
 * directory) must not be a directory; when it exists it must be writable, else its folder
 * must exist and be writable. Readable devices such as /dev/stdout are allowed.
 */
export function jsonTargetProblem(file: string): string | null {
  const abs = resolve(file);
  if (/[/\\]$/.test(file)) return `${file} names a folder, not a file`;
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') return `${dirname(abs)} is not a folder`;
    if (code !== 'ENOENT') return `cannot use ${file}: ${(e as Error).message}`;
  }
  if (st) {
    if (st.isDirectory()) return `${file} is a folder, not a file`;
    try {
      accessSync(abs, fsConstants.W_OK);
    } catch {
      return `${file} is not writable`;
    }
    return null;
  }
  const dir = dirname(abs);
  let d;
  try {
    d = statSync(dir);
  } catch {
    return `the folder ${dir} does not exist`;
  }
  if (!d.isDirectory()) return `${dir} is not a folder`;
  try {
    accessSync(dir, fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    return `the folder ${dir} is not writable`;
  }
  return null;
}

/**
 * Parses argv (without node and the script), and checks that a --json FILE can be written.
 * With --help / -h, returns the defaults with `help: true` (other flags are not checked).
 * @throws UsageError on an unknown flag, a positional, a value that does not parse, or
 * an unwritable --json FILE ({@link jsonTargetProblem}).
 */
export function parseCryptoBenchArgs(argv: string[]): CryptoBenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        sizes: { type: 'string' },
        seconds: { type: 'string' },
        reps: { type: 'string' },
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) return { ...DEFAULTS, help: true };
  let sizes = DEFAULT_SIZES;
  if (values.sizes !== undefined) {
    // No spaces: `--sizes 64, 1400` in a shell passes "1400" as a positional anyway.
    const parts = values.sizes.split(',');
    if (/\s/.test(values.sizes) || parts.some((p) => p === '')) throw new UsageError(`--sizes: expected comma-separated integers without spaces, got ${JSON.stringify(values.sizes)}`);
    sizes = [...new Set(parts.map((p) => num('sizes', p, 1, MAX_SIZE, true)))];
  }
  const seconds = values.seconds !== undefined ? num('seconds', values.seconds, 0, 600, false) : values.quick ? QUICK_SECONDS : DEFAULT_SECONDS;
  const reps = values.reps !== undefined ? num('reps', values.reps, 1, 20, true) : values.quick ? QUICK_REPS : DEFAULT_REPS;
  if (values.json === '') throw new UsageError('--json: expected a file name');
  if (values.json !== undefined) {
    const problem = jsonTargetProblem(values.json);
    if (problem) throw new UsageError(`--json: ${problem}`);
  }
  return {
    sizes,
    seconds,
    reps,
    nobleSeconds: seconds / 4,
    opensslSeconds: Math.max(1, Math.round(seconds / reps)),
    allocRecords: values.quick ? 200_000 : 1_000_000,
    quick: values.quick,
    json: values.json ?? null,
    help: false,
  };
}

/** What an empty command line gives (returned, with help: true, for --help). */
const DEFAULTS: CryptoBenchOptions = {
  sizes: DEFAULT_SIZES,
  seconds: DEFAULT_SECONDS,
  reps: DEFAULT_REPS,
  nobleSeconds: DEFAULT_SECONDS / 4,
  opensslSeconds: Math.max(1, Math.round(DEFAULT_SECONDS / DEFAULT_REPS)),
  allocRecords: 1_000_000,
  quick: false,
  json: null,
  help: false,
};
