/**
 * The JS-visible surface of the C addon in `native/` (native/src/gcm.c, native/src/sd_notify.c). ABI 3.
 *
 * The addon holds no policy: nonces, IVs, counters and layouts come from the caller.
 * All lengths are bytes. Errors thrown by the addon carry `code` QKDGW_E_CRYPTO_LENGTH
 * (bad argument shapes or bounds) or QKDGW_E_INTERNAL (OpenSSL failure, use after free).
 */

/** Opaque handle to two keyed EVP_CIPHER_CTX (seal and open). */
export type NativeGcmContext = { readonly __brand: 'qkdgw-native-gcm' };

/** Words per record in a batch layout: srcOff, len, aadOff, aadLen, dstOff. */
export const LAYOUT_STRIDE = 5;

export interface NativeBinding {
  /** ABI version of the addon; the loader refuses anything but {@link NATIVE_ABI}. */
  readonly abi: number;
  /** Keys a context from a 32-byte AES-256 key (copied into OpenSSL; the caller wipes its own). */
  gcmNew(key: Uint8Array): NativeGcmContext;
  /** Frees the OpenSSL contexts now (OPENSSL_cleanse via EVP_CIPHER_CTX_free); idempotent. */
  gcmFree(ctx: NativeGcmContext): void;
  /** Seals into `out` (>= pt.length + 16 bytes); returns pt.length + 16. */
  gcmSeal(ctx: NativeGcmContext, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Opens ct || tag into `out`; returns the plaintext length, or -1 (out wiped) when the tag fails. */
  gcmOpen(ctx: NativeGcmContext, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Seals one record under nonce iv XOR counter (protocol.md s5); returns pt.length + 16. */
  gcmSealAt(ctx: NativeGcmContext, iv: Uint8Array, counter: number, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /** Opens one record under nonce iv XOR counter; returns the plaintext length or -1 (out wiped). */
  gcmOpenAt(ctx: NativeGcmContext, iv: Uint8Array, counter: number, sealed: Uint8Array, aad: Uint8Array, out: Uint8Array): number;
  /**
   * Seals layout.length / 5 records; record i uses nonce = iv XOR (counter + i)
   * (protocol.md s5) and writes len + 16 bytes at its dstOff. Returns the record count.
   */
  gcmSealBatch(ctx: NativeGcmContext, iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array): number;
  /**
   * Opens records laid out as for gcmSealBatch (len = sealed length). status[i] = 1 when
   * record i verified, else 0 and its output region wiped. Returns the number that failed.
   */
  gcmOpenBatch(ctx: NativeGcmContext, iv: Uint8Array, counter: number, src: Uint8Array, aad: Uint8Array, dst: Uint8Array, layout: Uint32Array, status: Uint8Array): number;
  /**
   * sd_notify(3): sends `state` (newline-separated `KEY=VALUE`, 1..4096 bytes of UTF-8, no
   * NUL) as one datagram to $NOTIFY_SOCKET (absolute path or `@abstract`), non-blocking.
   * Returns false when NOTIFY_SOCKET is unset or empty, true once sent. Throws code
   * QKDGW_E_SD_NOTIFY with `errno` (bad address, ECONNREFUSED, EAGAIN...), TypeError or
   * RangeError for a bad `state`. Source: systemd sd_notify(3); field report BC-38.
   */
  sdNotify(state: string): boolean;
}

/** The ABI this TypeScript expects (native/src/gcm.h QKDGW_NATIVE_ABI). */
export const NATIVE_ABI = 3;
