/**
 * Batches of records for any AEAD (see {@link BatchAead} for the layout). Backends with a
 * native batch run it in one call; the others loop here with the same nonce rule
 * (protocol.md s5) and the same checks, so every backend gives identical results.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import { isBatchAead, type Aead } from './aead.js';
import { nonce } from './nonce.js';

/** Words per record in a layout: srcOff, len, aadOff, aadLen, dstOff. */
export const BATCH_STRIDE = 5;
const TAG_LEN = 16;
/** The native batch's bound (native/src/gcm.c BATCH_MAX_RECORDS), kept equal here. */
export const MAX_BATCH_RECORDS = 2 ** 20;

/** One record of a batch, in bytes. */
export interface BatchRecord {
  srcOff: number;
  len: number;
  aadOff: number;
  aadLen: number;
  dstOff: number;
}

/** Packs records into the Uint32Array layout the batch calls take. */
export function packLayout(records: readonly BatchRecord[], out?: Uint32Array): Uint32Array {
  const l = out ?? new Uint32Array(records.length * BATCH_STRIDE);
  records.forEach((r, i) => l.set([r.srcOff, r.len, r.aadOff, r.aadLen, r.dstOff], i * BATCH_STRIDE));
  return l;
}

/** True when the two views share bytes without starting at the same one (the native rule). */
function partlyOverlaps(a: Uint8Array, aOff: number, aLen: number, b: Uint8Array, bOff: number, bLen: number): boolean {
  if (a.buffer !== b.buffer || aLen === 0 || bLen === 0) return false;
  const x = a.byteOffset + aOff;
  const y = b.byteOffset + bOff;
  return x !== y && x < y + bLen && y < x + aLen;
}

function checkLayout(grow: 1 | -1, ivLen: number, iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array): number {
  if (iv.length !== ivLen) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `IV must be ${ivLen} bytes, got ${iv.length}`);
  if (layout.length % BATCH_STRIDE !== 0) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'layout length must be a multiple of 5');
  const n = layout.length / BATCH_STRIDE;
  if (n > MAX_BATCH_RECORDS) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'batch larger than 2^20 records');
  // Compared by subtraction: counter + n - 1 itself could round to a safe-looking value.
  if (!Number.isSafeInteger(counter) || counter < 0 || (n > 0 && counter > Number.MAX_SAFE_INTEGER - (n - 1))) {
    throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'batch counters must be safe integers >= 0');
  }
  for (let i = 0; i < n; i++) {
    const [so, sl, ao, al, dof] = layout.subarray(i * BATCH_STRIDE, i * BATCH_STRIDE + BATCH_STRIDE) as unknown as number[];
    if (so + sl > src.length || ao + al > aad.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'batch record outside src or aad');
    if (grow < 0 && sl < TAG_LEN) continue;
    const dl = grow > 0 ? sl + TAG_LEN : sl - TAG_LEN;
    if (dof + dl > dst.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'batch record outside dst');
    if (partlyOverlaps(src, so, sl, dst, dof, dl)) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'batch output overlaps its input without starting at it');
  }
  return n;
}

function view(b: Uint8Array, off: number, len: number): Buffer {
  return Buffer.from(b.buffer, b.byteOffset + off, len);
}

/**
 * Seals every record of `layout` (record i under nonce iv XOR (counter + i)); returns
 * the record count. Throws CRYPTO_LENGTH on a bad layout before sealing anything.
 */
export function sealBatch(aead: Aead, iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array): number {
  if (isBatchAead(aead) && aead.nonceLength === 12) return aead.sealBatch(iv, counter, src, aad, dst, layout);
  const n = checkLayout(1, aead.nonceLength, iv, counter, src, aad, dst, layout);
  const scratch = Buffer.alloc(iv.length);
  for (let i = 0; i < n; i++) {
    const o = i * BATCH_STRIDE;
    aead.seal(nonce(iv, counter + i, scratch), view(src, layout[o]!, layout[o + 1]!), view(aad, layout[o + 2]!, layout[o + 3]!), view(dst, layout[o + 4]!, layout[o + 1]! + TAG_LEN));
  }
  return n;
}

/**
 * Opens every record of `layout`; status[i] = 1 when record i verified, else 0 with
 * its output region zeroed. Returns how many failed. Throws CRYPTO_LENGTH on a bad layout
 * or a status shorter than the record count, before opening anything.
 */
export function openBatch(aead: Aead, iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array, status: Uint8Array): number {
  if (isBatchAead(aead) && aead.nonceLength === 12) return aead.openBatch(iv, counter, src, aad, dst, layout, status);
  const n = checkLayout(-1, aead.nonceLength, iv, counter, src, aad, dst, layout);
  if (status.length < n) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'status must hold one byte per record');
  const scratch = Buffer.alloc(iv.length);
  let failed = 0;
  for (let i = 0; i < n; i++) {
    const o = i * BATCH_STRIDE;
    const len = layout[o + 1]!;
    let ok = false;
    if (len >= TAG_LEN) {
      const out = view(dst, layout[o + 4]!, len - TAG_LEN);
      ok = aead.open(nonce(iv, counter + i, scratch), view(src, layout[o]!, len), view(aad, layout[o + 2]!, layout[o + 3]!), out) !== null;
      if (!ok) out.fill(0);
    }
    status[i] = ok ? 1 : 0;
    if (!ok) failed++;
  }
  return failed;
}
