/**
 * A complete local lab on 127.0.0.1: a KME simulator pair and two gateways (gw-a, the
 * entry side and initiator; gw-b, the exit side and responder), as YAML files written
 * next to a PKI made by `initPki`. The demo and the end-to-end tests use it.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { PkiLayout } from '../pki/index.js';

export interface LabPorts {
  kmeA: number;
  kmeB: number;
  controlB: number;
  dataB: number;
  service: number;
}

export interface LabOptions {
  dir: string;
  pki: PkiLayout;
  ports: LabPorts;
  /** Where gw-b sends the service `web`. */
  target: { host: string; port: number };
  rekeyAfterTime?: string;
  rekeyJitter?: string;
  hardLimitTime?: string;
  handshakeTimeout?: string;
  grace?: string;
  keyRateBps?: number;
  logLevel?: string;
}

export interface LabFiles {
  kmeSim: string;
  gwA: string;
  gwB: string;
}

/** Ports the OS reports free right now (a small race is accepted for a local lab). */
export async function freePorts(n: number): Promise<number[]> {
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

/** Writes kme-sim.yaml, gw-a.yaml and gw-b.yaml into `dir`; returns their paths. */
export function writeLabConfigs(o: LabOptions): LabFiles {
  const p = o.pki;
  const level = o.logLevel ?? 'info';
  const kmeSim = `# KME simulator pair for the qkdgw lab (generated)
link:
  key_rate_bps: ${o.keyRateBps ?? 10000}
  max_key_count: 1000
  initial_key_count: 20
sae_id_from: cn
log:
  level: ${level}
kmes:
  - kme_id: KME_A
    listen: 127.0.0.1:${o.ports.kmeA}
    cert: ${p.kmes.KME_A.cert}
    key: ${p.kmes.KME_A.key}
    ca: ${p.qkdCa.cert}
    saes: [gw-a]
  - kme_id: KME_B
    listen: 127.0.0.1:${o.ports.kmeB}
    cert: ${p.kmes.KME_B.cert}
    key: ${p.kmes.KME_B.key}
    ca: ${p.qkdCa.cert}
    saes: [gw-b]
`;
  const policy = `policies:
  default:
    qkd: required
    rekey_after_time: ${o.rekeyAfterTime ?? '3s'}
    rekey_jitter: ${o.rekeyJitter ?? '1s'}
    hard_limit_time: ${o.hardLimitTime ?? '30s'}
    handshake_timeout: ${o.handshakeTimeout ?? '5s'}
    grace: ${o.grace ?? '10s'}
log:
  level: ${level}
`;
  const gwA = `# gateway A: entry side, initiator of the pair (generated)
identity: gw-a
kme:
  url: https://127.0.0.1:${o.ports.kmeA}/api/v1
  ca: ${p.qkdCa.cert}
  cert: ${p.saes['gw-a'].cert}
  key: ${p.saes['gw-a'].key}
control:
  ca: ${p.controlCa.cert}
  cert: ${p.gateways['gw-a'].cert}
  key: ${p.gateways['gw-a'].key}
peers:
  - identity: gw-b
    control: 127.0.0.1:${o.ports.controlB}
    data: 127.0.0.1:${o.ports.dataB}
services:
  - name: web
    listen: 127.0.0.1:${o.ports.service}
    peer: gw-b
${policy}`;
  const gwB = `# gateway B: exit side, responder of the pair (generated)
identity: gw-b
kme:
  url: https://127.0.0.1:${o.ports.kmeB}/api/v1
  ca: ${p.qkdCa.cert}
  cert: ${p.saes['gw-b'].cert}
  key: ${p.saes['gw-b'].key}
control:
  listen: 127.0.0.1:${o.ports.controlB}
  ca: ${p.controlCa.cert}
  cert: ${p.gateways['gw-b'].cert}
  key: ${p.gateways['gw-b'].key}
data:
  listen: 127.0.0.1:${o.ports.dataB}
peers:
  - identity: gw-a
exports:
  - name: web
    target: ${o.target.host}:${o.target.port}
    peers: [gw-a]
${policy}`;
  const files = { kmeSim: join(o.dir, 'kme-sim.yaml'), gwA: join(o.dir, 'gw-a.yaml'), gwB: join(o.dir, 'gw-b.yaml') };
  writeFileSync(files.kmeSim, kmeSim, { mode: 0o600 });
  writeFileSync(files.gwA, gwA, { mode: 0o600 });
  writeFileSync(files.gwB, gwB, { mode: 0o600 });
  return files;
}
