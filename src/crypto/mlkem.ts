/**
 * ML-KEM-768 (FIPS 203) from @noble/post-quantum, with the length and modulus checks
 * mapped to typed errors (field report BC-10).
 */
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ErrorCodes, QkdgwError } from '../errors.js';

export const MLKEM768_EK_LEN = 1184;
export const MLKEM768_DK_LEN = 2400;
export const MLKEM768_CT_LEN = 1088;
export const MLKEM768_SS_LEN = 32;

export interface MlKemKeyPair {
  /** Encapsulation key, 1,184 bytes. */
  ek: Buffer;
  /** Decapsulation key, 2,400 bytes: wipe after decapsulation. */
  dk: Buffer;
}

const toBuf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/** A fresh ML-KEM-768 key pair. */
export function mlkemKeygen(): MlKemKeyPair {
  const { publicKey, secretKey } = ml_kem768.keygen();
  return { ek: toBuf(publicKey), dk: toBuf(secretKey) };
}

/**
 * Checks `ek` (length, then the FIPS 203 s7.2 modulus check) and encapsulates.
 * Returns ct (1,088 bytes) and ss (32 bytes). Throws MLKEM_BAD_KEY.
 */
export function mlkemEncapsulate(ek: Uint8Array): { ct: Buffer; ss: Buffer } {
  if (ek.length !== MLKEM768_EK_LEN) throw new QkdgwError(ErrorCodes.MLKEM_BAD_KEY, `ML-KEM-768 encapsulation key must be 1184 bytes, got ${ek.length}`);
  try {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(ek);
    return { ct: toBuf(cipherText), ss: toBuf(sharedSecret) };
  } catch (cause) {
    throw new QkdgwError(ErrorCodes.MLKEM_BAD_KEY, 'ML-KEM-768 encapsulation key fails the FIPS 203 modulus check', undefined, { cause });
  }
}

/**
 * Decapsulates `ct` (1,088 bytes) with `dk`; implicit rejection returns a pseudo-random
 * secret for a tampered ct (key confirmation then fails). Throws MLKEM_BAD_CIPHERTEXT on length.
 */
export function mlkemDecapsulate(ct: Uint8Array, dk: Uint8Array): Buffer {
  if (ct.length !== MLKEM768_CT_LEN) throw new QkdgwError(ErrorCodes.MLKEM_BAD_CIPHERTEXT, `ML-KEM-768 ciphertext must be 1088 bytes, got ${ct.length}`);
  if (dk.length !== MLKEM768_DK_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `ML-KEM-768 decapsulation key must be 2400 bytes, got ${dk.length}`);
  try {
    return toBuf(ml_kem768.decapsulate(ct, dk));
  } catch (cause) {
    // FIPS 203 s7.3: noble checks H(ek) inside dk; only a corrupted own key fails it.
    throw new QkdgwError(ErrorCodes.MLKEM_BAD_KEY, 'ML-KEM-768 decapsulation key fails the FIPS 203 hash check', undefined, { cause });
  }
}

/** The modulus check alone (INIT validation, protocol.md s3.4); true when `ek` is a valid key. */
export function mlkemCheckEk(ek: Uint8Array): boolean {
  if (ek.length !== MLKEM768_EK_LEN) return false;
  // FIPS 203 s7.2: ByteEncode12(ByteDecode12(ek[0:1152])) == ek[0:1152], i.e. every 12-bit coefficient < q.
  for (let i = 0; i < 1152; i += 3) {
    const a = ek[i] | ((ek[i + 1] & 0x0f) << 8);
    const b = (ek[i + 1] >> 4) | (ek[i + 2] << 4);
    if (a >= 3329 || b >= 3329) return false;
  }
  return true;
}
