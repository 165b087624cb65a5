/**
 * X25519 (RFC 7748) through node:crypto with raw 32-byte public keys.
 * An all-zero shared secret (low-order point, RFC 7748 s6.1) is an error; Node's
 * diffieHellman throws on it too, and both map to X25519_LOW_ORDER.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../errors.js';

export const X25519_KEY_LEN = 32;

export interface X25519Ephemeral {
  /** Raw public key, 32 bytes. */
  publicKey: Buffer;
  /** Node KeyObject (its internal copy cannot be wiped: drop the reference after use). */
  privateKey: KeyObject;
}

/** A fresh ephemeral key pair. */
export function x25519Generate(): X25519Ephemeral {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return { publicKey: Buffer.from(jwk.x as string, 'base64url'), privateKey };
}

// RFC 8410 PKCS#8 prefix for an X25519 private key; the 32 raw bytes follow.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** Private key from 32 raw bytes (tests and vectors). Throws CRYPTO_LENGTH. */
export function x25519PrivateFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_KEY_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `X25519 private key must be 32 bytes, got ${raw.length}`);
  const der = Buffer.concat([PKCS8_X25519_PREFIX, raw]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/** Raw public key (32 bytes) of a private KeyObject. */
export function x25519PublicOf(priv: KeyObject): Buffer {
  return Buffer.from(createPublicKey(priv).export({ format: 'jwk' }).x as string, 'base64url');
}

/**
 * X25519(priv, peerPublic) -> 32-byte shared secret.
 * Throws CRYPTO_LENGTH on a public key that is not 32 bytes and X25519_LOW_ORDER when
 * the result is all zero.
 */
export function x25519Shared(priv: KeyObject, peerPublic: Uint8Array): Buffer {
  if (peerPublic.length !== X25519_KEY_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `X25519 public key must be 32 bytes, got ${peerPublic.length}`);
  let ss: Buffer;
  try {
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(peerPublic).toString('base64url') }, format: 'jwk' });
    ss = diffieHellman({ privateKey: priv, publicKey: pub });
  } catch (cause) {
    throw new QkdgwError(ErrorCodes.X25519_LOW_ORDER, 'X25519 shared secret is all zero (low-order public key)', undefined, { cause });
  }
  let acc = 0;
  for (const b of ss) acc |= b;
  if (acc === 0) throw new QkdgwError(ErrorCodes.X25519_LOW_ORDER, 'X25519 shared secret is all zero (low-order public key)');
  return ss;
}
