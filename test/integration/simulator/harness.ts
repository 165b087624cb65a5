/**
 * Test harness for the KME simulator: the shared test PKI, a few extra client
 * certificates, a started simulator on 127.0.0.1 (ports chosen by the OS) driven by a
 * ManualClock, and a raw mTLS client built on `https.request` (deliberately not the
 * gateway's ETSI client, which is tested against this simulator separately).
 */
import https from 'node:https';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { issueCertificate } from '../../../src/pki/index.js';
import {
  startKmeSimulator,
  type KmeLinkOptions,
  type KmeSimOptions,
  type KmeSimulator,
} from '../../../src/kms/simulator/index.js';
import { makeTestPki, type TestdirHost, type TestPki } from '../../helpers/pki.js';

export interface ClientCert {
  cert: string;
  key: string;
}

export interface Resp {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** Parsed body, or undefined when empty or not JSON. */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The client resumed a cached TLS session on this request's connection. */
  sessionReused: boolean;
}

export interface CallOptions {
  /** Raw body text; objects are JSON-encoded. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Use a fresh connection (no keep-alive reuse, no TLS session cache). */
  fresh?: boolean;
  /** Use this agent instead of the harness's per-identity keep-alive agent. */
  agent?: https.Agent;
}

export interface Harness {
  pki: TestPki;
  sim: KmeSimulator;
  clock: ManualClock;
  logger: MemoryLogger;
  /** Client identities by name: gw-a, gw-b, gw-c, stranger, rogue, plus any extra. */
  certs: Record<string, ClientCert>;
  /**
   * One HTTP/1.1 request over mTLS to KME `kme` (0 = KME_A, 1 = KME_B) as client `as`
   * (a name in `certs`, or null for no client certificate). `path` is relative to
   * `/api/v1`, e.g. `/keys/gw-b/status`.
   */
  call(kme: 0 | 1, as: string | null, method: string, path: string, opts?: CallOptions): Promise<Resp>;
  /** Master `master` (at its KME) gets keys for `slave`; returns the parsed container. */
  encKeys(master: string, slave: string, body?: unknown): Promise<Resp>;
}

/** Who hangs off which KME unless a test says otherwise. */
export const DEFAULT_SAES: [string[], string[]] = [['gw-a'], ['gw-b', 'gw-c']];

export interface HarnessOptions {
  link?: KmeLinkOptions;
  saes?: [string[], string[]];
  saeIdFrom?: KmeSimOptions['saeIdFrom'];
  quirks?: KmeSimOptions['quirks'];
  /** Extra client certificates under the QKD CA: name -> { cn, uris }. */
  extraCerts?: Record<string, { cn: string; uris?: string[] }>;
}

let rogueCa: Promise<ClientCert> | null = null;
let rogueLeaf: Promise<ClientCert> | null = null;
/** Client certificates by CN and SANs: signing costs ~40 ms, so each is made once per process. */
const certCache = new Map<string, Promise<ClientCert>>();

export async function startHarness(t: TestdirHost & { teardown(fn: () => unknown): void }, o: HarnessOptions = {}): Promise<Harness> {
  const pki = await makeTestPki(t);
  const clientCert = (cn: string, uris: string[] = [`urn:etsi:qkd:sae:${encodeURIComponent(cn)}`]): Promise<ClientCert> => {
    const k = JSON.stringify([cn, uris]);
    let c = certCache.get(k);
    if (!c) {
      c = pki.issue('qkd', { commonName: cn, uris, extKeyUsage: ['clientAuth'] });
      certCache.set(k, c);
    }
    return c;
  };
  rogueCa ??= pki.issue('none', { commonName: 'rogue CA', ca: true });
  const rogue = await rogueCa;
  const certs: Record<string, ClientCert> = {
    'gw-a': { cert: pki.saes['gw-a'].cert, key: pki.saes['gw-a'].key },
    'gw-b': { cert: pki.saes['gw-b'].cert, key: pki.saes['gw-b'].key },
    'gw-c': await clientCert('gw-c'),
    stranger: await clientCert('stranger'),
    // Same name as a real SAE, issued by a CA the KME does not trust.
    rogue: await (rogueLeaf ??= issueCertificate({
      commonName: 'gw-a',
      issuer: rogue,
      keyPem: pki.saes['gw-a'].key,
      uris: ['urn:etsi:qkd:sae:gw-a'],
      extKeyUsage: ['clientAuth'],
    })),
  };
  for (const [name, c] of Object.entries(o.extraCerts ?? {})) certs[name] = await clientCert(c.cn, c.uris);

  const clock = new ManualClock(1_000_000);
  const logger = new MemoryLogger();
  const saes = o.saes ?? DEFAULT_SAES;
  const sim = await startKmeSimulator({
    link: o.link,
    saeIdFrom: o.saeIdFrom,
    quirks: o.quirks,
    clock,
    logger,
    kmes: [
      { kmeId: 'KME_A', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: saes[0] },
      { kmeId: 'KME_B', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: saes[1] },
    ],
  });
  const agents = new Map<string, https.Agent>();
  const agentFor = (as: string | null, kme: number): https.Agent => {
    const k = `${as ?? '-'}@${kme}`;
    let a = agents.get(k);
    if (!a) {
      const c = as === null ? undefined : certs[as];
      if (as !== null && !c) throw new Error(`no client cert named ${as}`);
      a = new https.Agent({ keepAlive: true, maxSockets: 256, ca: pki.qkdCa.cert, cert: c?.cert, key: c?.key });
      agents.set(k, a);
    }
    return a;
  };
  t.teardown(async () => {
    for (const a of agents.values()) a.destroy();
    await sim.close();
  });

  const call: Harness['call'] = (kme, as, method, path, opts = {}) => {
    const info = sim.kmes[kme];
    const body =
      opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    const headers: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers };
    const c = as === null ? undefined : certs[as];
    return new Promise<Resp>((resolve, reject) => {
      const req = https.request(
        {
          host: info.host,
          port: info.port,
          method,
          path: `/api/v1${path}`,
          headers,
          ...(opts.fresh
            ? { agent: false, ca: pki.qkdCa.cert, cert: c?.cert, key: c?.key }
            : { agent: opts.agent ?? agentFor(as, kme) }),
        },
        (res) => {
          const sessionReused = (res.socket as import('node:tls').TLSSocket).isSessionReused();
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = text.length > 0 ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, sessionReused });
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };
  const kmeOf = (sae: string): 0 | 1 => (saes[0].includes(sae) ? 0 : 1);
  const encKeys: Harness['encKeys'] = (master, slave, body = {}) =>
    call(kmeOf(master), master, 'POST', `/keys/${encodeURIComponent(slave)}/enc_keys`, { body });
  return { pki, sim, clock, logger, certs, call, encKeys };
}

export const UUID_V4_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Keys accrue at keyRateBps; this many ms give `keys` keys of `bits` bits at `rate`. */
export const msFor = (keys: number, bits = 256, rate = 10_000): number => Math.ceil((keys * bits * 1000) / rate);
