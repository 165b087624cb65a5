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
  const hi = Math.floor(counter / 2 ** 32);
  const lo = counter >>> 0;
  const at = n - COUNTER_BYTES;
  dst.writeUInt32BE((dst.readUInt32BE(at) ^ hi) >>> 0, at);
  dst.writeUInt32BE((dst.readUInt32BE(at + 4) ^ lo) >>> 0, at + 4);
  return dst;
}
