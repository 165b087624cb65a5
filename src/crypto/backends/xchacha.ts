/**
 * XChaCha20-Poly1305 (suite 2 of protocol.md s3) via @stablelib/xchacha20poly1305:
 * 24-byte nonces, all of them used (HChaCha20 subkey from the first 16, BC-14).
 */
import { XChaCha20Poly1305 } from '@stablelib/xchacha20poly1305';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { Aead, AeadFactory } from '../aead.js';

const TAG_LEN = 16;
const NONCE_LEN = 24;

class XChaCha implements Aead {
  readonly name = 'stablelib-xchacha20-poly1305';
  readonly nonceLength = NONCE_LEN;
  readonly tagLength = TAG_LEN;
  #aead: XChaCha20Poly1305 | null;

  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `XChaCha20-Poly1305 key must be 32 bytes, got ${key.length}`);
    this.#aead = new XChaCha20Poly1305(key);
  }

  #a(): XChaCha20Poly1305 {
    if (!this.#aead) throw new QkdgwError(ErrorCodes.INTERNAL, 'AEAD used after destroy');
    return this.#aead;
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `XChaCha20 nonce must be 24 bytes, got ${nonce.length}`);
    const sealed = this.#a().seal(nonce, plaintext, aad);
    if (out) {
      if (out.length < sealed.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
      const dst = out.subarray(0, sealed.length);
      dst.set(sealed);
      return dst;
    }
    return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  }

  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `XChaCha20 nonce must be 24 bytes, got ${nonce.length}`);
    if (sealed.length < TAG_LEN) return null;
    // A too-small output is the caller's bug whatever the tag says: refused before opening, as on every backend.
    if (out && out.length < sealed.length - TAG_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const pt = this.#a().open(nonce, sealed, aad);
    if (!pt) return null;
    if (!out) return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength);
    if (out.length < pt.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const dst = out.subarray(0, pt.length);
    dst.set(pt);
    pt.fill(0);
    return dst;
  }

  destroy(): void {
    this.#aead?.clean();
    this.#aead = null;
  }
}

/** XChaCha20-Poly1305; throws CRYPTO_LENGTH unless `key` is 32 bytes. */
export const xchacha: AeadFactory = (key) => new XChaCha(key);
