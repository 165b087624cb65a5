/**
 * SecretBytes: the one wrapper for key material. It zeroizes on demand, never prints
 * (toString/toJSON/inspect show only its length) and refuses use after wipe.
 *
 * The bytes live in an `allocUnsafeSlow` buffer (not from Node's shared pool) so that
 * `fill(0)` wipes the only copy we own. Copies made by KeyObjects, JSON strings and
 * `Hmac` objects cannot be wiped: callers drop those references at once.
 */
import { inspect } from 'node:util';
import { ErrorCodes, QkdgwError } from '../errors.js';

export class SecretBytes {
  #buf: Buffer | null;
  readonly length: number;

  private constructor(buf: Buffer) {
    this.#buf = buf;
    this.length = buf.length;
  }

  /** Copies `src` into a fresh unpooled buffer; the caller should wipe `src` if it owns it. */
  static from(src: Uint8Array): SecretBytes {
    const b = Buffer.allocUnsafeSlow(src.length);
    b.set(src);
    return new SecretBytes(b);
  }

  /** Takes ownership of `src` (no copy): it will be zeroized by wipe(). */
  static adopt(src: Buffer): SecretBytes {
    return new SecretBytes(src);
  }

  static zero(len: number): SecretBytes {
    const b = Buffer.allocUnsafeSlow(len);
    b.fill(0);
    return new SecretBytes(b);
  }

  get wiped(): boolean {
    return this.#buf === null;
  }

  /** The live bytes. Do not keep the reference past the SecretBytes' life. Throws after wipe. */
  expose(): Buffer {
    if (this.#buf === null) throw new QkdgwError(ErrorCodes.INTERNAL, 'secret used after it was zeroized');
    return this.#buf;
  }

  /** Zeroizes and forgets the bytes; idempotent. */
  wipe(): void {
    if (this.#buf) this.#buf.fill(0);
    this.#buf = null;
  }

  toString(): string {
    return `SecretBytes(${this.length})`;
  }
  toJSON(): string {
    return this.toString();
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

/** Zeroizes each buffer given (ignores undefined/null). */
export function wipeAll(...bufs: Array<Uint8Array | SecretBytes | undefined | null>): void {
  for (const b of bufs) {
    if (!b) continue;
    if (b instanceof SecretBytes) b.wipe();
    else b.fill(0);
  }
}
