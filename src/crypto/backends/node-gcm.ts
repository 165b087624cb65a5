/**
 * AES-256-GCM through node:crypto (suite 1 of protocol.md s3).
 *
 * Node 20 accepts truncated GCM tags unless `authTagLength` is given, so both directions
 * fix it at 16 and `open` rejects anything shorter before touching the decipher.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { Aead, AeadFactory } from '../aead.js';

const KEY_LEN = 32;
const NONCE_LEN = 12;
const TAG_LEN = 16;

class NodeGcm implements Aead {
  readonly name = 'node-aes-256-gcm';
  readonly nonceLength = NONCE_LEN;
  readonly tagLength = TAG_LEN;
  #key: KeyObject | null;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-256-GCM key must be 32 bytes, got ${key.length}`);
    // A KeyObject keeps its own copy that cannot be wiped; destroy() drops the reference.
    this.#key = createSecretKey(key);
  }

  #k(): KeyObject {
    if (!this.#key) throw new QkdgwError(ErrorCodes.INTERNAL, 'AEAD used after destroy');
    return this.#key;
  }

  seal(nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    const c = createCipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: TAG_LEN });
    c.setAAD(aad);
    const total = plaintext.length + TAG_LEN;
    const dst = out ? out.subarray(0, total) : Buffer.allocUnsafe(total);
    if (dst.length < total) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const body = c.update(plaintext);
    body.copy(dst, 0);
    const fin = c.final();
    fin.copy(dst, body.length);
    c.getAuthTag().copy(dst, plaintext.length);
    return dst;
  }

  open(nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer | null {
    if (nonce.length !== NONCE_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `AES-GCM nonce must be 12 bytes, got ${nonce.length}`);
    if (sealed.length < TAG_LEN) return null;
    const ctLen = sealed.length - TAG_LEN;
    // A too-small output is the caller's bug whatever the tag says: refused before opening, as on every backend.
    if (out && out.length < sealed.length - TAG_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    const d = createDecipheriv('aes-256-gcm', this.#k(), nonce, { authTagLength: TAG_LEN });
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(ctLen));
    // update() output is unauthenticated until final() succeeds: it is only returned after.
    const pt = d.update(sealed.subarray(0, ctLen));
    try {
      d.final();
    } catch {
      pt.fill(0);
      return null;
    }
    if (!out) return pt;
    if (out.length < pt.length) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, 'output buffer too small');
    pt.copy(out);
    pt.fill(0);
    return out.subarray(0, pt.length);
  }

  destroy(): void {
    this.#key = null;
  }
}

/** node:crypto AES-256-GCM; throws CRYPTO_LENGTH unless `key` is 32 bytes. */
export const nodeGcm: AeadFactory = (key) => new NodeGcm(key);
