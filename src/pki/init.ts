/**
 * `initPki`: the two certificate authorities of a qkdgw deployment and every leaf.
 *
 * protocol.md s2 requires the gateway-control CA to issue no KME or SAE certificates, so
 * there are two roots:
 * - QKD-network CA (`qkd-ca.*`): KME server certificates `kme-<KME_ID>.*` and SAE client
 *   certificates `sae-<SAE_ID>.*` (ETSI GS QKD 014 s5.1 mutual authentication).
 * - Gateway-control CA (`control-ca.*`): gateway control-channel certificates `gw-<ID>.*`
 *   with exactly one SAN URI `urn:qkdgw:<ID>` and EKU serverAuth+clientAuth.
 */
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { ensurePkiDir, pathExists, PKI_MODES, writeNewFile } from './files.js';
import { issueCertificate, type IssuedCertificate, type IssuerPem } from './issue.js';
import { generateRsaKeyPair } from './keys.js';

/** Subject CN of the QKD-network root. */
export const QKD_CA_NAME = 'qkdgw QKD-network CA';
/** Subject CN of the gateway-control root. */
export const CONTROL_CA_NAME = 'qkdgw gateway-control CA';
/** SAN URI prefix naming an SAE in its client certificate (used by the KME simulator's `san-uri` mode). */
export const SAE_URI_PREFIX = 'urn:etsi:qkd:sae:';
/** SAN URI prefix naming a gateway in its control certificate (protocol.md s2). */
export const GATEWAY_URI_PREFIX = 'urn:qkdgw:';

/** IDs that become part of file names: protocol.md s1 identity alphabet and length. */
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

export interface InitPkiOptions {
  /** Output folder; created with mode 0700 when missing. */
  outDir: string;
  /** Gateway identities (= their SAE IDs, protocol.md s1): one `gw-<ID>` control certificate each. */
  gateways: readonly string[];
  /** KME IDs: one `kme-<ID>` server certificate each. */
  kmes: readonly string[];
  /** SAE IDs: one `sae-<ID>` client certificate each. Default: the gateway IDs. */
  saes?: readonly string[];
  /** Validity of every certificate, days (default 825). */
  validityDays?: number;
  /** Extra names for the KME server certificates: IPs go to SAN IP, the rest to SAN DNS. */
  hosts?: readonly string[];
  /** Overwrite existing files (default false: refuse and write nothing). */
  force?: boolean;
  /** The time the validity period is computed from (default: the wall clock). */
  now?: Date;
}

/** Absolute paths of one certificate and its private key. */
export interface PkiFilePair {
  cert: string;
  key: string;
}

/** Where everything was written: absolute paths by role and ID. */
export interface PkiLayout {
  outDir: string;
  /** QKD-network CA: trust anchor for KME servers (SAE side) and SAE clients (KME side). */
  qkdCa: PkiFilePair;
  /** Gateway-control CA: trust anchor for the control channel. */
  controlCa: PkiFilePair;
  /** By KME ID: `kme-<ID>.pem/.key`. */
  kmes: Record<string, PkiFilePair>;
  /** By SAE ID: `sae-<ID>.pem/.key`. */
  saes: Record<string, PkiFilePair>;
  /** By gateway identity: `gw-<ID>.pem/.key`. */
  gateways: Record<string, PkiFilePair>;
}

function checkIds(kind: string, ids: unknown): string[] {
  if (!Array.isArray(ids)) throw new QkdgwError(ErrorCodes.PKI, `${kind} must be an array of IDs`);
  const seen = new Set<string>();
  for (const id of ids) {
    if (typeof id !== 'string' || !ID_RE.test(id)) {
      throw new QkdgwError(ErrorCodes.PKI, `${kind}: ${JSON.stringify(id)} is not a valid ID (1..64 of [A-Za-z0-9._-])`);
    }
    if (seen.has(id)) throw new QkdgwError(ErrorCodes.PKI, `${kind}: duplicate ID ${id}`);
    seen.add(id);
  }
  return ids as string[];
}

function pairIn(dir: string, stem: string, ext = '.pem'): PkiFilePair {
  return { cert: join(dir, `${stem}${ext}`), key: join(dir, `${stem}.key`) };
}

/** Computes every path without touching the disk. */
function planLayout(outDir: string, gateways: string[], kmes: string[], saes: string[]): PkiLayout {
  const layout: PkiLayout = {
    outDir,
    qkdCa: pairIn(outDir, 'qkd-ca'),
    controlCa: pairIn(outDir, 'control-ca'),
    kmes: {},
    saes: {},
    gateways: {},
  };
  for (const id of kmes) layout.kmes[id] = pairIn(outDir, `kme-${id}`);
  for (const id of saes) layout.saes[id] = pairIn(outDir, `sae-${id}`);
  for (const id of gateways) layout.gateways[id] = pairIn(outDir, `gw-${id}`);
  return layout;
}

function allPairs(layout: PkiLayout): PkiFilePair[] {
  return [
    layout.qkdCa,
    layout.controlCa,
    ...Object.values(layout.kmes),
    ...Object.values(layout.saes),
    ...Object.values(layout.gateways),
  ];
}

/**
 * Creates both CAs and every KME, SAE and gateway certificate in `outDir`.
 *
 * Files: `qkd-ca.pem/.key`, `control-ca.pem/.key`, `kme-<KME_ID>.pem/.key`,
 * `sae-<SAE_ID>.pem/.key`, `gw-<ID>.pem/.key`. Keys are RSA 2048 (PKCS#8 PEM, mode
 * 0600), certificates SHA-256/RSA (PEM, mode 0644), validity `now - 1 h` ..
 * `now + validityDays`.
 * - KME: CN = KME ID; SAN DNS `localhost` + IP `127.0.0.1` + IP `::1` + `hosts`; EKU serverAuth.
 * - SAE: CN = SAE ID; SAN URI `urn:etsi:qkd:sae:<SAE_ID>`; EKU clientAuth.
 * - Gateway: CN = ID; exactly one SAN URI `urn:qkdgw:<ID>`, no SAN DNS; EKU serverAuth+clientAuth.
 *
 * Every target path is checked before anything is generated, so a refusal writes nothing.
 * @returns absolute paths of everything written
 * @throws QkdgwError PKI on an invalid/duplicate ID or host, an existing file without
 *   `force`, or an I/O failure
 */
export async function initPki(opts: InitPkiOptions): Promise<PkiLayout> {
  const gateways = checkIds('gateways', opts.gateways);
  const kmes = checkIds('kmes', opts.kmes);
  const saes = checkIds('saes', opts.saes ?? opts.gateways);
  const hosts = opts.hosts ?? [];
  for (const h of hosts) {
    if (typeof h !== 'string' || h.length === 0 || /[\s,]/.test(h)) {
      throw new QkdgwError(ErrorCodes.PKI, `hosts: ${JSON.stringify(h)} is not a host name or IP address`);
    }
  }
  if (typeof opts.outDir !== 'string' || opts.outDir.length === 0) {
    throw new QkdgwError(ErrorCodes.PKI, 'outDir must be a non-empty path');
  }
  const outDir = resolve(opts.outDir);
  const layout = planLayout(outDir, gateways, kmes, saes);
  const force = opts.force === true;

  if (!force) {
    for (const p of allPairs(layout)) {
      for (const file of [p.cert, p.key]) {
        if (await pathExists(file)) {
          throw new QkdgwError(ErrorCodes.PKI, `${file} already exists; use --force (qkdgw pki init) to overwrite the PKI`, { path: file });
        }
      }
    }
  }

  const common = { validityDays: opts.validityDays, now: opts.now ?? new Date() };
  // All leaf keys are generated in parallel on the thread pool; signing is cheap next to keygen.
  const leafCount = kmes.length + saes.length + gateways.length;
  const [qkdCa, controlCa, leafKeys] = await Promise.all([
    issueCertificate({ ...common, commonName: QKD_CA_NAME, ca: true }),
    issueCertificate({ ...common, commonName: CONTROL_CA_NAME, ca: true }),
    Promise.all(Array.from({ length: leafCount }, () => generateRsaKeyPair())),
  ]);
  let k = 0;
  const nextKey = (): string => leafKeys[k++].privateKeyPem;
  const qkdIssuer: IssuerPem = { cert: qkdCa.cert, key: qkdCa.key };
  const controlIssuer: IssuerPem = { cert: controlCa.cert, key: controlCa.key };

  const kmeDns = ['localhost', ...hosts.filter((h) => isIP(h) === 0)];
  const kmeIps = ['127.0.0.1', '::1', ...hosts.filter((h) => isIP(h) !== 0)];
  const writes: Array<[PkiFilePair, IssuedCertificate]> = [
    [layout.qkdCa, qkdCa],
    [layout.controlCa, controlCa],
  ];
  for (const id of kmes) {
    const c = await issueCertificate({
      ...common,
      commonName: id,
      issuer: qkdIssuer,
      keyPem: nextKey(),
      dnsNames: [...new Set(kmeDns)],
      ipAddresses: [...new Set(kmeIps)],
      extKeyUsage: ['serverAuth'],
    });
    writes.push([layout.kmes[id], c]);
  }
  for (const id of saes) {
    const c = await issueCertificate({
      ...common,
      commonName: id,
      issuer: qkdIssuer,
      keyPem: nextKey(),
      uris: [`${SAE_URI_PREFIX}${id}`],
      extKeyUsage: ['clientAuth'],
    });
    writes.push([layout.saes[id], c]);
  }
  for (const id of gateways) {
    const c = await issueCertificate({
      ...common,
      commonName: id,
      issuer: controlIssuer,
      keyPem: nextKey(),
      uris: [`${GATEWAY_URI_PREFIX}${id}`],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    writes.push([layout.gateways[id], c]);
  }

  await ensurePkiDir(outDir);
  for (const [pair, issued] of writes) {
    await writeNewFile(pair.key, issued.key, PKI_MODES.privateKey, force);
    await writeNewFile(pair.cert, issued.cert, PKI_MODES.certificate, force);
  }
  return layout;
}
