/**
 * Command line of `npm run bench:crypto` (node dist/bench/crypto.js): record sizes,
 * measuring time per cell, repetitions, and where to write JSON.
 */
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
}

/** The sizes of the issue: a small packet, a TCP segment, a carrier record of MTU size, 8 KiB, 64 KiB. */
export const DEFAULT_SIZES = [64, 512, 1400, 8192, 65536];
const DEFAULT_SECONDS = 1;
const DEFAULT_REPS = 3;
const QUICK_SECONDS = 0.25;
const QUICK_REPS = 2;
/** Largest record: 16 records of it are held in memory at once (batch16), times 3 buffers. */
const MAX_SIZE = 1 << 20;

export const CRYPTO_USAGE = `usage: npm run bench:crypto -- [--sizes 64,512,1400,8192,65536] [--seconds 1] [--reps 3] [--quick] [--json FILE]
  --sizes    plaintext bytes per record, comma-separated (1..${MAX_SIZE})
  --seconds  measured seconds per size and backend (default ${DEFAULT_SECONDS}; noble gets a quarter),
             split over --reps repetitions of which the best is reported
  --reps     repetitions per cell (default ${DEFAULT_REPS}); openssl speed runs once per repetition
  --quick    a short run: --seconds ${QUICK_SECONDS} --reps ${QUICK_REPS} unless given
  --json     also write the results to FILE`;

function num(flag: string, v: string, lo: number, hi: number, int: boolean): number {
  const ok = int ? /^[0-9]+$/.test(v) : /^[0-9]+(\.[0-9]+)?$/.test(v);
  const n = Number(v);
  if (!ok || !(n >= lo && n <= hi) || (lo === 0 && n === 0)) {
    throw new UsageError(`--${flag}: expected ${int ? 'an integer' : 'a number'} in ${lo === 0 ? '(0' : `[${lo}`}, ${hi}], got ${JSON.stringify(v)}`);
  }
  return n;
}

/**
 * Parses argv (without node and the script).
 * @throws UsageError on an unknown flag, a positional, or a value that does not parse.
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
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let sizes = DEFAULT_SIZES;
  if (values.sizes !== undefined) {
    const parts = values.sizes.split(',').map((s) => s.trim());
    if (parts.some((p) => p === '')) throw new UsageError(`--sizes: expected comma-separated integers, got ${JSON.stringify(values.sizes)}`);
    sizes = [...new Set(parts.map((p) => num('sizes', p, 1, MAX_SIZE, true)))];
  }
  const seconds = values.seconds !== undefined ? num('seconds', values.seconds, 0, 600, false) : values.quick ? QUICK_SECONDS : DEFAULT_SECONDS;
  const reps = values.reps !== undefined ? num('reps', values.reps, 1, 20, true) : values.quick ? QUICK_REPS : DEFAULT_REPS;
  if (values.json === '') throw new UsageError('--json: expected a file name');
  return {
    sizes,
    seconds,
    reps,
    nobleSeconds: seconds / 4,
    opensslSeconds: Math.max(1, Math.round(seconds / reps)),
    allocRecords: values.quick ? 200_000 : 1_000_000,
    quick: values.quick,
    json: values.json ?? null,
  };
}
