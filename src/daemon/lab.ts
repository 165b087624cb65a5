/**
 * A complete local lab on 127.0.0.1: a KME simulator pair and two gateways (gw-a, the
 * entry side and initiator; gw-b, the exit side and responder), as YAML files written
 * next to a PKI made by `initPki`. The demo and the end-to-end tests use it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PkiLayout } from '../pki/index.js';

export interface LabOptions {
  dir: string;
  pki: PkiLayout;
  /** Where gw-b sends the service `web`. */
  target: { host: string; port: number };
  rekeyAfterTime?: string;
  rekeyJitter?: string;
  hardLimitTime?: string;
  handshakeTimeout?: string;
  grace?: string;
  keyRateBps?: number;
  logLevel?: string;
  // Options for lab scenarios such as the KME outage demo (issue 4). Each one left out
  // leaves its line out of the YAML, so the gateway's default applies and the files are
  // the same as without them.
  /** `policies.default.qkd` of both gateways (written as `required` when absent). */
  qkd?: 'required' | 'preferred' | 'off';
  /** `policies.default.degraded_lifetime`, a duration such as `2s`. */
  degradedLifetime?: string;
  /** `policies.default.recovery_checks`, a count. */
  recoveryChecks?: number;
  /** `policies.default.hold` and `carrier_hold`, durations (hold <= carrier_hold). */
  hold?: string;
  carrierHold?: string;
  /** `policies.default.retry_backoff_min` / `retry_backoff_max`, durations. */
  retryBackoffMin?: string;
  retryBackoffMax?: string;
  /** `kme.pool` of both gateways: keys fetched ahead by the initiator, 0..1024. */
  kmePool?: number;
  /** `kme.status_interval` of both gateways, a duration such as `500ms`. */
  kmeStatusInterval?: string;
  /** `kme.timeout` of both gateways, a duration. */
  kmeTimeout?: string;
  /** Log level of the gateways only (default: `logLevel`), e.g. `debug` for `kme_status_checked`. */
  gatewayLogLevel?: string;
  /** Simulator: start its test-only admin endpoint on 127.0.0.1, port 0 (`admin.listen`). */
  simAdmin?: boolean;
  /** Simulator: keys in the link pool at start (default 20). */
  initialKeyCount?: number;
  /** `admin.socket` of each gateway (for `qkdgw status`), by identity; absent: none. */
  adminSockets?: Partial<Record<'gw-a' | 'gw-b', string>>;
}

/** The `admin:` section for gateway `id`, or nothing. */
function adminSection(o: LabOptions, id: 'gw-a' | 'gw-b'): string {
  const p = o.adminSockets?.[id];
  return p ? `admin:\n  socket: ${p}\n` : '';
}

/** Addresses known once the simulator and gw-b listen (every listener binds port 0 first). */
export interface LabAddresses {
  kmeAUrl: string;
  kmeBUrl: string;
  controlB?: number;
  dataB?: number;
}

/**
 * Lab file paths. The lab is written in steps so that no port is guessed: the simulator
 * and gw-b listen on port 0 and report their ports, which go into the next file.
 */
export interface LabFiles {
  kmeSim: string;
  gwA: string;
  gwB: string;
}

export function labFiles(dir: string): LabFiles {
  return { kmeSim: join(dir, 'kme-sim.yaml'), gwA: join(dir, 'gw-a.yaml'), gwB: join(dir, 'gw-b.yaml') };
}

/** Step 1: the simulator pair, both KMEs on 127.0.0.1 port 0. */
export function writeSimConfig(o: LabOptions, ports: { kmeA: number; kmeB: number } = { kmeA: 0, kmeB: 0 }): string {
  const p = o.pki;
  const text = `# KME simulator pair for the qkdgw lab (generated)
link:
  key_rate_bps: ${o.keyRateBps ?? 10000}
  max_key_count: 1000
  initial_key_count: ${o.initialKeyCount ?? 20}
sae_id_from: cn
log:
  level: ${o.logLevel ?? 'info'}
${o.simAdmin ? 'admin:\n  listen: 127.0.0.1:0\n' : ''}kmes:
  - kme_id: KME_A
    listen: 127.0.0.1:${ports.kmeA}
    cert: ${p.kmes.KME_A.cert}
    key: ${p.kmes.KME_A.key}
    ca: ${p.qkdCa.cert}
    saes: [gw-a]
  - kme_id: KME_B
    listen: 127.0.0.1:${ports.kmeB}
    cert: ${p.kmes.KME_B.cert}
    key: ${p.kmes.KME_B.key}
    ca: ${p.qkdCa.cert}
    saes: [gw-b]
`;
  const f = labFiles(o.dir).kmeSim;
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

/** `    name: value` lines for the options that are set, in the order given. */
function optional(indent: string, fields: Array<[string, string | number | undefined]>): string {
  return fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${indent}${k}: ${v}\n`).join('');
}

/** The optional lines of the `kme` section (nothing when none of those options is set). */
function kmeExtras(o: LabOptions): string {
  return optional('  ', [
    ['timeout', o.kmeTimeout],
    ['pool', o.kmePool],
    ['status_interval', o.kmeStatusInterval],
  ]);
}

function policy(o: LabOptions): string {
  return `policies:
  default:
    qkd: ${o.qkd ?? 'required'}
    rekey_after_time: ${o.rekeyAfterTime ?? '3s'}
    rekey_jitter: ${o.rekeyJitter ?? '1s'}
    hard_limit_time: ${o.hardLimitTime ?? '30s'}
    handshake_timeout: ${o.handshakeTimeout ?? '5s'}
    grace: ${o.grace ?? '10s'}
${optional('    ', [
  ['degraded_lifetime', o.degradedLifetime],
  ['recovery_checks', o.recoveryChecks],
  ['retry_backoff_min', o.retryBackoffMin],
  ['retry_backoff_max', o.retryBackoffMax],
  ['hold', o.hold],
  ['carrier_hold', o.carrierHold],
])}log:
  level: ${o.gatewayLogLevel ?? o.logLevel ?? 'info'}
`;
}

/** Step 2: gw-b, the exit side and responder; control and data on port 0. */
export function writeGwBConfig(o: LabOptions, a: LabAddresses, ports: { control: number; data: number } = { control: 0, data: 0 }): string {
  const p = o.pki;
  const text = `# gateway B: exit side, responder of the pair (generated)
identity: gw-b
kme:
  url: ${a.kmeBUrl}
  ca: ${p.qkdCa.cert}
  cert: ${p.saes['gw-b'].cert}
  key: ${p.saes['gw-b'].key}
${kmeExtras(o)}control:
  listen: 127.0.0.1:${ports.control}
  ca: ${p.controlCa.cert}
  cert: ${p.gateways['gw-b'].cert}
  key: ${p.gateways['gw-b'].key}
data:
  listen: 127.0.0.1:${ports.data}
peers:
  - identity: gw-a
exports:
  - name: web
    target: ${o.target.host}:${o.target.port}
    peers: [gw-a]
${policy(o)}${adminSection(o, 'gw-b')}`;
  const f = labFiles(o.dir).gwB;
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

/** Step 3: gw-a, the entry side and initiator; service `web` on port 0 (or `servicePort`). */
export function writeGwAConfig(o: LabOptions, a: LabAddresses, servicePort = 0): string {
  const p = o.pki;
  const text = `# gateway A: entry side, initiator of the pair (generated)
identity: gw-a
kme:
  url: ${a.kmeAUrl}
  ca: ${p.qkdCa.cert}
  cert: ${p.saes['gw-a'].cert}
  key: ${p.saes['gw-a'].key}
${kmeExtras(o)}control:
  ca: ${p.controlCa.cert}
  cert: ${p.gateways['gw-a'].cert}
  key: ${p.gateways['gw-a'].key}
peers:
  - identity: gw-b
    control: 127.0.0.1:${a.controlB}
    data: 127.0.0.1:${a.dataB}
services:
  - name: web
    listen: 127.0.0.1:${servicePort}
    peer: gw-b
${policy(o)}${adminSection(o, 'gw-a')}`;
  const f = labFiles(o.dir).gwA;
  writeFileSync(f, text, { mode: 0o600 });
  return f;
}

/** Ports the OS reports free right now (e.g. a port known to refuse). Racy as a way to pick listen ports: labs bind port 0. */
export async function freePorts(n: number): Promise<number[]> {
  const { createServer } = await import('node:net');
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
