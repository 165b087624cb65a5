/**
 * HKDF-SHA-256 (RFC 5869) on node:crypto HMAC. Node 20 has no Expand-only call, so
 * Expand is written out; for L <= 32 it is the first L bytes of HMAC(PRK, info || 0x01)
 * (protocol.md s3.2).
 */
import { createHmac } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../errors.js';

const HASH_LEN = 32;

/** HKDF-Extract(salt, IKM) -> PRK (32 bytes). RFC 5869 s2.2. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Buffer {
  return createHmac('sha256', salt).update(ikm).digest();
}

/** HKDF-Expand(PRK, info, L) -> L bytes, 1 <= L <= 255*32. RFC 5869 s2.3. Throws CRYPTO_LENGTH. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_LEN) {
    throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `HKDF-Expand length out of range: ${length}`);
  }
  if (prk.length < HASH_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `HKDF PRK must be at least 32 bytes, got ${prk.length}`);
  const out = Buffer.allocUnsafeSlow(length);
  let prev: Buffer = Buffer.alloc(0);
  let off = 0;
  for (let i = 1; off < length; i++) {
    const t = createHmac('sha256', prk).update(prev).update(info).update(Buffer.from([i])).digest();
    prev.fill(0);
    t.copy(out, off, 0, Math.min(HASH_LEN, length - off));
    off += HASH_LEN;
    prev = t;
  }
  prev.fill(0);
  return out;
}

/** HMAC-SHA-256(key, data) -> 32 bytes. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
