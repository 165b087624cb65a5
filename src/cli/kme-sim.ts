/**
 * `qkdgw kme-sim --config FILE [flags]`: the bundled KME simulator pair (ETSI GS QKD 014
 * over mTLS), each delivery logged as a `kme_delivery` JSON line (key_IDs, never bytes).
 * `qkdgw kme-sim ctl ...`: a thin client of the simulator's admin endpoint
 * (src/kms/simulator/admin-server.ts).
 */
import { parseArgs } from 'node:util';
import { loadSimulatorConfig, readSimulatorPems } from '../config/simulator.js';
import { formatHostPort, parseHostPort } from '../config/units.js';
import { isLoopbackHost, QUIRK_NAMES, startKmeSimulator, type KmeQuirkOptions, type KmeSimConfig, type KmeSimulator } from '../kms/simulator/index.js';
import { makeLogger } from '../daemon/logger.js';
import type { Logger } from '../util/logger.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const KME_SIM_USAGE = `usage:
  qkdgw kme-sim --config FILE [--admin HOST:PORT] [--key-rate BPS] [--max-keys N]
                [--paused] [--quirk NAME]... [--latency MS]
  qkdgw kme-sim ctl --admin URL <state|link|faults|quirks|drain|add_keys|reset> [--json '{...}']

  --admin HOST:PORT  start the test-only admin endpoint (plain HTTP, loopback only; port 0 = any)
  --key-rate BPS     link key rate, bit/s (overrides link.key_rate_bps)
  --max-keys N       pool capacity, keys (overrides link.max_key_count; caps initial_key_count)
  --paused           start with key accrual paused
  --quirk NAME       switch a quirk on: ${QUIRK_NAMES.filter((n) => n !== 'exhaustion').join(', ')}
                     (snake_case and kebab-case spellings too), or exhaustion=503|400|partial-200
  --latency MS       delay every request of a known SAE by MS milliseconds, both KMEs
  ctl: --json is the request body (member names as in the control API, e.g. '{"latencyMs":200}').`;

/** A malformed command line (exit 64). */
export class KmeSimUsageError extends Error {}

const DIGITS = /^(?:0|[1-9][0-9]{0,14})$/;

function intFlag(v: string | undefined, flag: string, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!DIGITS.test(v) || Number(v) > max) throw new KmeSimUsageError(`${flag}: expected an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
  return Number(v);
}

const toCamel = (s: string): string => s.replace(/[-_]([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** `--quirk` values -> quirk options. Names: camelCase, snake_case or kebab-case; `exhaustion=MODE`. */
export function parseQuirkFlags(values: readonly string[]): KmeQuirkOptions {
  const out: KmeQuirkOptions = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq >= 0) {
      const mode = v.slice(eq + 1);
      if (v.slice(0, eq) !== 'exhaustion' || (mode !== '503' && mode !== '400' && mode !== 'partial-200')) {
        throw new KmeSimUsageError(`--quirk ${v}: only exhaustion takes a value, one of 503, 400, partial-200`);
      }
      out.exhaustion = mode;
      continue;
    }
    const name = toCamel(v);
    if (name === 'exhaustion' || !(QUIRK_NAMES as readonly string[]).includes(name)) {
      throw new KmeSimUsageError(`--quirk ${v}: unknown quirk; known: ${QUIRK_NAMES.filter((n) => n !== 'exhaustion').join(', ')}, exhaustion=MODE`);
    }
    out[name as Exclude<keyof KmeQuirkOptions, 'exhaustion'>] = true;
  }
  return out;
}

/** Startup flags that override the file. */
export interface KmeSimFlags {
  admin?: { host: string; port: number };
  keyRateBps?: number;
  maxKeyCount?: number;
  paused?: boolean;
  quirks?: KmeQuirkOptions;
  latencyMs?: number;
}

/**
 * Parses `qkdgw kme-sim` arguments (not `ctl`).
 * @throws KmeSimUsageError (exit 64) for a missing --config or a malformed flag; TypeError
 *   ERR_PARSE_ARGS_* for unknown flags (main.ts maps it to 64)
 */
export function parseKmeSimArgs(argv: string[]): { config: string; flags: KmeSimFlags } {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      admin: { type: 'string' },
      'key-rate': { type: 'string' },
      'max-keys': { type: 'string' },
      paused: { type: 'boolean' },
      quirk: { type: 'string', multiple: true },
      latency: { type: 'string' },
    },
    strict: true,
  });
  if (!values.config) throw new KmeSimUsageError('--config FILE is required');
  const flags: KmeSimFlags = {};
  if (values.admin !== undefined) {
    const r = parseHostPort(values.admin, { listen: true });
    if (r.error !== undefined) throw new KmeSimUsageError(`--admin: ${r.error}`);
    if (!isLoopbackHost(r.value.host)) {
      throw new KmeSimUsageError(`--admin ${formatHostPort(r.value)}: the admin endpoint has no authentication, so it listens on a loopback address only (127.0.0.1, [::1] or localhost)`);
    }
    flags.admin = r.value;
  }
  const rate = intFlag(values['key-rate'], '--key-rate', 1e12);
  if (rate !== undefined) flags.keyRateBps = rate;
  const max = intFlag(values['max-keys'], '--max-keys', 1e9);
  if (max !== undefined) flags.maxKeyCount = max;
  if (values.paused) flags.paused = true;
  if (values.quirk) flags.quirks = parseQuirkFlags(values.quirk);
  const latency = intFlag(values.latency, '--latency', 600_000);
  if (latency !== undefined) flags.latencyMs = latency;
  return { config: values.config, flags };
}

/** Applies startup flags on top of the file's options (flags win). */
export function applyKmeSimFlags(opts: KmeSimConfig, flags: KmeSimFlags): KmeSimConfig {
  const link = { ...opts.link };
  if (flags.keyRateBps !== undefined) link.keyRateBps = flags.keyRateBps;
  if (flags.maxKeyCount !== undefined) {
    link.maxKeyCount = flags.maxKeyCount;
    // A smaller pool than the file's initial fill: start full rather than refuse.
    if (link.initialKeyCount !== undefined && link.initialKeyCount > flags.maxKeyCount) link.initialKeyCount = flags.maxKeyCount;
  }
  if (flags.paused) link.paused = true;
  return {
    ...opts,
    link,
    quirks: { ...opts.quirks, ...flags.quirks },
    ...(flags.latencyMs !== undefined ? { faults: { ...opts.faults, latencyMs: flags.latencyMs } } : {}),
    ...(flags.admin ? { admin: flags.admin } : {}),
  };
}

/**
 * Loads the file, applies the flags and starts the simulator; does not wait for signals.
 * Logs `kme_sim_started` with both KME URLs and the admin URL (null without one).
 * @param opts.logger replaces the pino logger on stdout (tests)
 * @throws KmeSimUsageError, ConfigError, QkdgwError as {@link kmeSimCommand} maps them
 */
export async function startKmeSimFromArgs(argv: string[], opts: { logger?: Logger } = {}): Promise<{ sim: KmeSimulator; log: Logger }> {
  const { config, flags } = parseKmeSimArgs(argv);
  const cfg = loadSimulatorConfig(config);
  const log = opts.logger ?? makeLogger({ level: cfg.log.level, name: 'qkdgw:kme-sim' });
  const sim = await startKmeSimulator({ ...applyKmeSimFlags(readSimulatorPems(cfg), flags), logger: log });
  log.info(
    { event: 'kme_sim_started', kmes: sim.kmes.map((k) => ({ kme: k.kmeId, url: k.url })), admin: sim.admin?.url ?? null },
    'KME simulator started',
  );
  return { sim, log };
}

export async function kmeSimCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'ctl') return kmeSimCtl(argv.slice(1));
  let started;
  try {
    started = await startKmeSimFromArgs(argv);
  } catch (e) {
    if (e instanceof KmeSimUsageError) {
      process.stderr.write(`qkdgw kme-sim: ${e.message}\n${KME_SIM_USAGE}\n`);
      return Exit.USAGE;
    }
    if (e instanceof TypeError && 'code' in e) throw e; // parseArgs: main.ts prints it, exit 64
    const d = describeStartError(e);
    process.stderr.write(`qkdgw kme-sim: ${d.message}\n`);
    return d.exit;
  }
  const { sim, log } = started;
  return await new Promise<number>((resolve) => {
    const stop = (sig: string) => (): void => {
      log.info({ event: 'kme_sim_stopping', signal: sig });
      sim.close().then(() => resolve(Exit.OK), () => resolve(Exit.FAILURE));
    };
    process.once('SIGINT', stop('SIGINT'));
    process.once('SIGTERM', stop('SIGTERM'));
    process.on('SIGHUP', () => undefined);
  });
}

const CTL_COMMANDS = ['state', 'link', 'faults', 'quirks', 'drain', 'add_keys', 'reset'] as const;

/** Where `ctl` writes: the state JSON to `out`, messages to `err`. */
export interface CtlIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processIo: CtlIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/**
 * `qkdgw kme-sim ctl --admin URL COMMAND [--json BODY]`: one admin request. `state` is a
 * GET; the others POST `BODY` (default none) to `/admin/COMMAND`. URL is
 * `http://host:port` (a bare `host:port` gets `http://`).
 * @returns 0 with the state JSON on stdout; 1 when the endpoint refused (its message on
 *   stderr) or could not be reached; 64 for bad arguments
 */
export async function kmeSimCtl(argv: string[], io: CtlIo = processIo): Promise<number> {
  let admin: string | undefined;
  let command: string | undefined;
  let json: string | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { admin: { type: 'string' }, json: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    admin = values.admin;
    json = values.json;
    if (positionals.length !== 1) throw new KmeSimUsageError(`expected exactly one command, got ${positionals.length}`);
    command = positionals[0];
  } catch (e) {
    io.err(`qkdgw kme-sim ctl: ${e instanceof Error ? e.message : String(e)}\n${KME_SIM_USAGE}\n`);
    return Exit.USAGE;
  }
  const usage = (msg: string): number => {
    io.err(`qkdgw kme-sim ctl: ${msg}\n${KME_SIM_USAGE}\n`);
    return Exit.USAGE;
  };
  if (!admin) return usage('--admin URL is required');
  if (!(CTL_COMMANDS as readonly string[]).includes(command)) return usage(`unknown command ${JSON.stringify(command)}; one of ${CTL_COMMANDS.join(', ')}`);
  if (command === 'state' && json !== undefined) return usage('state takes no --json body');
  if (json !== undefined) {
    try {
      JSON.parse(json);
    } catch {
      return usage(`--json is not valid JSON: ${json}`);
    }
  }
  let base: URL;
  try {
    base = new URL(/^[a-z]+:\/\//i.test(admin) ? admin : `http://${admin}`);
  } catch {
    return usage(`--admin ${JSON.stringify(admin)} is not a URL`);
  }
  if (base.protocol !== 'http:') return usage('--admin must be an http:// URL (the admin endpoint is plain HTTP on loopback)');
  const url = new URL(`/admin/${command}`, base);
  let status: number;
  let text: string;
  try {
    const res = await fetch(url, {
      method: command === 'state' ? 'GET' : 'POST',
      ...(json !== undefined ? { body: json, headers: { 'content-type': 'application/json' } } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    status = res.status;
    text = await res.text();
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    io.err(`qkdgw kme-sim ctl: cannot reach ${url.href}: ${e instanceof Error ? e.message : String(e)}${cause}\n`);
    return Exit.FAILURE;
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status !== 200) {
    const msg = typeof (body as { message?: unknown })?.message === 'string' ? (body as { message: string }).message : text;
    io.err(`qkdgw kme-sim ctl: ${command}: HTTP ${status}: ${msg}\n`);
    return Exit.FAILURE;
  }
  io.out(`${JSON.stringify(body, null, 2)}\n`);
  return Exit.OK;
}
