/**
 * One X.509 v3 certificate, built with node-forge and signed with SHA-256/RSA.
 *
 * `initPki` uses this for every certificate it makes; tests use it directly to make odd
 * certificates (wrong CA, wrong SAN, wrong EKU, expired, strange SAE IDs).
 */
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { DEFAULT_RSA_BITS, generateRsaKeyPair, spkiSha256 } from './keys.js';

/** Default validity of every certificate, days (the CA/B Forum's old 825-day ceiling). */
export const DEFAULT_VALIDITY_DAYS = 825;
/** notBefore is back-dated by this much so that small clock skew between hosts does not bite. */
export const NOT_BEFORE_BACKDATE_MS = 60 * 60 * 1000;

const DAY_MS = 24 * 60 * 60 * 1000;

export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

/** The issuing CA: its certificate and private key, PEM. */
export interface IssuerPem {
  cert: string;
  key: string;
}

export interface IssueCertificateOptions {
  /** Subject commonName (the only subject attribute). Non-empty. */
  commonName: string;
  /** The issuing CA. Omit for a self-signed certificate (a root CA). */
  issuer?: IssuerPem;
  /**
   * true: basicConstraints CA:true and keyUsage keyCertSign+cRLSign.
   * false (default): CA:false and keyUsage digitalSignature+keyEncipherment.
   */
  ca?: boolean;
  /** SAN dNSName entries. */
  dnsNames?: string[];
  /** SAN iPAddress entries, IPv4 or IPv6 text. */
  ipAddresses?: string[];
  /** SAN uniformResourceIdentifier entries, written as given. */
  uris?: string[];
  /** extendedKeyUsage purposes; omitted or empty = no EKU extension at all. */
  extKeyUsage?: ExtKeyUsage[];
  /** Validity in days from `now` (default 825). Ignored when `notAfter` is given. */
  validityDays?: number;
  /** Default: `now` minus 1 hour. */
  notBefore?: Date;
  /** Default: `now` plus `validityDays`. May lie in the past (expired certificates for tests). */
  notAfter?: Date;
  /** The time "now" for the defaults above (default: the wall clock). */
  now?: Date;
  /** Reuse this private key (PEM, PKCS#8 or PKCS#1 RSA) instead of generating one. */
  keyPem?: string;
  /** RSA modulus length for a fresh key, bits (default 2048). */
  keyBits?: number;
}

/** A certificate and its private key, PEM, plus facts tests and configs often need. */
export interface IssuedCertificate {
  /** The certificate, PEM. */
  cert: string;
  /** The subject's private key, PEM (PKCS#8 when generated here). */
  key: string;
  /** Serial number, lowercase hex (positive, 16 bytes). */
  serialHex: string;
  /** base64 SHA-256 of the DER SubjectPublicKeyInfo (see {@link spkiSha256}). */
  spkiSha256: string;
}

/**
 * A random positive serial (RFC 5280 s4.1.2.2: positive, at most 20 octets). The first
 * byte is 0x01..0x7f, so the DER INTEGER is positive and minimally encoded.
 */
function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = b[0] & 0x7f || 0x01;
  return b.toString('hex');
}

function pkiError(message: string, cause?: unknown): QkdgwError {
  return new QkdgwError(ErrorCodes.PKI, message, undefined, cause === undefined ? undefined : { cause });
}

function parsePrivateKey(pem: string, what: string): forge.pki.rsa.PrivateKey {
  try {
    return forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  } catch (e) {
    throw pkiError(`${what}: not an unencrypted RSA private key in PEM`, e);
  }
}

function parseCertificate(pem: string, what: string): forge.pki.Certificate {
  try {
    return forge.pki.certificateFromPem(pem);
  } catch (e) {
    throw pkiError(`${what}: not an RSA certificate in PEM`, e);
  }
}

/**
 * forge parses UTF8String attribute values as raw UTF-8 bytes but encodes them again when
 * writing; decode first so that the issuer name is byte-identical to the CA's subject.
 */
function reusableAttributes(attrs: forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  return attrs.map((a) =>
    a.valueTagClass === (forge.asn1.Type.UTF8 as unknown) && typeof a.value === 'string'
      ? { ...a, value: forge.util.decodeUtf8(a.value) }
      : a,
  );
}

function buildExtensions(opts: IssueCertificateOptions, issuerCert: forge.pki.Certificate | null): object[] {
  const ext: object[] = [{ name: 'basicConstraints', cA: opts.ca === true, critical: true }];
  ext.push(
    opts.ca === true
      ? { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true }
      : { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
  );
  const eku = opts.extKeyUsage ?? [];
  if (eku.length > 0) {
    ext.push({ name: 'extKeyUsage', serverAuth: eku.includes('serverAuth'), clientAuth: eku.includes('clientAuth') });
  }
  const altNames: object[] = [];
  for (const d of opts.dnsNames ?? []) {
    if (typeof d !== 'string' || d.length === 0) throw pkiError('SAN DNS names must be non-empty strings');
    altNames.push({ type: 2, value: d });
  }
  for (const ip of opts.ipAddresses ?? []) {
    if (isIP(ip) === 0) throw pkiError(`SAN IP address is not an IPv4 or IPv6 address: ${JSON.stringify(ip)}`);
    altNames.push({ type: 7, ip });
  }
  for (const u of opts.uris ?? []) {
    if (typeof u !== 'string' || u.length === 0) throw pkiError('SAN URIs must be non-empty strings');
    altNames.push({ type: 6, value: u });
  }
  if (altNames.length > 0) ext.push({ name: 'subjectAltName', altNames });
  ext.push({ name: 'subjectKeyIdentifier' });
  if (issuerCert) {
    // Point at the issuer's own SKI so chain builders match it even for an external CA.
    const ski = issuerCert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
    const keyIdentifier = ski?.subjectKeyIdentifier
      ? forge.util.hexToBytes(ski.subjectKeyIdentifier)
      : issuerCert.generateSubjectKeyIdentifier().getBytes();
    ext.push({ name: 'authorityKeyIdentifier', keyIdentifier });
  }
  return ext;
}

/**
 * Issues one certificate (X.509 v3, SHA-256 with RSA, random positive 16-byte serial).
 * Self-signed when `issuer` is absent. A fresh RSA key (native keygen) is made unless
 * `keyPem` is given.
 *
 * Defaults: validity `now - 1 h` .. `now + 825 days`; leaf CA:false with
 * digitalSignature+keyEncipherment; CA cert CA:true with keyCertSign+cRLSign
 * (protocol.md s2 and the PKI task brief).
 *
 * @throws QkdgwError PKI on an empty commonName, a bad SAN entry, notAfter not after
 *   notBefore, an unparseable issuer certificate/key, or an issuer key that does not
 *   match the issuer certificate.
 */
export async function issueCertificate(opts: IssueCertificateOptions): Promise<IssuedCertificate> {
  if (typeof opts.commonName !== 'string' || opts.commonName.length === 0) {
    throw pkiError('certificate commonName must be a non-empty string');
  }
  const now = opts.now ?? new Date();
  const validityDays = opts.validityDays ?? DEFAULT_VALIDITY_DAYS;
  if (!(validityDays > 0)) throw pkiError(`validityDays must be positive, got ${validityDays}`);
  const notBefore = opts.notBefore ?? new Date(now.getTime() - NOT_BEFORE_BACKDATE_MS);
  const notAfter = opts.notAfter ?? new Date(now.getTime() + validityDays * DAY_MS);
  if (!(notAfter.getTime() > notBefore.getTime())) throw pkiError('certificate notAfter must be later than notBefore');

  let issuerCert: forge.pki.Certificate | null = null;
  let issuerKey: forge.pki.rsa.PrivateKey | null = null;
  if (opts.issuer) {
    issuerCert = parseCertificate(opts.issuer.cert, 'issuer certificate');
    issuerKey = parsePrivateKey(opts.issuer.key, 'issuer key');
    const issuerPub = issuerCert.publicKey as forge.pki.rsa.PublicKey;
    if (issuerPub.n.compareTo(issuerKey.n) !== 0 || issuerPub.e.compareTo(issuerKey.e) !== 0) {
      throw pkiError('issuer key does not match the issuer certificate');
    }
  }

  const keyPem = opts.keyPem ?? (await generateRsaKeyPair(opts.keyBits ?? DEFAULT_RSA_BITS)).privateKeyPem;
  const subjectKey = parsePrivateKey(keyPem, 'subject key');
  const publicKey = forge.pki.setRsaPublicKey(subjectKey.n, subjectKey.e);

  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const subject = [{ name: 'commonName', value: opts.commonName, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class }];
  cert.setSubject(subject);
  cert.setIssuer(issuerCert ? reusableAttributes(issuerCert.subject.attributes) : subject);
  try {
    cert.setExtensions(buildExtensions(opts, issuerCert));
    cert.sign(issuerKey ?? subjectKey, forge.md.sha256.create());
  } catch (e) {
    if (e instanceof QkdgwError) throw e;
    throw pkiError(`cannot build certificate for ${JSON.stringify(opts.commonName)}`, e);
  }
  const certPem = forge.pki.certificateToPem(cert);
  return { cert: certPem, key: keyPem, serialHex: cert.serialNumber, spkiSha256: spkiSha256(certPem) };
}
