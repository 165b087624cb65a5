/**
 * Who is calling: the SAE ID from the verified TLS client certificate, never from the
 * URL, a header or the body (ETSI GS QKD 014 s4 and s5.1; etsi014.md A3, A4, S4).
 *
 * The field is configurable: the subject commonName (`cn`, what most simulators do) or
 * the one SAN URI of the form `urn:etsi:qkd:sae:<SAE ID, percent-encoded>` (`san-uri`,
 * what `initPki` writes). The SAN is read from the DER directly, because Node's
 * `subjectaltname` string needs escaping rules to parse, and forge's certificate parser
 * refuses non-RSA keys.
 */
import type { TLSSocket } from 'node:tls';
import forge from 'node-forge';

/** SAN URI prefix naming an SAE (same as `SAE_URI_PREFIX` in src/pki). */
export const SAE_URI_PREFIX = 'urn:etsi:qkd:sae:';

/** forge's typings lack the options form of fromDer; strict DER, BIT STRINGs left opaque. */
const fromDer = (bytes: string | forge.util.ByteBuffer): forge.asn1.Asn1 =>
  (forge.asn1.fromDer as unknown as (b: string | forge.util.ByteBuffer, o: object) => forge.asn1.Asn1)(bytes, {
    strict: true,
    parseAllBytes: true,
    decodeBitStrings: false,
  });

const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const GN_URI_TAG = 6;

/**
 * All uniformResourceIdentifier entries of the subjectAltName extension of a DER
 * certificate, in order. Returns null when the certificate cannot be parsed.
 */
export function sanUrisFromDer(der: Buffer): string[] | null {
  try {
    const asn1 = forge.asn1;
    const cert = fromDer(forge.util.createBuffer(der.toString('binary')));
    const tbs = (cert.value as forge.asn1.Asn1[])[0];
    const extsWrapper = (tbs.value as forge.asn1.Asn1[]).find(
      (n) => n.tagClass === asn1.Class.CONTEXT_SPECIFIC && n.type === 3,
    );
    if (!extsWrapper) return [];
    const exts = (extsWrapper.value as forge.asn1.Asn1[])[0].value as forge.asn1.Asn1[];
    const uris: string[] = [];
    for (const ext of exts) {
      const parts = ext.value as forge.asn1.Asn1[];
      if (asn1.derToOid(parts[0].value as string) !== OID_SUBJECT_ALT_NAME) continue;
      const octets = parts[parts.length - 1];
      const names = fromDer(octets.value as string);
      for (const gn of names.value as forge.asn1.Asn1[]) {
        if (gn.tagClass === asn1.Class.CONTEXT_SPECIFIC && gn.type === GN_URI_TAG && typeof gn.value === 'string') {
          uris.push(gn.value);
        }
      }
    }
    return uris;
  } catch {
    return null;
  }
}

/**
 * The SAE ID named by a SAN URI list: exactly one `urn:etsi:qkd:sae:` URI whose rest
 * percent-decodes to a non-empty string; otherwise null.
 */
export function saeIdFromSanUris(uris: string[]): string | null {
  const mine = uris.filter((u) => u.startsWith(SAE_URI_PREFIX));
  if (mine.length !== 1) return null;
  try {
    const id = decodeURIComponent(mine[0].slice(SAE_URI_PREFIX.length));
    return id.length > 0 ? id : null;
  } catch {
    return null;
  }
}

const cache = new WeakMap<TLSSocket, string | null>();

/**
 * The calling SAE's ID, or null when the connection has no verified client certificate
 * or the configured field is missing, repeated or empty. Cached per TLS connection
 * (keep-alive carries many requests on one).
 */
export function callerSaeId(socket: TLSSocket, mode: 'cn' | 'san-uri'): string | null {
  if (cache.has(socket)) return cache.get(socket) as string | null;
  let id: string | null = null;
  if (socket.authorized) {
    const peer = socket.getPeerCertificate();
    if (peer && peer.raw) {
      if (mode === 'cn') {
        // Node gives an array when the subject carries several CNs: ambiguous, refused.
        const cn: unknown = peer.subject?.CN;
        id = typeof cn === 'string' && cn.length > 0 ? cn : null;
      } else {
        const uris = sanUrisFromDer(peer.raw);
        id = uris ? saeIdFromSanUris(uris) : null;
      }
    }
  }
  cache.set(socket, id);
  return id;
}
