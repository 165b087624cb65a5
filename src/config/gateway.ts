/**
 * Gateway configuration: `qkdgw.yaml` -> validated, defaulted, unit-normalised, frozen
 * {@link GatewayConfig}. The schema is `config/qkdgw.schema.json`; defaults are
 * protocol.md s6 and s2; field names follow config-sketch.md (snake_case in YAML,
 * camelCase here, durations in ms, sizes in bytes, paths absolute).
 */
import { resolve as resolvePath } from 'node:path';
import { ErrorCodes } from '../errors.js';
import { fromB64Strict } from '../util/bytes.js';
import { auditFileProblem, checkKeyFileModes, fileProblem, keyFileModeProblem } from './files.js';
import { deepFreeze } from './freeze.js';
import { checkGatewayRules, isInitiator } from './gateway-rules.js';
import { ConfigError, type ConfigIssue } from './issues.js';
import { applySchemaDefaults, loadYamlFile, type JsonSchema, type LoadedYaml, type PathSegments } from './load-yaml.js';
import { loadSchema } from './schemas.js';
import { checkCertificates } from './certificates.js';
import { parseDuration, parseHostPort, parseSize, type HostPort } from './units.js';

export type { HostPort } from './units.js';

/** Session policy (protocol.md s6). Times in ms, sizes in bytes, counts per epoch and direction. */
export interface Policy {
  /** Suite numbers in preference order (protocol.md s3); values 1 | 2, unique, non-empty. Default [1]. */
  suites: number[];
  /** Default 'required'. */
  qkd: 'required' | 'preferred' | 'off';
  /** `preferred`: a degraded epoch rekeys after this, ms. Default 60 000 (protocol.md s6). */
  degradedLifetimeMs: number;
  /** `preferred`: consecutive good KME status checks before a QKD epoch again. Default 3. */
  recoveryChecks: number;
  /** key_forecast_low when the KME store is forecast dry sooner than this, ms. Default 600 000. */
  forecastAlarmMs: number;
  /** Default 120 000. */
  rekeyAfterTimeMs: number;
  /** Upper bound of the random 0..jitter added to rekeyAfterTimeMs. Default 10 000. */
  rekeyJitterMs: number;
  /** Default 2^24. */
  rekeyAfterRecords: number;
  /** Default 64 GiB. */
  rekeyAfterBytes: number;
  /** Default 180 000. */
  hardLimitTimeMs: number;
  /** Default 2^25. */
  hardLimitRecords: number;
  /** INIT sent -> tag_R verified. Default 5 000. */
  handshakeTimeoutMs: number;
  /** Handshake retry backoff bounds, ms. Defaults 500 and 30 000 (protocol.md s6). */
  retryBackoffMinMs: number;
  retryBackoffMaxMs: number;
  /** Previous-epoch grace past its hard limit. Default 10 000. */
  graceMs: number;
  /** Hold with no epoch to seal under. Default 120 000. */
  holdMs: number;
  /** Default 300 000. */
  carrierHoldMs: number;
  /** Default 2^20. */
  maxFlowsPerEpoch: number;
  /** PING after this long with nothing sent (protocol.md s2). Default 10 000. */
  keepaliveMs: number;
  /** Control connection dead after this long with nothing received. Default 30 000. */
  deadAfterMs: number;
}

export interface PeerConfig {
  /** The peer's SAE ID. */
  identity: string;
  /** Its control address; present whenever we are its initiator. */
  control?: HostPort;
  /** Its data (carrier) address; present whenever a service uses it. */
  data?: HostPort;
  /** Key into GatewayConfig.policies. Default 'default'. */
  policy: string;
  /** `sha256:<base64 of 32 bytes>`: SPKI SHA-256 pin of its control certificate. */
  pin?: string;
}

export interface GatewayConfig {
  /** Absolute path of the file this came from. */
  file: string;
  /** Our SAE ID (protocol.md s1). */
  identity: string;
  kme: {
    /** https URL of the ETSI 014 API base, no trailing slash, e.g. `https://kme-a:8443/api/v1`. */
    url: string;
    /** Absolute paths of PEM files. */
    ca: string;
    cert: string;
    key: string;
    /** Total deadline per KME call. Default 5 000. */
    timeoutMs: number;
    serverName?: string;
    /** `sha256:<base64>` pin of the KME server public key. */
    spkiSha256?: string;
    /** Keys fetched ahead (initiator side). Default 3. */
    pool: number;
    /** Default 10 000. */
    statusIntervalMs: number;
    compat: { decKeysPathSae: 'master' | 'self' };
  };
  control: { listen?: HostPort; ca?: string; cert: string; key: string };
  data: { listen?: HostPort; /** per second per source address; default 100 */ maxNewConnectionsPerSource: number };
  peers: PeerConfig[];
  services: Array<{ name: string; listen: HostPort; peer: string }>;
  exports: Array<{ name: string; target: HostPort; peers: string[] }>;
  /** Always has 'default'. */
  policies: Record<string, Policy>;
  crypto: { backend: 'auto' | 'native' | 'node' | 'noble' };
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' };
  /** READY=1 waits at most this long for every peer's first epoch, ms. Default 30 000. */
  startup: { readyWaitMs: number };
  /** Graceful stop: open flows may run this long after the listeners closed, ms. Default 20 000. */
  shutdown: { drainTimeoutMs: number };
  /** Prometheus /metrics, /healthz, /readyz on a loopback address. */
  metrics?: { listen: HostPort };
  /** Unix socket (mode 0600) for `qkdgw status`. Absolute path. */
  admin?: { socket: string };
  /** Hash-chained key audit trail (JSON lines). Absolute path. */
  audit?: { file: string };
}

export interface LoadGatewayOptions {
  /**
   * Check referenced files: that every ca/cert/key file exists, and (checkSecretFiles)
   * that key files are not open to group/others. Default true; `false` for examples.
   */
  checkFiles?: boolean;
  /** `$CREDENTIALS_DIRECTORY` of a systemd service: see KeyFileOptions in files.ts. */
  credentialsDir?: string;
  /**
   * With checkFiles: also parse the certificates and keys and check that they match, that
   * the control certificate names this gateway with the right EKUs and chains to
   * control.ca (src/config/certificates.ts). Default true.
   */
  checkCertificates?: boolean;
}

// --- raw (validated YAML) shapes -----------------------------------------------------

interface RawPolicy {
  suites: number[];
  qkd: Policy['qkd'];
  degraded_lifetime: string;
  recovery_checks: number;
  forecast_alarm: string;
  retry_backoff_min: string;
  retry_backoff_max: string;
  rekey_after_time: string;
  rekey_jitter: string;
  rekey_after_records: number;
  rekey_after_bytes: string;
  hard_limit_time: string;
  hard_limit_records: number;
  handshake_timeout: string;
  grace: string;
  hold: string;
  carrier_hold: string;
  max_flows_per_epoch: number;
  keepalive: string;
  dead_after: string;
}

/** @internal The validated YAML, snake_case, defaults applied. */
export interface RawGateway {
  identity: string;
  kme: {
    url: string;
    ca: string;
    cert: string;
    key: string;
    timeout: string;
    server_name?: string;
    spki_sha256?: string;
    pool: number;
    status_interval: string;
    compat: { dec_keys_path_sae: 'master' | 'self' };
  };
  control: { listen?: string; ca?: string; cert: string; key: string };
  data: { listen?: string; max_new_connections_per_source: number };
  peers: Array<{ identity: string; control?: string; data?: string; policy: string; pin?: string }>;
  services: Array<{ name: string; listen: string; peer: string }>;
  exports: Array<{ name: string; target: string; peers: string[] }>;
  policies: Record<string, RawPolicy>;
  crypto: { backend: GatewayConfig['crypto']['backend'] };
  log: { level: GatewayConfig['log']['level'] };
  startup: { ready_wait: string };
  shutdown: { drain_timeout: string };
  metrics?: { listen: string };
  admin?: { socket: string };
  audit?: { file: string };
}

/** Durations that must be > 0 (a zero timer would fire at once or never rekey). */
const POSITIVE_DURATIONS = new Set(['rekey_after_time', 'hard_limit_time', 'handshake_timeout', 'keepalive', 'dead_after', 'degraded_lifetime', 'retry_backoff_min', 'retry_backoff_max']);

let policySchema: JsonSchema | undefined;

/** The JSON Schema of the gateway YAML (config/qkdgw.schema.json). Do not mutate. */
export function gatewaySchema(): JsonSchema {
  return loadSchema('qkdgw.schema.json');
}

/**
 * Loads, validates, defaults and freezes the gateway configuration.
 * @param path the YAML file; relative paths inside it resolve against its folder.
 * @returns a deeply frozen GatewayConfig (times ms, sizes bytes, paths absolute).
 * @throws ConfigError `QKDGW_E_CONFIG_READ` | `_EMPTY` | `_INVALID` with every issue found
 *   (schema issues first, alone; then cross-field rules and file checks together), each
 *   located (file:line:col, field path); `QKDGW_E_FILE_PERMISSIONS` when the only problem is
 *   a private key file open to group or others (skipped with `checkFiles: false`).
 */
export function loadGatewayConfig(path: string, opts: LoadGatewayOptions = {}): GatewayConfig {
  const doc = loadYamlFile(path, gatewaySchema());
  const raw = doc.data as RawGateway;
  const issues: ConfigIssue[] = [];
  const cfg = normaliseGateway(raw, doc, issues);
  if (issues.length === 0) checkGatewayRules(cfg, raw, doc, issues);
  const checkFiles = opts.checkFiles !== false;
  /** Private key files open to group or others (QKDGW_E_FILE_PERMISSIONS when nothing else is wrong). */
  const permissionIssues: ConfigIssue[] = [];
  if (checkFiles) {
    const fields: Array<[PathSegments, string | undefined]> = [
      [['kme', 'ca'], cfg.kme.ca],
      [['kme', 'cert'], cfg.kme.cert],
      [['kme', 'key'], cfg.kme.key],
      [['control', 'ca'], cfg.control.ca],
      [['control', 'cert'], cfg.control.cert],
      [['control', 'key'], cfg.control.key],
    ];
    // Certificates are checked when the file's shape and rules are right, also when some
    // files are missing: the ones present are checked, not the missing ones again.
    const rulesOk = issues.length === 0;
    const missing = new Set<string>();
    for (const [segs, p] of fields) {
      const problem = p === undefined ? null : fileProblem(p);
      if (problem !== null) {
        issues.push(doc.issue(segs, problem));
        missing.add(segs.join('.'));
      } else if (p !== undefined && segs[1] === 'key') {
        // Located like every other problem, and reported with them (not after they are fixed).
        const loose = keyFileModeProblem(p, { credentialsDir: opts.credentialsDir });
        if (loose !== null) permissionIssues.push(doc.issue(segs, loose));
      }
    }
    if (cfg.audit) {
      const problem = auditFileProblem(cfg.audit.file);
      if (problem !== null) issues.push(doc.issue(['audit', 'file'], problem));
    }
    if (rulesOk && opts.checkCertificates !== false) {
      const roles = cfg.peers.map((p) => isInitiator(cfg.identity, p.identity));
      for (const pr of checkCertificates({ identity: cfg.identity, kme: cfg.kme, control: cfg.control, initiatorOfSome: roles.includes(true), responderOfSome: roles.includes(false), skip: missing })) {
        issues.push(doc.issue(pr.path, pr.message));
      }
    }
  }
  if (issues.length > 0) throw new ConfigError(ErrorCodes.CONFIG_INVALID, doc.file, [...issues, ...permissionIssues]);
  if (permissionIssues.length > 0) throw new ConfigError(ErrorCodes.FILE_PERMISSIONS, doc.file, permissionIssues);
  return deepFreeze(cfg);
}

/**
 * Refuses the gateway's private key files (kme.key, control.key) when they are missing
 * or open to group/others (config-sketch.md). Separate so a reload can re-run it.
 * @throws QkdgwError `QKDGW_E_FILE_PERMISSIONS` (message names each file and the `chmod 600` to run),
 *   `QKDGW_E_CONFIG_READ` (a key file is missing or unreadable).
 */
export function checkSecretFiles(cfg: Pick<GatewayConfig, 'kme' | 'control'>, credentialsDir?: string): void {
  checkKeyFileModes(
    [
      { field: 'kme.key', path: cfg.kme.key },
      { field: 'control.key', path: cfg.control.key },
    ],
    { credentialsDir },
  );
}

/** The `default` policy as protocol.md s6 defines it (suites [1]). */
export function defaultPolicy(): Policy {
  return toPolicy(defaultRawPolicy(), ['policies', 'default'], null, []);
}

function defaultRawPolicy(): RawPolicy {
  policySchema ??= { $defs: gatewaySchema().$defs, $ref: '#/$defs/policy' };
  return applySchemaDefaults(policySchema, {} as RawPolicy);
}

function normaliseGateway(raw: RawGateway, doc: LoadedYaml, issues: ConfigIssue[]): GatewayConfig {
  const file = (p: string): string => resolvePath(doc.dir, p);
  const dur = (segs: PathSegments, text: string, positive = false): number => {
    const r = parseDuration(text);
    if (r.error !== undefined) {
      issues.push(doc.issue(segs, r.error));
      return 0;
    }
    if (positive && r.value === 0) issues.push(doc.issue(segs, 'expected a duration greater than 0'));
    return r.value;
  };
  const atLeast = (segs: PathSegments, value: number, min: number, why: string): number => {
    if (value > 0 && value < min) issues.push(doc.issue(segs, `must be at least ${min} ms: ${why}`));
    return value;
  };
  const addr = (segs: PathSegments, text: string, listen: boolean): HostPort => {
    const r = parseHostPort(text, { listen });
    if (r.error !== undefined) {
      issues.push(doc.issue(segs, r.error));
      return { host: '', port: 0 };
    }
    return r.value;
  };
  const pin = (segs: PathSegments, text: string | undefined): string | undefined => {
    if (text === undefined) return undefined;
    const b = fromB64Strict(text.slice('sha256:'.length));
    if (b === null || b.length !== 32) issues.push(doc.issue(segs, 'pin must be sha256: followed by the canonical base64 of 32 bytes'));
    return text;
  };

  const policies: Record<string, Policy> = {};
  for (const [name, p] of Object.entries(raw.policies)) policies[name] = toPolicy(p, ['policies', name], doc, issues);
  if (!Object.hasOwn(policies, 'default')) policies.default = defaultPolicy();

  const k = raw.kme;
  const cfg: GatewayConfig = {
    file: doc.file,
    identity: raw.identity,
    kme: {
      url: kmeUrl(k.url, doc, issues),
      ca: file(k.ca),
      cert: file(k.cert),
      key: file(k.key),
      timeoutMs: dur(['kme', 'timeout'], k.timeout, true),
      ...(k.server_name !== undefined ? { serverName: k.server_name } : {}),
      ...(k.spki_sha256 !== undefined ? { spkiSha256: pin(['kme', 'spki_sha256'], k.spki_sha256) } : {}),
      pool: k.pool,
      statusIntervalMs: atLeast(['kme', 'status_interval'], dur(['kme', 'status_interval'], k.status_interval, true), 100, 'a faster status poll only floods the KME and the log'),
      compat: { decKeysPathSae: k.compat.dec_keys_path_sae },
    },
    control: {
      ...(raw.control.listen !== undefined ? { listen: addr(['control', 'listen'], raw.control.listen, true) } : {}),
      ...(raw.control.ca !== undefined ? { ca: file(raw.control.ca) } : {}),
      cert: file(raw.control.cert),
      key: file(raw.control.key),
    },
    data: {
      ...(raw.data.listen !== undefined ? { listen: addr(['data', 'listen'], raw.data.listen, true) } : {}),
      maxNewConnectionsPerSource: raw.data.max_new_connections_per_source,
    },
    peers: raw.peers.map((p, i) => ({
      identity: p.identity,
      ...(p.control !== undefined ? { control: addr(['peers', i, 'control'], p.control, false) } : {}),
      ...(p.data !== undefined ? { data: addr(['peers', i, 'data'], p.data, false) } : {}),
      policy: p.policy,
      ...(p.pin !== undefined ? { pin: pin(['peers', i, 'pin'], p.pin) } : {}),
    })),
    services: raw.services.map((s, i) => ({ name: s.name, listen: addr(['services', i, 'listen'], s.listen, true), peer: s.peer })),
    exports: raw.exports.map((e, i) => ({ name: e.name, target: addr(['exports', i, 'target'], e.target, false), peers: [...e.peers] })),
    policies,
    crypto: { backend: raw.crypto.backend },
    log: { level: raw.log.level },
    startup: { readyWaitMs: dur(['startup', 'ready_wait'], raw.startup.ready_wait, true) },
    shutdown: { drainTimeoutMs: dur(['shutdown', 'drain_timeout'], raw.shutdown.drain_timeout, true) },
    ...(raw.metrics ? { metrics: { listen: addr(['metrics', 'listen'], raw.metrics.listen, true) } } : {}),
    ...(raw.admin ? { admin: { socket: file(raw.admin.socket) } } : {}),
    ...(raw.audit ? { audit: { file: file(raw.audit.file) } } : {}),
  };
  return cfg;
}

/**
 * Converts one validated policy. `doc` null means the built-in defaults, which cannot
 * fail; a failure there is a bug in the schema's defaults, hence a plain Error.
 */
function toPolicy(p: RawPolicy, base: PathSegments, doc: LoadedYaml | null, issues: ConfigIssue[]): Policy {
  const report = (key: string, message: string): void => {
    if (!doc) throw new Error(`built-in policy default ${key}: ${message}`);
    issues.push(doc.issue([...base, key], message));
  };
  const d = (key: keyof RawPolicy): number => {
    const r = parseDuration(p[key] as string);
    if (r.error !== undefined) {
      report(key, r.error);
      return 0;
    }
    if (POSITIVE_DURATIONS.has(key) && r.value === 0) report(key, 'expected a duration greater than 0');
    return r.value;
  };
  const size = parseSize(p.rekey_after_bytes);
  if (size.error !== undefined) report('rekey_after_bytes', size.error);
  else if (size.value === 0) report('rekey_after_bytes', 'expected a size greater than 0');
  return {
    suites: [...p.suites],
    qkd: p.qkd,
    degradedLifetimeMs: d('degraded_lifetime'),
    recoveryChecks: p.recovery_checks,
    forecastAlarmMs: d('forecast_alarm'),
    rekeyAfterTimeMs: d('rekey_after_time'),
    rekeyJitterMs: d('rekey_jitter'),
    rekeyAfterRecords: p.rekey_after_records,
    rekeyAfterBytes: size.value ?? 0,
    hardLimitTimeMs: d('hard_limit_time'),
    hardLimitRecords: p.hard_limit_records,
    handshakeTimeoutMs: d('handshake_timeout'),
    retryBackoffMinMs: d('retry_backoff_min'),
    retryBackoffMaxMs: d('retry_backoff_max'),
    graceMs: d('grace'),
    holdMs: d('hold'),
    carrierHoldMs: d('carrier_hold'),
    maxFlowsPerEpoch: p.max_flows_per_epoch,
    keepaliveMs: d('keepalive'),
    deadAfterMs: d('dead_after'),
  };
}

function kmeUrl(text: string, doc: LoadedYaml, issues: ConfigIssue[]): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    issues.push(doc.issue(['kme', 'url'], `expected an https:// URL, got ${JSON.stringify(text)}`));
    return text;
  }
  const problems: string[] = [];
  if (u.protocol !== 'https:') problems.push('the scheme must be https');
  if (u.username !== '' || u.password !== '') problems.push('credentials in the URL are not accepted (the KME authenticates our client certificate)');
  if (u.search !== '' || u.hash !== '') problems.push('a query or fragment is not accepted');
  if (u.hostname === '') problems.push('a host is required');
  if (problems.length > 0) issues.push(doc.issue(['kme', 'url'], `${problems.join('; ')}, got ${JSON.stringify(text)}`));
  return u.href.replace(/\/+$/, '');
}
