/**
 * What `check-config` and start-up verify inside the PEM files a gateway names, so that a
 * wrong file is a configuration error (exit 78) with the field's line, not a runtime
 * failure later: each file parses; each private key matches its certificate; the control
 * certificate names this gateway (`urn:qkdgw:<identity>`, protocol.md s2), carries the EKUs
 * its roles need, and chains to the control CA, which must not be the KME CA.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, identityOf } from '../util/x509.js';
import type { PathSegments } from './load-yaml.js';

export interface CertProblem {
  path: PathSegments;
  message: string;
}

export interface CertCheckInput {
  identity: string;
  kme: { ca: string; cert: string; key: string };
  control: { ca?: string; cert: string; key: string };
  /** Whether we are the initiator of some peer (needs clientAuth) / the responder of some (serverAuth). */
  initiatorOfSome: boolean;
  responderOfSome: boolean;
  /** Fields (`kme.cert`, `control.ca`, ...) whose files are already reported missing: not checked again. */
  skip?: ReadonlySet<string>;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function certs(path: string): X509Certificate[] {
  const text = readFileSync(path, 'utf8');
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new Error('holds no PEM certificate');
  return blocks.map((b) => new X509Certificate(b));
}

function key(path: string) {
  return createPrivateKey(readFileSync(path, 'utf8'));
}

/** Every problem found, each with the path of the field that names the file. Never throws. */
export function checkCertificates(c: CertCheckInput): CertProblem[] {
  const out: CertProblem[] = [];
  const load = <T>(path: PathSegments, what: string, fn: () => T): T | null => {
    if (c.skip?.has(path.join('.'))) return null;
    try {
      return fn();
    } catch (e) {
      out.push({ path, message: `${what}: ${(e as Error).message}` });
      return null;
    }
  };
  const kmeCa = load(['kme', 'ca'], 'not a usable CA certificate file', () => certs(c.kme.ca));
  const kmeCert = load(['kme', 'cert'], 'not a usable certificate', () => certs(c.kme.cert)[0]);
  const kmeKey = load(['kme', 'key'], 'not a usable private key', () => key(c.kme.key));
  if (kmeCert && kmeKey && !kmeCert.checkPrivateKey(kmeKey)) out.push({ path: ['kme', 'key'], message: 'this private key does not belong to kme.cert' });

  const ctlCa = c.control.ca === undefined ? null : load(['control', 'ca'], 'not a usable CA certificate file', () => certs(c.control.ca!));
  const ctlCert = load(['control', 'cert'], 'not a usable certificate', () => certs(c.control.cert)[0]);
  const ctlKey = load(['control', 'key'], 'not a usable private key', () => key(c.control.key));
  if (ctlCert && ctlKey && !ctlCert.checkPrivateKey(ctlKey)) out.push({ path: ['control', 'key'], message: 'this private key does not belong to control.cert' });
  if (ctlCert) {
    const id = identityOf(ctlCert);
    if ('error' in id) out.push({ path: ['control', 'cert'], message: `not a gateway control certificate: ${id.error}` });
    else if (id.identity !== c.identity) out.push({ path: ['control', 'cert'], message: `names identity ${id.identity}, but this gateway is ${c.identity}` });
    const eku = ctlCert.keyUsage ?? [];
    if (c.initiatorOfSome && !eku.includes(EKU_CLIENT_AUTH)) out.push({ path: ['control', 'cert'], message: 'lacks the clientAuth EKU this gateway needs as an initiator' });
    if (c.responderOfSome && !eku.includes(EKU_SERVER_AUTH)) out.push({ path: ['control', 'cert'], message: 'lacks the serverAuth EKU this gateway needs as a responder' });
    if (ctlCa && !ctlCa.some((ca) => ctlCert.checkIssued(ca) && ctlCert.verify(ca.publicKey))) {
      out.push({ path: ['control', 'cert'], message: 'is not issued by control.ca' });
    }
  }
  if (ctlCa && kmeCa && ctlCa.some((a) => kmeCa.some((b) => a.fingerprint256 === b.fingerprint256))) {
    out.push({ path: ['control', 'ca'], message: 'is also the KME CA: the control channel needs its own gateway-control CA (protocol.md s2)' });
  }
  return out;
}
