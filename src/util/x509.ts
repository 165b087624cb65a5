/**
 * Small X.509 readers shared by the config checks and the control channel (node:crypto).
 */
import { createHash, type X509Certificate } from 'node:crypto';

export const IDENTITY_URI_PREFIX = 'urn:qkdgw:';
export const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** SAN URI entries of a certificate, parsed from Node's comma-separated form. */
export function sanUris(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  // Node quotes values that contain separators; such a value can never be a valid identity URI.
  return san
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/** The gateway identity named by the only `urn:qkdgw:` SAN URI (protocol.md s2), or why there is none. */
export function identityOf(cert: X509Certificate): { identity: string } | { error: string } {
  const uris = sanUris(cert);
  if (uris.length !== 1) return { error: `certificate must carry exactly one SAN URI, has ${uris.length}` };
  const u = uris[0];
  if (!u.startsWith(IDENTITY_URI_PREFIX)) return { error: `SAN URI ${JSON.stringify(u)} is not urn:qkdgw:<identity>` };
  const id = u.slice(IDENTITY_URI_PREFIX.length);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) return { error: 'SAN URI identity is not 1..64 of [A-Za-z0-9._-]' };
  return { identity: id };
}

/** base64 SHA-256 of the DER SubjectPublicKeyInfo (RFC 7469 style; the pins of protocol.md s2 and etsi014.md A4). */
export function spkiSha256Of(cert: X509Certificate): string {
  return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}
