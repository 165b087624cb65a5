/**
 * One direction's flow key material for one (epoch, flow_id), derived once and cached by
 * the carrier (protocol.md s5.1 flow keys). Holds the AEAD bound to flow_key, flow_iv and a
 * nonce scratch buffer; wipe() zeroizes what we own and destroys the AEAD.
 */
import { isCounterAead, type Aead, type AeadFactory } from '../../crypto/aead.js';
import type { SuiteId } from '../../crypto/suites.js';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { SecretBytes } from '../../util/secret.js';
import { nonce } from '../../crypto/nonce.js';

/** The crypto a carrier needs, injected so that tests and the daemon pick the backends. */
export interface CarrierCrypto {
  /** AEAD factory of a suite (1: AES-256-GCM, 2: XChaCha20-Poly1305). */
  aeadFor(suite: SuiteId): AeadFactory;
  /** protocol.md s5.1: flow_key (32 bytes) and flow_iv (12/24 bytes) from F_d and flow_id. */
  deriveFlowKeys(flowSecret: SecretBytes, flowId: Uint8Array, suite: SuiteId): { key: SecretBytes; iv: Buffer };
}

export class FlowKeySlot {
  readonly epoch: number;
  readonly suite: SuiteId;
  #key: SecretBytes;
  #iv: Buffer;
  #aead: Aead;
  #nonce: Buffer;

  private constructor(epoch: number, suite: SuiteId, key: SecretBytes, iv: Buffer, aead: Aead) {
    this.epoch = epoch;
    this.suite = suite;
    this.#key = key;
    this.#iv = iv;
    this.#aead = aead;
    this.#nonce = Buffer.alloc(iv.length);
  }

  /**
   * Derives the slot. Throws what deriveFlowKeys / the AEAD factory throw (CRYPTO_LENGTH,
   * INTERNAL on a wiped secret), or INTERNAL when the AEAD's nonce length is not the IV's.
   */
  static derive(crypto: CarrierCrypto, flowSecret: SecretBytes, flowId: Uint8Array, epoch: number, suite: SuiteId): FlowKeySlot {
    const { key, iv } = crypto.deriveFlowKeys(flowSecret, flowId, suite);
    let aead: Aead;
    try {
      aead = crypto.aeadFor(suite)(key.expose());
      if (aead.nonceLength !== iv.length) {
        aead.destroy();
        throw new QkdgwError(ErrorCodes.INTERNAL, `suite ${suite} AEAD nonce length ${aead.nonceLength} differs from flow_iv length ${iv.length}`);
      }
    } catch (e) {
      key.wipe();
      iv.fill(0);
      throw e;
    }
    return new FlowKeySlot(epoch, suite, key, iv, aead);
  }

  /** Seals `plaintext` under counter's nonce with `aad` into `out` (ct || tag). */
  seal(counter: number, plaintext: Uint8Array, aad: Uint8Array, out: Buffer): Buffer {
    const a = this.#aead;
    if (isCounterAead(a)) return a.sealAt(this.#iv, counter, plaintext, aad, out);
    return a.seal(nonce(this.#iv, counter, this.#nonce), plaintext, aad, out);
  }

  /** Opens ct || tag; null when the tag fails (no plaintext is released). */
  open(counter: number, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
    const a = this.#aead;
    if (isCounterAead(a)) return a.openAt(this.#iv, counter, sealed, aad);
    return a.open(nonce(this.#iv, counter, this.#nonce), sealed, aad);
  }

  wipe(): void {
    this.#aead.destroy();
    this.#key.wipe();
    this.#iv.fill(0);
    this.#nonce.fill(0);
  }
}
