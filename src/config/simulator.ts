/**
 * KME simulator configuration: `kme-sim.yaml` -> validated, defaulted, frozen
 * {@link SimulatorConfig} with absolute paths, and {@link readSimulatorPems} to turn it
 * into the simulator's own options (`KmeSimConfig`, src/kms/simulator/options.ts), whose
 * certificates are PEM text. Schema: `config/kme-sim.schema.json`; defaults equal the
 * simulator's `LINK_DEFAULTS`.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { ErrorCodes, QkdgwError } from '../errors.js';
import type { ExhaustionMode, KmeSimConfig } from '../kms/simulator/options.js';
import type { KmeQuirkOptions } from '../kms/simulator/quirks.js';
import { isLoopbackHost } from '../util/loopback.js';
import { checkKeyFileModes, fileProblem } from './files.js';
import { deepFreeze } from './freeze.js';
import { ConfigError, formatPath, type ConfigIssue } from './issues.js';
import { loadYamlFile, type JsonSchema, type PathSegments } from './load-yaml.js';
import { loadSchema } from './schemas.js';
import { formatHostPort, parseHostPort, type HostPort } from './units.js';

/** One KME of the pair. Paths are absolute; host/port absent = the simulator's default (127.0.0.1, any free port). */
export interface SimulatorKmeConfig {
  kmeId: string;
  host?: string;
  port?: number;
  cert: string;
  key: string;
  ca: string;
  saes: string[];
}

export interface SimulatorConfig {
  /** Absolute path of the file this came from. */
  file: string;
  /** Bits, bit/s and key counts; every field filled in (defaults = simulator LINK_DEFAULTS). */
  link: {
    keyRateBps: number;
    maxKeyCount: number;
    keySizeBits: number;
    minKeySizeBits: number;
    maxKeySizeBits: number;
    maxKeyPerRequest: number;
    initialKeyCount: number;
    maxPendingKeys: number;
    /** Present only when the file sets it: start with accrual paused. */
    paused?: boolean;
  };
  kmes: [SimulatorKmeConfig, SimulatorKmeConfig];
  saeIdFrom: 'cn' | 'san-uri';
  /** `exhaustion` always; the other quirk switches only when the file sets them. */
  quirks: KmeQuirkOptions & { exhaustion: ExhaustionMode };
  /** Startup faults for both KMEs; present only when the file has a `faults` section. */
  faults?: { latencyMs?: number };
  /** The test-only admin endpoint (loopback); present only when the file has an `admin` section. */
  admin?: { host: string; port: number };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' };
}

export interface LoadSimulatorOptions {
  /** Check that cert/ca/key files exist and key files are private (default true). */
  checkFiles?: boolean;
}

interface RawSimulator {
  link: {
    key_rate_bps: number;
    max_key_count: number;
    key_size_bits: number;
    min_key_size_bits: number;
    max_key_size_bits: number;
    max_key_per_request: number;
    initial_key_count: number;
    max_pending_keys: number;
    paused?: boolean;
  };
  kmes: Array<{ kme_id: string; listen?: string; cert: string; key: string; ca: string; saes: string[] }>;
  sae_id_from: 'cn' | 'san-uri';
  quirks: {
    exhaustion: string | number;
    unknown_id_404?: boolean;
    dec_keys_non_consuming?: boolean;
    size_as_bytes?: boolean;
    dec_keys_path_slave?: boolean;
    html_errors?: boolean;
  };
  faults?: { latency_ms?: number };
  admin?: { listen: string };
  log: { level: SimulatorConfig['log']['level'] };
}

/** YAML quirk names (snake_case) -> simulator option names. */
const QUIRK_YAML = {
  unknown_id_404: 'unknownId404',
  dec_keys_non_consuming: 'decKeysNonConsuming',
  size_as_bytes: 'sizeAsBytes',
  dec_keys_path_slave: 'decKeysPathSlave',
  html_errors: 'htmlErrors',
} as const;

/** The JSON Schema of the simulator YAML (config/kme-sim.schema.json). Do not mutate. */
export function simulatorSchema(): JsonSchema {
  return loadSchema('kme-sim.schema.json');
}

/**
 * Loads, validates, defaults and freezes the KME simulator configuration.
 * @throws ConfigError `QKDGW_E_CONFIG_READ` | `_EMPTY` | `_INVALID` with every issue;
 *   QkdgwError `QKDGW_E_FILE_PERMISSIONS` (a key file open to group/others) unless `checkFiles: false`.
 */
export function loadSimulatorConfig(path: string, opts: LoadSimulatorOptions = {}): SimulatorConfig {
  const doc = loadYamlFile(path, simulatorSchema());
  const raw = doc.data as RawSimulator;
  const issues: ConfigIssue[] = [];
  const push = (segs: PathSegments, message: string): void => {
    issues.push(doc.issue(segs, message));
  };
  const l = raw.link;

  for (const k of ['key_size_bits', 'min_key_size_bits', 'max_key_size_bits'] as const) {
    if (l[k] % 8 !== 0) push(['link', k], `key sizes must be a multiple of 8 bits, got ${l[k]}`);
  }
  if (!(l.min_key_size_bits <= l.key_size_bits && l.key_size_bits <= l.max_key_size_bits)) {
    push(['link', 'key_size_bits'], `must lie between min_key_size_bits (${l.min_key_size_bits}) and max_key_size_bits (${l.max_key_size_bits}) (etsi014.md S8)`);
  }
  if (l.initial_key_count > l.max_key_count) {
    push(['link', 'initial_key_count'], `must not exceed max_key_count (${l.max_key_count})`);
  }

  const listens: Array<{ segs: PathSegments; hp: HostPort }> = [];
  const kmes = raw.kmes.map((k, i): SimulatorKmeConfig => {
    let listen: HostPort | undefined;
    if (k.listen !== undefined) {
      const r = parseHostPort(k.listen, { listen: true });
      if (r.error !== undefined) push(['kmes', i, 'listen'], r.error);
      else {
        listen = r.value;
        listens.push({ segs: ['kmes', i, 'listen'], hp: r.value });
      }
    }
    return {
      kmeId: k.kme_id,
      ...(listen ? { host: listen.host, port: listen.port } : {}),
      cert: resolvePath(doc.dir, k.cert),
      key: resolvePath(doc.dir, k.key),
      ca: resolvePath(doc.dir, k.ca),
      saes: [...k.saes],
    };
  }) as [SimulatorKmeConfig, SimulatorKmeConfig];

  if (kmes[0].kmeId === kmes[1].kmeId) push(['kmes', 1, 'kme_id'], `the two KMEs need different IDs (both ${kmes[0].kmeId})`);
  kmes[1].saes.forEach((s, j) => {
    if (kmes[0].saes.includes(s)) push(['kmes', 1, 'saes', j], `SAE ${s} is attached to both KMEs; an SAE belongs to one KME`);
  });
  if (listens.length === 2 && listens[0].hp.port !== 0 && listens[0].hp.port === listens[1].hp.port && listens[0].hp.host === listens[1].hp.host) {
    push(listens[1].segs, `listen address ${formatHostPort(listens[1].hp)} collides with ${formatPath(listens[0].segs)}`);
  }

  let admin: HostPort | undefined;
  if (raw.admin !== undefined) {
    const r = parseHostPort(raw.admin.listen, { listen: true });
    if (r.error !== undefined) push(['admin', 'listen'], r.error);
    else if (!isLoopbackHost(r.value.host)) {
      push(['admin', 'listen'], `the admin endpoint has no authentication: it must listen on a loopback address (127.0.0.1, [::1] or localhost), got ${formatHostPort(r.value)}`);
    } else {
      admin = r.value;
      const clash = listens.find((x) => x.hp.port !== 0 && x.hp.port === r.value.port && x.hp.host === r.value.host);
      if (clash) push(['admin', 'listen'], `listen address ${formatHostPort(r.value)} collides with ${formatPath(clash.segs)}`);
    }
  }

  const quirks: SimulatorConfig['quirks'] = { exhaustion: String(raw.quirks.exhaustion) as ExhaustionMode };
  for (const [yamlName, name] of Object.entries(QUIRK_YAML) as Array<[keyof typeof QUIRK_YAML, (typeof QUIRK_YAML)[keyof typeof QUIRK_YAML]]>) {
    const v = raw.quirks[yamlName];
    if (v !== undefined) quirks[name] = v;
  }

  const checkFiles = opts.checkFiles !== false;
  if (checkFiles) {
    kmes.forEach((k, i) => {
      for (const f of ['cert', 'key', 'ca'] as const) {
        const problem = fileProblem(k[f]);
        if (problem !== null) push(['kmes', i, f], problem);
      }
    });
  }
  if (issues.length > 0) throw new ConfigError(ErrorCodes.CONFIG_INVALID, doc.file, issues);

  const cfg: SimulatorConfig = {
    file: doc.file,
    link: {
      keyRateBps: l.key_rate_bps,
      maxKeyCount: l.max_key_count,
      keySizeBits: l.key_size_bits,
      minKeySizeBits: l.min_key_size_bits,
      maxKeySizeBits: l.max_key_size_bits,
      maxKeyPerRequest: l.max_key_per_request,
      initialKeyCount: l.initial_key_count,
      maxPendingKeys: l.max_pending_keys,
      ...(l.paused !== undefined ? { paused: l.paused } : {}),
    },
    kmes,
    saeIdFrom: raw.sae_id_from,
    quirks,
    ...(raw.faults !== undefined ? { faults: raw.faults.latency_ms !== undefined ? { latencyMs: raw.faults.latency_ms } : {} } : {}),
    ...(admin ? { admin: { host: admin.host, port: admin.port } } : {}),
    log: { level: raw.log.level },
  };
  const frozen = deepFreeze(cfg);
  if (checkFiles) checkSimulatorSecretFiles(frozen);
  return frozen;
}

/**
 * Refuses the simulator's private key files when missing or open to group/others.
 * @throws QkdgwError `QKDGW_E_FILE_PERMISSIONS` | `QKDGW_E_CONFIG_READ`.
 */
export function checkSimulatorSecretFiles(cfg: Pick<SimulatorConfig, 'kmes'>): void {
  checkKeyFileModes(cfg.kmes.map((k, i) => ({ field: `kmes[${i}].key`, path: k.key })));
}

/**
 * Reads the certificate, key and CA files and returns the simulator's options
 * (`KmeSimConfig`: certificates as PEM text). The CLI adds clock and logger.
 * @throws QkdgwError `QKDGW_E_CONFIG_READ` naming the field and file when one cannot be
 *   read or holds no PEM block.
 */
export function readSimulatorPems(cfg: SimulatorConfig): KmeSimConfig {
  const pem = (field: string, path: string): string => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new QkdgwError(ErrorCodes.CONFIG_READ, `${field}: cannot read ${path} (${code})`, { field, path }, { cause: e });
    }
    if (!text.includes('-----BEGIN ')) {
      throw new QkdgwError(ErrorCodes.CONFIG_READ, `${field}: ${path} holds no PEM block (-----BEGIN ...)`, { field, path });
    }
    return text;
  };
  const endpoint = (i: 0 | 1): KmeSimConfig['kmes'][0] => {
    const k = cfg.kmes[i];
    return {
      kmeId: k.kmeId,
      ...(k.host !== undefined ? { host: k.host } : {}),
      ...(k.port !== undefined ? { port: k.port } : {}),
      cert: pem(`kmes[${i}].cert`, k.cert),
      key: pem(`kmes[${i}].key`, k.key),
      ca: pem(`kmes[${i}].ca`, k.ca),
      saes: [...k.saes],
    };
  };
  const kmes: KmeSimConfig['kmes'] = [endpoint(0), endpoint(1)];
  return {
    link: { ...cfg.link },
    kmes,
    saeIdFrom: cfg.saeIdFrom,
    quirks: { ...cfg.quirks },
    ...(cfg.faults ? { faults: { ...cfg.faults } } : {}),
    ...(cfg.admin ? { admin: { ...cfg.admin } } : {}),
  };
}
