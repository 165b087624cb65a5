/**
 * Control-channel peer identity (protocol.md s2): exactly one SAN URI
 * `urn:qkdgw:<identity>` equal to the configured peer identity (SAN DNS never names a
 * peer), an EKU that includes clientAuth (peer is initiator) or serverAuth (peer is
 * responder), and, in pin mode, the SHA-256 of the certificate's SPKI.
 */
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, IDENTITY_URI_PREFIX, identityOf, sanUris } from '../../util/x509.js';
import { EKU_CLIENT_AUTH, EKU_SERVER_AUTH, identityOf, spkiSha256Of } from '../../util/x509.js';

/** base64 SHA-256 of the DER SubjectPublicKeyInfo. */
export const spkiSha256 = spkiSha256Of;

/** Normalises a pin as written in config (`sha256:BASE64` or bare base64). */
export function normalisePin(pin: string): string {
  return pin.startsWith('sha256:') ? pin.slice(7) : pin;
}

export interface PeerCheck {
  /** Identity the peer must prove. */
  expected: string;
  /** EKU the peer's certificate must include: clientAuth when it is our initiator, serverAuth when our responder. */
  eku: typeof EKU_CLIENT_AUTH | typeof EKU_SERVER_AUTH;
  /** SPKI pin (pin mode) instead of the control CA. */
  pin?: string;
}

/**
 * Checks a verified (or, in pin mode, pinned) peer certificate. Returns null when it is
 * acceptable, else the reason. Never throws.
 */
export function checkPeerCertificate(raw: Buffer | undefined, check: PeerCheck): string | null {
  if (!raw || raw.length === 0) return 'peer presented no certificate';
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(raw);
  } catch {
    return 'peer certificate does not parse';
  }
  if (check.pin !== undefined && spkiSha256(cert) !== normalisePin(check.pin)) return 'peer certificate SPKI does not match the pin';
  const id = identityOf(cert);
  if ('error' in id) return id.error;
  if (id.identity !== check.expected) return `peer identity ${id.identity} is not the expected ${check.expected}`;
  const eku = cert.keyUsage ?? [];
  if (!eku.includes(check.eku)) return `peer certificate EKU lacks ${check.eku === EKU_CLIENT_AUTH ? 'clientAuth' : 'serverAuth'}`;
  return null;
}

/** The identity a client certificate claims (for routing at the responder), or null. */
export function claimedIdentity(peer: PeerCertificate | null | undefined): string | null {
  if (!peer?.raw) return null;
  try {
    const id = identityOf(new X509Certificate(peer.raw));
    return 'identity' in id ? id.identity : null;
  } catch {
    return null;
  }
}
