/**
 * Cipher suites of protocol.md s3: 1 = ... + AES-256-GCM, 2 = ... + XChaCha20-Poly1305.
 * The suite belongs to the epoch; this gives its name and IV length. Its AEAD comes from
 * the chosen backend: aeadForSuite() in ./backend.ts.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';

export type SuiteId = 1 | 2;
export const SUPPORTED_SUITES: readonly SuiteId[] = [1, 2];

export interface SuiteInfo {
  id: SuiteId;
  name: string;
  ivLength: 12 | 24;
}

const SUITES: Record<SuiteId, SuiteInfo> = {
  1: { id: 1, name: 'X25519+MLKEM768+QKD256/HKDF-SHA256/AES-256-GCM', ivLength: 12 },
  2: { id: 2, name: 'X25519+MLKEM768+QKD256/HKDF-SHA256/XChaCha20-Poly1305', ivLength: 24 },
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
