/**
 * The measured loops of `npm run bench:crypto`: one "cell" per (backend, record size)
 * that SEALs records with a 20-byte AAD (the carrier record header, protocol.md s5) and
 * a fresh nonce per record from the counter (iv XOR counter, src/crypto/nonce.ts).
 *
 * Everything a record needs is built once per cell: plaintext, AAD, output buffer,
 * nonce scratch and, for batches, the layout. The native loops therefore allocate
 * nothing per record (the allocation probe in crypto-measure.ts shows it); node, noble
 * and XChaCha allocate inside their libraries, which is part of what they cost.
 */
import { randomBytes } from 'node:crypto';
import { isCounterAead, type Aead, type BatchAead } from '../crypto/aead.js';
import { nativeGcmFactory } from '../crypto/backends/native-gcm.js';
import { nobleGcm } from '../crypto/backends/noble-gcm.js';
import { nodeGcm } from '../crypto/backends/node-gcm.js';
import { xchacha } from '../crypto/backends/xchacha.js';
import { packLayout, BATCH_STRIDE, type BatchRecord } from '../crypto/batch.js';
import type { NativeBinding } from '../crypto/native/binding.js';
import { nonce } from '../crypto/nonce.js';

export type BackendId = 'native-b1' | 'native-b16' | 'node' | 'noble' | 'xchacha';

/** Table labels, in the order the bench measures and prints them. */
export const BACKEND_LABEL: Record<BackendId, string> = {
  'native-b1': 'native batch 1',
  'native-b16': 'native batch 16',
  node: 'node:crypto',
  xchacha: 'XChaCha20-Poly1305 (ref)',
  noble: 'noble (pure JS)',
};

/** AAD bytes per record: the carrier record header (protocol.md s5). */
export const AAD_LEN = 20;
/** Records per native batch call. */
export const BATCH = 16;
const TAG_LEN = 16;

export interface Cell {
  readonly id: BackendId;
  /** Plaintext bytes per record. */
  readonly size: number;
  /** Records sealed by one call of `run(1)`. */
  readonly recordsPerCall: number;
  /** Seals `calls` x recordsPerCall records, each under the next counter. */
  run(calls: number): void;
  /**
   * Seals one call's records and checks them against node:crypto (AES) or by opening
   * them (XChaCha), so the bench can never time a loop that does not encrypt.
   * @throws Error naming the backend and size on a mismatch.
   */
  selfCheck(): void;
  /** Destroys the AEAD and wipes the throwaway key. */
  destroy(): void;
}

function makeIv(len: number, ivByte: number | undefined): Buffer {
  return ivByte === undefined ? randomBytes(len) : Buffer.alloc(len, ivByte);
}

function mismatch(id: BackendId, size: number, what: string): Error {
  return new Error(`bench:crypto self-check failed: ${BACKEND_LABEL[id]} at ${size} bytes ${what}`);
}

/**
 * One record at a time with an exact-size `out`, as the data plane's FlowKeySlot does it:
 * `sealAt(iv, counter)` where the backend takes the counter (native), else
 * `seal(nonce(iv, counter, scratch))`.
 */
function singleCell(id: BackendId, size: number, make: (key: Uint8Array) => Aead, ivLen: 12 | 24, ivByte: number | undefined): Cell {
  const key = randomBytes(32);
  const aead = make(key);
  const iv = makeIv(ivLen, ivByte);
  const scratch = Buffer.alloc(ivLen);
  const pt = randomBytes(size);
  const aad = randomBytes(AAD_LEN);
  const out = Buffer.alloc(size + TAG_LEN);
  let ctr = 0;
  return {
    id,
    size,
    recordsPerCall: 1,
    run(calls: number): void {
      if (isCounterAead(aead)) for (let i = 0; i < calls; i++) aead.sealAt(iv, ctr++, pt, aad, out);
      else for (let i = 0; i < calls; i++) aead.seal(nonce(iv, ctr++, scratch), pt, aad, out);
    },
    selfCheck(): void {
      const c = ctr;
      this.run(1);
      if (ivLen === 24) {
        const back = aead.open(nonce(iv, c), out, aad);
        if (!back || !back.equals(pt)) throw mismatch(id, size, 'does not open to its plaintext');
      } else {
        const ref = nodeGcm(key);
        const want = ref.seal(nonce(iv, c), pt, aad);
        ref.destroy();
        if (!want.equals(out)) throw mismatch(id, size, 'differs from node:crypto');
      }
    },
    destroy(): void {
      aead.destroy();
      key.fill(0);
    },
  };
}

/** 16 records per call through the native sealBatch, with a layout built once. */
function batchCell(size: number, aead: Aead & BatchAead, key: Buffer, ivByte: number | undefined): Cell {
  const iv = makeIv(12, ivByte);
  const src = randomBytes(size * BATCH);
  const aad = randomBytes(AAD_LEN * BATCH);
  const dst = Buffer.alloc((size + TAG_LEN) * BATCH);
  const records: BatchRecord[] = [];
  for (let i = 0; i < BATCH; i++) records.push({ srcOff: i * size, len: size, aadOff: i * AAD_LEN, aadLen: AAD_LEN, dstOff: i * (size + TAG_LEN) });
  const layout = packLayout(records);
  if (layout.length !== BATCH * BATCH_STRIDE) throw new Error('bench:crypto: unexpected batch layout length');
  let ctr = 0;
  return {
    id: 'native-b16',
    size,
    recordsPerCall: BATCH,
    run(calls: number): void {
      for (let i = 0; i < calls; i++) {
        aead.sealBatch(iv, ctr, src, aad, dst, layout);
        ctr += BATCH;
      }
    },
    selfCheck(): void {
      const c = ctr;
      this.run(1);
      const ref = nodeGcm(key);
      try {
        for (let i = 0; i < BATCH; i++) {
          const want = ref.seal(nonce(iv, c + i), src.subarray(i * size, (i + 1) * size), aad.subarray(i * AAD_LEN, (i + 1) * AAD_LEN));
          if (!want.equals(dst.subarray(i * (size + TAG_LEN), (i + 1) * (size + TAG_LEN)))) throw mismatch('native-b16', size, `record ${i} differs from node:crypto`);
        }
      } finally {
        ref.destroy();
      }
    },
    destroy(): void {
      aead.destroy();
      key.fill(0);
    },
  };
}

export interface CellOptions {
  /**
   * Fill every IV with this byte instead of random bytes. The allocation probe uses 0xff:
   * counter words >= 2^31 are the worst case for 32-bit arithmetic in JS.
   */
  ivByte?: number;
}

/**
 * The cells of one record size (bytes), in {@link BACKEND_LABEL} order; the native ones
 * only when `binding` is given. Each cell has its own random key and IV.
 */
export function makeCells(size: number, binding: NativeBinding | null, opts: CellOptions = {}): Cell[] {
  const cells: Cell[] = [];
  if (binding) {
    const native: (key: Uint8Array) => Aead & BatchAead = nativeGcmFactory(binding);
    cells.push(singleCell('native-b1', size, native, 12, opts.ivByte));
    const key = randomBytes(32);
    cells.push(batchCell(size, native(key), key, opts.ivByte));
  }
  cells.push(singleCell('node', size, nodeGcm, 12, opts.ivByte));
  cells.push(singleCell('xchacha', size, xchacha, 24, opts.ivByte));
  cells.push(singleCell('noble', size, nobleGcm, 12, opts.ivByte));
  return cells;
}

/**
 * Native `seal` of one record under one precomputed nonce, over and over: not a valid
 * use of GCM (the nonce repeats) and never timed; only the allocation probe runs it, to
 * tell the addon call's allocations apart from the nonce computation's.
 */
export function sealOnlyRunner(size: number, binding: NativeBinding): { recordsPerCall: number; run(calls: number): void; destroy(): void } {
  const key = randomBytes(32);
  const aead = nativeGcmFactory(binding)(key);
  const fixed = nonce(randomBytes(12), 0);
  const pt = randomBytes(size);
  const aad = randomBytes(AAD_LEN);
  const out = Buffer.alloc(size + TAG_LEN);
  return {
    recordsPerCall: 1,
    run(calls: number): void {
      for (let i = 0; i < calls; i++) aead.seal(fixed, pt, aad, out);
    },
    destroy(): void {
      aead.destroy();
      key.fill(0);
    },
  };
}
