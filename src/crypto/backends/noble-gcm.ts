/**
 * AES-256-GCM in pure JavaScript via @noble/ciphers (suite 1 of protocol.md s3): the
 * last-resort backend for a Node without a usable node:crypto GCM. Slow; correct.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { Aead, AeadFactory } from '../aead.js';

const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;

class NobleGcm implements Aead {
  readonly name = 'noble-aes-256-gcm';
  readonly nonceLength = NONCE_LEN;
  readonly tagLength = TAG_LEN;
  #key: Uint8Array | null;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-256-GCM key must be 32 bytes, got ${key.length}`);
    this.#key = Uint8Array.from(key);
  }

  #k(): Uint8Array {
    if (!this.#key) throw new QkdgwError(ErrorCodes.INTERNAL, 'AEAD used after destroy');
    return this.#key;
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    const sealed = gcm(this.#k(), nonce, aad).encrypt(plaintext);
    if (!out) return Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (out.length < sealed.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const dst = out.subarray(0, sealed.length);
    dst.set(sealed);
    return dst;
  }

  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    if (sealed.length < TAG_LEN) return null;
    // A too-small output is the caller's bug whatever the tag says: refused before opening, as on every backend.
    if (out && out.length < sealed.length - TAG_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    let pt: Uint8Array;
    try {
      // noble verifies the tag before it decrypts: nothing unauthenticated is produced.
      pt = gcm(this.#k(), nonce, aad).decrypt(sealed);
    } catch {
      return null;
    }
    if (!out) return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength);
    if (out.length < pt.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const dst = out.subarray(0, pt.length);
    dst.set(pt);
    pt.fill(0);
    return dst;
  }

  destroy(): void {
    this.#key?.fill(0);
    this.#key = null;
  }
}

/** Pure-JS AES-256-GCM; throws CRYPTO_LENGTH unless `key` is 32 bytes. */
export const nobleGcm: AeadFactory = (key) => new NobleGcm(key);
