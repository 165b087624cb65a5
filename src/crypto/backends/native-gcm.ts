/**
 * AES-256-GCM through the C addon (suite 1 of protocol.md s3): one keyed OpenSSL
 * context per key, sealing straight into the caller's buffer, plus batches of records
 * under consecutive counters (protocol.md s5 nonces, computed in C from IV + counter).
 */
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { Aead, BatchAead, CounterAead } from '../aead.js';
import type { NativeBinding, NativeGcmContext } from '../native/binding.js';

const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;

function lengthError(msg: string): QkdgwError {
  return new QkdgwError(ErrorCodes.CRYPTO_LENGTH, msg);
}

class NativeGcm implements Aead, BatchAead, CounterAead {
  readonly name = 'native-aes-256-gcm';
  readonly nonceLength = NONCE_LEN;
  readonly tagLength = TAG_LEN;
  readonly #n: NativeBinding;
  #ctx: NativeGcmContext | null;

  constructor(n: NativeBinding, key: Uint8Array) {
    if (key.length !== KEY_LEN) throw lengthError(`AES-256-GCM key must be 32 bytes, got ${key.length}`);
    this.#n = n;
    this.#ctx = n.gcmNew(key);
  }

  #c(): NativeGcmContext {
    if (!this.#ctx) throw new QkdgwError(ErrorCodes.INTERNAL, 'AEAD used after destroy');
    return this.#ctx;
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer {
    if (nonce.length !== NONCE_LEN) throw lengthError(`AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    const total = plaintext.length + TAG_LEN;
    // An exact-size `out` is used as is: no view object is allocated per record.
    const dst = out ? (out.length === total ? out : out.subarray(0, total)) : Buffer.allocUnsafe(total);
    if (dst.length < total) throw lengthError('output buffer too small');
    this.#n.gcmSeal(this.#c(), nonce, plaintext, aad, dst);
    return dst;
  }

  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null {
    if (nonce.length !== NONCE_LEN) throw lengthError(`AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    if (sealed.length < TAG_LEN) return null;
    const len = sealed.length - TAG_LEN;
    const dst = out ? (out.length === len ? out : out.subarray(0, len)) : Buffer.allocUnsafe(len);
    if (dst.length < len) throw lengthError('output buffer too small');
    return this.#n.gcmOpen(this.#c(), nonce, sealed, aad, dst) === len ? dst : null;
  }

  sealAt(iv: Uint8Array, counter: number, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer {
    const total = plaintext.length + TAG_LEN;
    const dst = out ? (out.length === total ? out : out.subarray(0, total)) : Buffer.allocUnsafe(total);
    if (dst.length < total) throw lengthError('output buffer too small');
    this.#n.gcmSealAt(this.#c(), iv, counter, plaintext, aad, dst);
    return dst;
  }

  openAt(iv: Uint8Array, counter: number, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null {
    if (sealed.length < TAG_LEN) return null;
    const len = sealed.length - TAG_LEN;
    const dst = out ? (out.length === len ? out : out.subarray(0, len)) : Buffer.allocUnsafe(len);
    if (dst.length < len) throw lengthError('output buffer too small');
    return this.#n.gcmOpenAt(this.#c(), iv, counter, sealed, aad, dst) === len ? dst : null;
  }

  sealBatch(iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array): number {
    return this.#n.gcmSealBatch(this.#c(), iv, counter, src, aad, dst, layout);
  }

  openBatch(iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array, status: Uint8Array): number {
    return this.#n.gcmOpenBatch(this.#c(), iv, counter, src, aad, dst, layout, status);
  }

  destroy(): void {
    if (this.#ctx) this.#n.gcmFree(this.#ctx);
    this.#ctx = null;
  }
}

/**
 * Native AES-256-GCM bound to `binding`; the returned factory throws CRYPTO_LENGTH
 * unless the key is 32 bytes. Use {@link loadNative} to get a binding.
 */
export function nativeGcmFactory(binding: NativeBinding): (key: Uint8Array) => Aead & BatchAead & CounterAead {
  return (key: Uint8Array) => new NativeGcm(binding, key);
}
