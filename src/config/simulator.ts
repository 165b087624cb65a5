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
  };
  kmes: [SimulatorKmeConfig, SimulatorKmeConfig];
  saeIdFrom: 'cn' | 'san-uri';
  quirks: { exhaustion: ExhaustionMode };
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
  };
  kmes: Array<{ kme_id: string; listen?: string; cert: string; key: string; ca: string; saes: string[] }>;
  sae_id_from: 'cn' | 'san-uri';
  quirks: { exhaustion: string | number };
  log: { level: SimulatorConfig['log']['level'] };
}

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
    },
    kmes,
    saeIdFrom: raw.sae_id_from,
    quirks: { exhaustion: String(raw.quirks.exhaustion) as ExhaustionMode },
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
    quirks: { exhaustion: cfg.quirks.exhaustion },
  };
}
