/**
 * The AEAD interface every backend implements (protocol.md s3 suites, s5 records).
 *
 * Key 32 bytes, tag fixed at 16 bytes, nonce 12 bytes (AES-256-GCM, suite 1) or
 * 24 bytes (XChaCha20-Poly1305, suite 2). Nonces are computed by the caller
 * (protocol.md s5: iv XOR counter); a backend never picks one.
 */
export interface Aead {
  readonly name: string;
  readonly nonceLength: 12 | 24;
  readonly tagLength: 16;
  /**
   * Encrypts `plaintext` under `nonce` with `aad`; returns ciphertext || tag
   * (plaintext.length + 16 bytes). When `out` is given (at least that long) the result
   * is written there and a view of it returned. Throws CRYPTO_LENGTH on a wrong nonce length.
   */
  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer;
  /**
   * Verifies and decrypts ciphertext || tag. Returns the plaintext (sealed.length - 16
   * bytes; written into `out` when given), or null when the tag does not verify or the
   * input is shorter than 16 bytes (a truncated tag never verifies). Never returns or
   * leaves partial plaintext (field report BC-15): on failure `out` holds none.
   */
  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null;
  /** Drops the key (best effort zeroization; node:crypto keeps an internal copy). */
  destroy(): void;
}

/** Makes an Aead bound to a 32-byte key. Throws CRYPTO_LENGTH on a wrong key length. */
export type AeadFactory = (key: Uint8Array) => Aead;

/**
 * Many records under consecutive counters in one call (protocol.md s5 nonces: record i
 * uses iv XOR (counter + i)). `layout` holds 5 uint32 words per record: srcOff, len,
 * aadOff, aadLen, dstOff (bytes). Seal writes len + 16 bytes at dstOff; open reads a
 * sealed record of len bytes and writes len - 16. Bounds are checked before any record
 * is processed (CRYPTO_LENGTH); dst may equal src exactly but must not partly overlap.
 */
export interface BatchAead {
  /** Returns the number of records sealed. */
  sealBatch(iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array): number;
  /** status[i] = 1 when record i verified, else 0 (its output wiped); returns how many failed. */
  openBatch(iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array, status: Uint8Array): number;
}

/** True when `a` seals and opens batches natively. */
export function isBatchAead(a: Aead): a is Aead & BatchAead {
  return typeof (a as Partial<BatchAead>).sealBatch === 'function' && typeof (a as Partial<BatchAead>).openBatch === 'function';
}

/**
 * Single records addressed by IV and counter (nonce = iv XOR counter, protocol.md s5)
 * rather than by a nonce, so the per-record path computes no nonce in JavaScript.
 */
export interface CounterAead {
  /** As seal() under nonce(iv, counter). */
  sealAt(iv: Uint8Array, counter: number, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer;
  /** As open() under nonce(iv, counter). */
  openAt(iv: Uint8Array, counter: number, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null;
}

/** True when `a` takes IV + counter per record natively. */
export function isCounterAead(a: Aead): a is Aead & CounterAead {
  return typeof (a as Partial<CounterAead>).sealAt === 'function' && typeof (a as Partial<CounterAead>).openAt === 'function';
}
