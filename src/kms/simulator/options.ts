/**
 * Options of the KME simulator pair, their defaults and their validation.
 *
 * `KmeSimConfig` is plain JSON (strings, numbers, arrays), so a YAML file maps onto it
 * once the CLI has replaced certificate paths by PEM text; `KmeSimOptions` adds the
 * injectable clock and logger.
 */
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { KeyLedger } from './key-ledger.js';
import { ErrorCodes, QkdgwError, isQkdgwError } from '../../errors.js';
import { checkFaults, FAULT_DEFAULTS, type KmeFaultOptions, type KmeFaults } from './faults.js';
import { isLoopbackHost } from '../../util/loopback.js';
import { checkQuirks, QUIRK_DEFAULTS, type ExhaustionMode, type KmeQuirkOptions, type KmeQuirks } from './quirks.js';

export type { ExhaustionMode } from './quirks.js';

/** The simulated QKD link shared by the two KMEs. Bits and bits per second throughout. */
export interface KmeLinkOptions {
  /** Secret key rate of the link, bit/s (default 10000). 0 = no new key material. */
  keyRateBps?: number;
  /** Pool capacity in keys of `keySizeBits` = Status `max_key_count` (default 1000). */
  maxKeyCount?: number;
  /** Default key size, bits = Status `key_size` (default 256). Multiple of 8. */
  keySizeBits?: number;
  /** Status `min_key_size`, bits (default 64). Multiple of 8. */
  minKeySizeBits?: number;
  /** Status `max_key_size`, bits (default 1024). Multiple of 8. */
  maxKeySizeBits?: number;
  /** Status `max_key_per_request` (default 128); also the most key_IDs one `dec_keys` may name. */
  maxKeyPerRequest?: number;
  /** Keys of `keySizeBits` in the pool at start (default 0), <= maxKeyCount. */
  initialKeyCount?: number;
  /**
   * Keys delivered to a master but not yet fetched by the slave are held at most this
   * many (default 100000); beyond it the oldest is dropped with a warning, so a slave
   * that never calls `dec_keys` cannot grow memory without bound.
   */
  maxPendingKeys?: number;
  /** Start with accrual paused (default false); `control.setLink({ paused: false })` resumes. */
  paused?: boolean;
}

/** One KME of the pair. Certificates are PEM text. */
export interface KmeEndpointOptions {
  /** KME ID, reported as `source_KME_ID`/`target_KME_ID`. */
  kmeId: string;
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0 = any free port). */
  port?: number;
  /** Server certificate (PEM; chain allowed). */
  cert: string;
  /** Server private key (PEM). */
  key: string;
  /** CA(s) that client (SAE) certificates must chain to: the QKD-network CA (PEM). */
  ca: string;
  /** SAE IDs attached to this KME; only these may call it. */
  saes: readonly string[];
}

/** Where the test-only admin HTTP endpoint listens (admin-server.ts). Loopback only. */
export interface KmeAdminOptions {
  /** Loopback address: `127.0.0.0/8`, `::1` or `localhost` (default 127.0.0.1). */
  host?: string;
  /** Port (default 0 = any free port; the bound one is in `KmeSimulator.admin`). */
  port?: number;
}

/** The JSON/YAML-shaped part of the options. */
export interface KmeSimConfig {
  link?: KmeLinkOptions;
  /** The two ends of the link. Their SAE sets must be disjoint. */
  kmes: [KmeEndpointOptions, KmeEndpointOptions];
  /**
   * Which client-certificate field names the calling SAE (etsi014.md A4, S4):
   * `cn` (default) = subject commonName; `san-uri` = the one SAN URI
   * `urn:etsi:qkd:sae:<percent-encoded SAE ID>`.
   */
  saeIdFrom?: 'cn' | 'san-uri';
  /** Behaviour switches that imitate other KMEs (client tests only; quirks.ts). Default all off. */
  quirks?: KmeQuirkOptions;
  /**
   * Faults active from the start (faults.ts), for both KMEs unless `kme` names one;
   * `control.reset()` returns to them. Default none.
   */
  faults?: KmeFaultOptions;
  /** Start the admin HTTP endpoint (admin-server.ts). Default: no admin endpoint. */
  admin?: KmeAdminOptions;
}

export interface KmeSimOptions extends KmeSimConfig {
  /** Time source for key accrual and delivery timestamps (default systemClock). */
  clock?: Clock;
  /** Receives `kme_delivery` lines and diagnostics (default silent). */
  logger?: Logger;
  /**
   * TEST ONLY: receives the bytes of every key issued (key-ledger.ts). Default: the file
   * ledger named by `QKDGW_TEST_KEY_LEDGER` when set, else none. Stays the caller's.
   */
  keyLedger?: KeyLedger;
}

/** The options after validation, with every default filled in. */
export interface ResolvedLink {
  keyRateBps: number;
  maxKeyCount: number;
  keySizeBits: number;
  minKeySizeBits: number;
  maxKeySizeBits: number;
  maxKeyPerRequest: number;
  initialKeyCount: number;
  maxPendingKeys: number;
}
export interface ResolvedEndpoint {
  kmeId: string;
  host: string;
  port: number;
  cert: string;
  key: string;
  ca: string;
  saes: readonly string[];
}
export interface ResolvedKmeSimConfig {
  link: ResolvedLink;
  kmes: [ResolvedEndpoint, ResolvedEndpoint];
  saeIdFrom: 'cn' | 'san-uri';
  /** Every quirk, defaults filled in: the startup state `control.reset()` returns to. */
  quirks: KmeQuirks;
  /** Startup faults by KME ID, defaults filled in. */
  faults: Record<string, KmeFaults>;
  /** Start with accrual paused. */
  paused: boolean;
  /** Admin endpoint to start, or null for none. */
  admin: { host: string; port: number } | null;
}

export const LINK_DEFAULTS: ResolvedLink = {
  keyRateBps: 10_000,
  maxKeyCount: 1000,
  keySizeBits: 256,
  minKeySizeBits: 64,
  maxKeySizeBits: 1024,
  maxKeyPerRequest: 128,
  initialKeyCount: 0,
  maxPendingKeys: 100_000,
};

function fail(path: string, problem: string): never {
  throw new QkdgwError(ErrorCodes.KMS_CONFIG, `kme simulator option ${path}: ${problem}`, { path });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function int(v: unknown, path: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(path, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length === 0) fail(path, 'must be a non-empty string');
  return v;
}

function checkKnown(obj: Record<string, unknown>, path: string, known: string[]): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) fail(`${path}.${k}`, 'unknown option');
}

function resolveLink(v: unknown): ResolvedLink {
  if (v === undefined) return { ...LINK_DEFAULTS };
  if (!isObject(v)) fail('link', 'must be an object');
  checkKnown(v, 'link', [...Object.keys(LINK_DEFAULTS), 'paused']);
  const d = LINK_DEFAULTS;
  const bits = (name: keyof ResolvedLink, dflt: number): number => {
    const n = int(v[name], `link.${name}`, dflt, 8, 1 << 20);
    if (n % 8 !== 0) fail(`link.${name}`, 'must be a multiple of 8 bits');
    return n;
  };
  const l: ResolvedLink = {
    keyRateBps: int(v.keyRateBps, 'link.keyRateBps', d.keyRateBps, 0, 1e12),
    maxKeyCount: int(v.maxKeyCount, 'link.maxKeyCount', d.maxKeyCount, 0, 1e9),
    keySizeBits: bits('keySizeBits', d.keySizeBits),
    minKeySizeBits: bits('minKeySizeBits', d.minKeySizeBits),
    maxKeySizeBits: bits('maxKeySizeBits', d.maxKeySizeBits),
    maxKeyPerRequest: int(v.maxKeyPerRequest, 'link.maxKeyPerRequest', d.maxKeyPerRequest, 1, 1_000_000),
    initialKeyCount: int(v.initialKeyCount, 'link.initialKeyCount', d.initialKeyCount, 0, 1e9),
    maxPendingKeys: int(v.maxPendingKeys, 'link.maxPendingKeys', d.maxPendingKeys, 1, 1e9),
  };
  // etsi014.md S8: min_key_size <= key_size <= max_key_size must hold in every Status.
  if (!(l.minKeySizeBits <= l.keySizeBits && l.keySizeBits <= l.maxKeySizeBits)) {
    fail('link.keySizeBits', 'must lie between minKeySizeBits and maxKeySizeBits');
  }
  if (l.initialKeyCount > l.maxKeyCount) fail('link.initialKeyCount', 'must not exceed maxKeyCount');
  return l;
}

function resolveEndpoint(v: unknown, i: number): ResolvedEndpoint {
  const p = `kmes[${i}]`;
  if (!isObject(v)) fail(p, 'must be an object');
  checkKnown(v, p, ['kmeId', 'host', 'port', 'cert', 'key', 'ca', 'saes']);
  if (!Array.isArray(v.saes)) fail(`${p}.saes`, 'must be an array of SAE IDs');
  const saes = v.saes.map((s, j) => str(s, `${p}.saes[${j}]`));
  if (new Set(saes).size !== saes.length) fail(`${p}.saes`, 'has duplicates');
  return {
    kmeId: str(v.kmeId, `${p}.kmeId`),
    host: v.host === undefined ? '127.0.0.1' : str(v.host, `${p}.host`),
    port: int(v.port, `${p}.port`, 0, 0, 65535),
    cert: str(v.cert, `${p}.cert`),
    key: str(v.key, `${p}.key`),
    ca: str(v.ca, `${p}.ca`),
    saes,
  };
}

/**
 * Validates simulator options (from code or parsed YAML) and fills in the defaults.
 * Unknown option names are errors, so a typo in a config file does not pass silently.
 * @throws QkdgwError KMS_CONFIG naming the offending option path
 */
export function resolveKmeSimConfig(input: unknown): ResolvedKmeSimConfig {
  if (!isObject(input)) fail('(root)', 'must be an object');
  checkKnown(input, '(root)', ['link', 'kmes', 'saeIdFrom', 'quirks', 'faults', 'admin', 'clock', 'logger', 'keyLedger']);
  if (!Array.isArray(input.kmes) || input.kmes.length !== 2) fail('kmes', 'must list exactly two KMEs');
  const kmes: [ResolvedEndpoint, ResolvedEndpoint] = [resolveEndpoint(input.kmes[0], 0), resolveEndpoint(input.kmes[1], 1)];
  if (kmes[0].kmeId === kmes[1].kmeId) fail('kmes[1].kmeId', 'the two KMEs need different IDs');
  for (const s of kmes[0].saes) if (kmes[1].saes.includes(s)) fail('kmes[1].saes', `SAE ${s} is attached to both KMEs`);
  const saeIdFrom = input.saeIdFrom ?? 'cn';
  if (saeIdFrom !== 'cn' && saeIdFrom !== 'san-uri') fail('saeIdFrom', "must be 'cn' or 'san-uri'");
  const link = resolveLink(input.link);
  const paused = isObject(input.link) && input.link.paused !== undefined ? input.link.paused : false;
  if (typeof paused !== 'boolean') fail('link.paused', 'must be true or false');
  const quirks: KmeQuirks = { ...QUIRK_DEFAULTS, ...asOption(() => checkQuirks(input.quirks, 'quirks')) };
  const kmeIds = kmes.map((k) => k.kmeId);
  const f = asOption(() => checkFaults(input.faults, kmeIds, 'faults'));
  const faults: Record<string, KmeFaults> = {};
  for (const id of kmeIds) faults[id] = { ...FAULT_DEFAULTS, ...(f.kmes.includes(id) ? f.set : {}) };
  return { link, kmes, saeIdFrom, quirks, faults, paused, admin: resolveAdmin(input.admin) };
}

/** Re-labels the run-time input checks' errors as option errors. */
function asOption<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isQkdgwError(e)) fail(String(e.details?.path ?? '(root)'), e.message.replace(/^[^:]*: /, ''));
    throw e;
  }
}

function resolveAdmin(v: unknown): ResolvedKmeSimConfig['admin'] {
  if (v === undefined) return null;
  if (!isObject(v)) fail('admin', 'must be an object');
  checkKnown(v, 'admin', ['host', 'port']);
  const host = v.host === undefined ? '127.0.0.1' : str(v.host, 'admin.host');
  // The endpoint has no authentication: it must be unreachable from other hosts.
  if (!isLoopbackHost(host)) fail('admin.host', `must be a loopback address (127.0.0.1, ::1 or localhost), got ${JSON.stringify(host)}: the admin endpoint has no authentication`);
  return { host, port: int(v.port, 'admin.port', 0, 0, 65535) };
}
