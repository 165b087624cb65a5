/**
 * QGW-KDF-1: the hybrid key schedule of one epoch (protocol.md s3.2).
 *
 *   PRK = HKDF-Extract(salt = chain_{e-1} or 32 zero bytes, IKM = ss_M || ss_X || K_QKD)
 *   Expand-Label(PRK, label, L) = HKDF-Expand(PRK, u16(L) || u8(len("qgw1 "+label)) || "qgw1 "+label || u8(32) || TH, L)
 *
 * Inputs are consumed: the caller wipes ss_M, ss_X, K_QKD; this module wipes the IKM
 * concatenation and PRK before returning.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import { hkdfExpand, hkdfExtract, hmacSha256 } from '../crypto/hkdf.js';
import { ctEqual, u16, u8 } from '../util/bytes.js';
import { SecretBytes } from '../util/secret.js';
import { LABEL_PREFIX, Labels } from './labels.js';

/** Per-suite IV length in bytes (protocol.md s3.2: 12 for AES-256-GCM, 24 for XChaCha20-Poly1305). */
export function ivLengthOf(suite: number): 12 | 24 {
  if (suite === 1) return 12;
  if (suite === 2) return 24;
  throw new QkdgwError(ErrorCodes.PROTOCOL, `unknown suite ${suite}`);
}

/** Every output of one epoch's key schedule. All secret; wipe with wipeEpochSecrets(). */
export interface EpochSecrets {
  keyI2R: SecretBytes; // 32, L3 only
  keyR2I: SecretBytes; // 32, L3 only
  ivI2R: SecretBytes; // 12 or 24
  ivR2I: SecretBytes;
  flowI2R: SecretBytes; // 32, keys the L4 flow derivation
  flowR2I: SecretBytes;
  finishedI: SecretBytes; // 32
  finishedR: SecretBytes; // 32
  chain: SecretBytes; // 32, salt of the next chained epoch
}

export interface KdfInput {
  suite: number;
  /** chain_{e-1}, or null for an unchained epoch (32 zero bytes). */
  salt: Uint8Array | null;
  ssM: Uint8Array; // 32
  ssX: Uint8Array; // 32
  kQkd: Uint8Array; // exactly 32 (32 zero bytes in degraded mode)
  th: Uint8Array; // 32
}

function expandLabel(prk: Uint8Array, label: string, length: number, th: Uint8Array): SecretBytes {
  const full = Buffer.from(LABEL_PREFIX + label, 'ascii');
  const info = Buffer.concat([u16(length), u8(full.length), full, u8(th.length), th]);
  return SecretBytes.adopt(hkdfExpand(prk, info, length));
}

function need(name: string, b: Uint8Array, len: number): void {
  if (b.length !== len) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `${name} must be exactly ${len} bytes, got ${b.length}`);
}

/** PRK of QGW-KDF-1 (exposed for the regression vector). Throws CRYPTO_LENGTH. */
export function derivePrk(input: Omit<KdfInput, 'th' | 'suite'>): Buffer {
  need('ss_M', input.ssM, 32);
  need('ss_X', input.ssX, 32);
  need('K_QKD', input.kQkd, 32);
  const salt = input.salt ?? Buffer.alloc(32);
  need('salt', salt, 32);
  const ikm = Buffer.concat([input.ssM, input.ssX, input.kQkd]);
  try {
    return hkdfExtract(salt, ikm);
  } finally {
    ikm.fill(0);
  }
}

/** Runs QGW-KDF-1 (protocol.md s3.2). Throws CRYPTO_LENGTH on any input of the wrong length. */
export function deriveEpochSecrets(input: KdfInput): EpochSecrets {
  need('TH', input.th, 32);
  const ivLen = ivLengthOf(input.suite);
  const prk = derivePrk(input);
  try {
    return {
      keyI2R: expandLabel(prk, Labels.keyI2R, 32, input.th),
      keyR2I: expandLabel(prk, Labels.keyR2I, 32, input.th),
      ivI2R: expandLabel(prk, Labels.ivI2R, ivLen, input.th),
      ivR2I: expandLabel(prk, Labels.ivR2I, ivLen, input.th),
      flowI2R: expandLabel(prk, Labels.flowI2R, 32, input.th),
      flowR2I: expandLabel(prk, Labels.flowR2I, 32, input.th),
      finishedI: expandLabel(prk, Labels.finishedI, 32, input.th),
      finishedR: expandLabel(prk, Labels.finishedR, 32, input.th),
      chain: expandLabel(prk, Labels.chain, 32, input.th),
    };
  } finally {
    prk.fill(0);
  }
}

/** Zeroizes every output of an epoch. */
export function wipeEpochSecrets(s: EpochSecrets): void {
  for (const v of Object.values(s)) (v as SecretBytes).wipe();
}

/** tag = HMAC-SHA-256(finished, TH), 32 bytes (protocol.md s3.2). */
export function finishedTag(finished: SecretBytes, th: Uint8Array): Buffer {
  return hmacSha256(finished.expose(), th);
}

/** Constant-time check of a received tag_R / tag_I. */
export function verifyFinishedTag(finished: SecretBytes, th: Uint8Array, tag: Uint8Array): boolean {
  const want = finishedTag(finished, th);
  try {
    return ctEqual(want, tag);
  } finally {
    want.fill(0);
  }
}
