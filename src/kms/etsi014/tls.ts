/**
 * mTLS material and KME identity checks for the ETSI 014 client (ETSI GS QKD 014 s5.1,
 * etsi014.md C1, C2, A4, A16; field report BC-04).
 *
 * - The SAE client cert and key are parsed and matched at construction, so a wrong key
 *   is named at load time instead of surfacing as a handshake reset.
 * - Server verification is always on (rejectUnauthorized: true, no option to turn it
 *   off), TLS >= 1.2, ALPN http/1.1 only.
 * - The KME identity is checked against `serverName` (or the URL host) and, when set,
 *   an SPKI SHA-256 pin. TLS session resumption is disabled so both checks run on every
 *   connection (Node skips checkServerIdentity on a resumed session).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { spkiSha256Of } from '../../util/x509.js';
import { isIP } from 'node:net';
import tls, { type PeerCertificate, type TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { fromB64Strict } from '../../util/bytes.js';
import type { Logger } from '../../util/logger.js';
import { HANDSHAKE_PHASE, PIN_MISMATCH_CODE } from './error-map.js';

const cfg = (msg: string, details?: Record<string, unknown>): QkdgwError => new QkdgwError(ErrorCodes.KMS_CONFIG, msg, details);

/** Splits a PEM bundle into its CERTIFICATE blocks. */
function pemCerts(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

export interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
  /** subject of the SAE client certificate, for logs */
  clientSubject: string;
}

/**
 * Parses and cross-checks the PEM inputs. Throws KMS_CONFIG naming the problem: CA
 * bundle without a parseable certificate, unparseable client cert, unreadable or
 * encrypted key, or a key that does not belong to the client certificate (BC-04).
 * Logs a warning when the client certificate is outside its validity period.
 */
export function loadTlsMaterial(o: { ca: string; cert: string; key: string }, logger: Logger): TlsMaterial {
  const caBlocks = pemCerts(o.ca ?? '');
  if (caBlocks.length === 0) throw cfg('KME CA (ca) holds no PEM certificate');
  for (const [i, b] of caBlocks.entries()) {
    try {
      new X509Certificate(b);
    } catch (e) {
      throw cfg(`KME CA (ca) certificate #${i + 1} cannot be parsed: ${(e as Error).message}`);
    }
  }
  const certBlocks = pemCerts(o.cert ?? '');
  if (certBlocks.length === 0) throw cfg('SAE client certificate (cert) holds no PEM certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certBlocks[0]);
  } catch (e) {
    throw cfg(`SAE client certificate (cert) cannot be parsed: ${(e as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(o.key);
  } catch (e) {
    const m = (e as Error).message;
    throw cfg(
      /passphrase|encrypted/i.test(m)
        ? 'SAE client key (key) is encrypted; provide an unencrypted PEM key with file mode 0600'
        : `SAE client key (key) cannot be parsed: ${m}`,
    );
  }
  if (!leaf.checkPrivateKey(key)) {
    throw cfg(`SAE client key (key) does not match the SAE client certificate (cert, subject "${leaf.subject.replace(/\n/g, ', ')}")`, {
      subject: leaf.subject,
    });
  }
  const now = Date.now();
  if (now < Date.parse(leaf.validFrom) || now > Date.parse(leaf.validTo)) {
    logger.warn(
      { subject: leaf.subject, validFrom: leaf.validFrom, validTo: leaf.validTo },
      'SAE client certificate is outside its validity period; the KME will likely reject it',
    );
  }
  return { ca: o.ca, cert: o.cert, key: o.key, clientSubject: leaf.subject };
}

/** Decodes a pin given as base64 (optionally prefixed `sha256:`) of a 32-byte SHA-256. Throws KMS_CONFIG. */
export function parseSpkiPin(pin: string): Buffer {
  const b = fromB64Strict(pin.replace(/^sha256:/i, ''));
  if (b === null || b.length !== 32) throw cfg('spkiSha256 must be the base64 SHA-256 (32 bytes) of the KME certificate SPKI');
  return b;
}

/** base64 SHA-256 of the DER SubjectPublicKeyInfo of a certificate (PEM, DER or a PeerCertificate). */
export function spkiSha256(cert: string | Buffer): string {
  return spkiSha256Of(new X509Certificate(cert));
}

/** Strips IPv6 brackets from a URL hostname. */
export function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * checkServerIdentity hook: the KME certificate must name `expected` (DNS SAN / IP SAN,
 * Node's RFC 6125 rules) and, when a pin is set, carry that SPKI. Returns an Error with
 * code ERR_TLS_CERT_ALTNAME_INVALID or PIN_MISMATCH_CODE, which aborts the handshake
 * before any HTTP byte is sent (C1).
 */
export function kmeIdentityCheck(expected: string, pin: Buffer | undefined) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const err = tls.checkServerIdentity(expected, cert);
    if (err) return err;
    if (pin) {
      const got = Buffer.from(spkiSha256Of(new X509Certificate(cert.raw)), 'base64');
      if (!got.equals(pin)) {
        return Object.assign(new Error('KME certificate SPKI pin mismatch'), { code: PIN_MISMATCH_CODE });
      }
    }
    return undefined;
  };
}

export interface ConnectorOptions {
  /** called with every established (handshake finished on our side) socket */
  onSecure?: (socket: TLSSocket) => void;
  material: TlsMaterial;
  /** name or IP the KME certificate must carry */
  expectedIdentity: string;
  pin?: Buffer;
  connectTimeoutMs: number;
}

/**
 * An undici connector with the mTLS settings above. Errors raised before the TLS
 * handshake finished are tagged with HANDSHAKE_PHASE so a reset there is reported as a
 * TLS rejection, not a bare ECONNRESET (BC-04).
 */
export function makeConnector(o: ConnectorOptions): buildConnector.connector {
  const sni = isIP(o.expectedIdentity) ? undefined : o.expectedIdentity;
  const base = buildConnector({
    ca: o.material.ca,
    cert: o.material.cert,
    key: o.material.key,
    ...(sni ? { servername: sni } : {}),
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    checkServerIdentity: kmeIdentityCheck(o.expectedIdentity, o.pin),
    maxCachedSessions: 0,
    allowH2: false,
    timeout: o.connectTimeoutMs,
  } as buildConnector.BuildOptions);
  return (opts, cb) =>
    base(opts, (err, socket) => {
      if (err) {
        try {
          Object.defineProperty(err, HANDSHAKE_PHASE, { value: true });
        } catch {
          // frozen error object: the message mapping falls back to the connect wording
        }
        (cb as (e: Error, s: null) => void)(err, null);
      } else {
        o.onSecure?.(socket as TLSSocket);
        (cb as (e: null, s: typeof socket) => void)(null, socket);
      }
    });
}
