/**
 * AEAD nonce of both planes and both suites (protocol.md s5):
 * `nonce = iv XOR (zeros(len(iv) - 8) || u64 counter)`, the big-endian counter XORed into
 * the last 8 bytes of the 12- or 24-byte IV.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';

const COUNTER_BYTES = 8;

/**
 * Returns the nonce for `counter` (a safe integer >= 0) under `iv` (12 or 24 bytes).
 * Writes into `out` (at least iv.length bytes, must not be `iv` itself) when given and
 * returns the iv.length-byte view; otherwise a fresh buffer.
 * Throws CRYPTO_LENGTH on a wrong iv or out length, INTERNAL on a bad counter or aliasing.
 */
export function nonce(iv: Uint8Array, counter: number, out?: Buffer): Buffer {
  const n = iv.length;
  if (n !== 12 && n !== 24) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `IV must be 12 or 24 bytes, got ${n}`);
  if (!Number.isSafeInteger(counter) || counter < 0) throw new QkdgwError(ErrorCodes.INTERNAL, 'nonce counter is not a safe integer >= 0');
  let dst: Buffer;
  if (out) {
    if (out.length < n) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'nonce output buffer too small');
    if (out.buffer === iv.buffer && out.byteOffset === iv.byteOffset) throw new QkdgwError(ErrorCodes.INTERNAL, 'nonce output must not be the IV');
    dst = out.length === n ? out : out.subarray(0, n);
    dst.set(iv);
  } else {
    dst = Buffer.from(iv);
  }
  // Byte-wise so that no intermediate exceeds 31 bits: V8 then boxes no heap number and
  // the per-record path allocates nothing.
  let lo = counter >>> 0;
  let hi = Math.floor(counter / 2 ** 32);
  for (let k = 1; k <= 4; k++) {
    dst[n - k] = dst[n - k]! ^ (lo & 0xff);
    dst[n - 4 - k] = dst[n - 4 - k]! ^ (hi & 0xff);
    lo >>>= 8;
    hi >>>= 8;
  }
  return dst;
}
