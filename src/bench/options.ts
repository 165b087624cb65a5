/**
 * Command line of `npm run bench` (node dist/bench/tunnel.js): how much to send per flow
 * and which rekey policy the lab gateways get.
 */
import { parseArgs } from 'node:util';
import { parseDuration, parseSize } from '../config/units.js';

export interface BenchOptions {
  /** Upper bound of bytes sent per flow; Number.MAX_SAFE_INTEGER when only time bounds it. */
  bytes: number;
  /** Upper bound of sending time per flow, ms (whichever bound is hit first ends the flow). */
  sendMs: number;
  /** Human text of the bounds, for the report. */
  boundText: string;
  /** Policy `rekey_after_time` of both gateways, as written into the YAML (e.g. `120s`). */
  rekey: string;
  rekeyMs: number;
  /** Policy `rekey_jitter`, YAML text. */
  rekeyJitter: string;
  /** Policy `hard_limit_time`, YAML text; chosen so the config rules of protocol.md s6 hold. */
  hardLimit: string;
  /** Keep the temporary folder (PKI, YAML) for inspection. */
  keep: boolean;
}

/** Thrown for a bad command line; the entry point prints it with the usage and exits 64. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const USAGE = `usage: npm run bench -- [--seconds 5] [--bytes 512MiB] [--rekey 120s] [--keep]
  --seconds  seconds of sending per flow (default 5 when --bytes is not given)
  --bytes    bytes sent per flow (binary units: KiB, MiB, GiB, or plain digits); with both,
             the first bound reached ends a flow; --bytes alone sends for at most 600 s
  --rekey    rekey_after_time of the gateways (default 120s, the policy default; e.g. 2s to
             measure with rekeys happening during the flows)
  --keep     keep the temporary PKI and YAML folder`;

/**
 * Time-bounded by default: a byte-bounded direct loopback flow ends in a few hundred ms,
 * too short to measure on a shared 2-core machine; 5 s per flow gives both paths the
 * same measuring window.
 */
const DEFAULT_SEND_MS = 5_000;
/** Cap on sending time when only --bytes is given, so a stalled path cannot hang the run. */
const BYTES_ONLY_SEND_MS = 600_000;
const MiB = 2 ** 20;
/** The policy default of config/qkdgw.schema.json: a realistic deployment value. */
const DEFAULT_REKEY = '120s';

/**
 * Parses argv (without node and the script).
 * @throws UsageError on an unknown flag or a value that does not parse.
 */
export function parseBenchArgs(argv: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        bytes: { type: 'string' },
        seconds: { type: 'string' },
        rekey: { type: 'string', default: DEFAULT_REKEY },
        keep: { type: 'boolean', default: false },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let bytes = Number.MAX_SAFE_INTEGER;
  if (values.bytes !== undefined) {
    // Plain digits are accepted as bytes so `--bytes 1000000` does what it says.
    const size = /^[0-9]{1,15}$/.test(values.bytes) ? { value: Number(values.bytes) } : parseSize(values.bytes);
    if (size.error !== undefined || !(size.value > 0)) throw new UsageError(`--bytes: ${size.error ?? 'must be greater than 0'}`);
    bytes = size.value;
  }
  let sendMs = values.bytes === undefined ? DEFAULT_SEND_MS : BYTES_ONLY_SEND_MS;
  if (values.seconds !== undefined) {
    const seconds = Number(values.seconds);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(values.seconds) || !(seconds > 0) || seconds > 3600) throw new UsageError(`--seconds: expected a number of seconds in (0, 3600], got ${JSON.stringify(values.seconds)}`);
    sendMs = Math.round(seconds * 1000);
  }
  const mib = `${+(bytes / MiB).toFixed(1)} MiB`;
  const boundText =
    values.bytes === undefined ? `${sendMs / 1000} s of sending` : values.seconds === undefined ? `${mib} (at most ${sendMs / 1000} s of sending)` : `${mib} or ${sendMs / 1000} s of sending, whichever comes first`;
  const rekey = parseDuration(values.rekey);
  if (rekey.error !== undefined) throw new UsageError(`--rekey: ${rekey.error}`);
  if (rekey.value < 1000) throw new UsageError('--rekey: at least 1s (a handshake must fit between rekeys)');
  // Jitter as the policy default (10 s) for realistic intervals, a quarter of short ones;
  // hard limit 1.5 x the interval as the defaults (120 s / 180 s), but never so close that
  // rekey + jitter + 2 x handshake_timeout (5 s) >= hard limit (protocol.md s6).
  const jitterMs = Math.min(10_000, Math.floor(rekey.value / 4));
  const hardMs = Math.max(Math.ceil(rekey.value * 1.5), rekey.value + jitterMs + 30_000);
  return {
    bytes,
    sendMs,
    boundText,
    rekey: values.rekey,
    rekeyMs: rekey.value,
    rekeyJitter: `${jitterMs}ms`,
    hardLimit: `${hardMs}ms`,
    keep: values.keep,
  };
}
