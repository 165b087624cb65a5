/**
 * key_ID rules shared by the client and the KeySource.
 *
 * ETSI GS QKD 014 s6.3 says "UUID format", but real KMEs emit opaque IDs (etsi014.md A13),
 * so we accept any 1..64 printable ASCII characters (protocol.md s3.4) and compare
 * case-insensitively (UUIDs are case-insensitive; protocol.md s3.4 compares lower-cased).
 */

/** Longest key_ID we accept, in characters (= bytes, ASCII only). protocol.md s3.4. */
export const KEY_ID_MAX_LENGTH = 64;

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** True when `s` is a string of 1..64 printable ASCII characters (0x20..0x7e). */
export function isValidKeyId(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= KEY_ID_MAX_LENGTH && PRINTABLE_ASCII.test(s);
}

/** The form key_IDs are compared and remembered in (ASCII lower case). */
export function normalizeKeyId(s: string): string {
  return s.toLowerCase();
}
