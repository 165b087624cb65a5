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
   * Verifies and decrypts ciphertext || tag. Returns the plaintext, or null when the
   * tag does not verify or the input is shorter than 16 bytes; never returns partial
   * plaintext (field report BC-15).
   */
  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | null;
  /** Drops the key (best effort zeroization; node:crypto keeps an internal copy). */
  destroy(): void;
}

/** Makes an Aead bound to a 32-byte key. Throws CRYPTO_LENGTH on a wrong key length. */
export type AeadFactory = (key: Uint8Array) => Aead;
