/**
 * Cipher suites of protocol.md s3: 1 = ... + AES-256-GCM, 2 = ... + XChaCha20-Poly1305.
 * The suite belongs to the epoch; this maps it to its AEAD factory and IV length.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import type { AeadFactory } from './aead.js';
import { nodeGcm } from './backends/node-gcm.js';
import { xchacha } from './backends/xchacha.js';

export type SuiteId = 1 | 2;
export const SUPPORTED_SUITES: readonly SuiteId[] = [1, 2];

export interface SuiteInfo {
  id: SuiteId;
  name: string;
  ivLength: 12 | 24;
  aead: AeadFactory;
}

const SUITES: Record<SuiteId, SuiteInfo> = {
  1: { id: 1, name: 'X25519+MLKEM768+QKD256/HKDF-SHA256/AES-256-GCM', ivLength: 12, aead: nodeGcm },
  2: { id: 2, name: 'X25519+MLKEM768+QKD256/HKDF-SHA256/XChaCha20-Poly1305', ivLength: 24, aead: xchacha },
};

/** Suite info; throws PROTOCOL on an unknown suite. */
export function suiteInfo(id: number): SuiteInfo {
  const s = SUITES[id as SuiteId];
  if (!s) throw new QkdgwError(ErrorCodes.PROTOCOL, `unknown suite ${id}`);
  return s;
}

export function isSuiteId(n: unknown): n is SuiteId {
  return n === 1 || n === 2;
}
