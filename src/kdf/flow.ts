/**
 * Per-carrier flow keys (protocol.md s5.1):
 *   flow_key = HKDF-Expand(F_d, u16(32) || u8(13) || "qgw1 flow key" || u8(16) || flow_id, 32)
 *   flow_iv  = HKDF-Expand(F_d, u16(L)  || u8(12) || "qgw1 flow iv"  || u8(16) || flow_id, L)
 * with F_d the epoch's `flow i2r` / `flow r2i` secret and L = 12 (suite 1) or 24 (suite 2).
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import { hkdfExpand } from '../crypto/hkdf.js';
import { u16, u8 } from '../util/bytes.js';
import { SecretBytes } from '../util/secret.js';
import { FLOW_IV_LABEL, FLOW_KEY_LABEL } from './labels.js';
import { ivLengthOf } from './schedule.js';

export const FLOW_ID_LEN = 16;

function info(label: string, length: number, flowId: Uint8Array): Buffer {
  const l = Buffer.from(label, 'ascii');
  return Buffer.concat([u16(length), u8(l.length), l, u8(flowId.length), flowId]);
}

/**
 * Flow key (32 bytes) and IV (12/24 bytes) of one carrier direction.
 * Throws CRYPTO_LENGTH unless flowId is 16 bytes and F_d 32 bytes.
 */
export function deriveFlowKeys(flowSecret: SecretBytes, flowId: Uint8Array, suite: number): { key: SecretBytes; iv: Buffer } {
  if (flowId.length !== FLOW_ID_LEN) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `flow_id must be 16 bytes, got ${flowId.length}`);
  const f = flowSecret.expose();
  if (f.length !== 32) throw new QkdgwError(ErrorCodes.CRYPTO_LENGTH, `flow secret must be 32 bytes, got ${f.length}`);
  const ivLen = ivLengthOf(suite);
  return {
    key: SecretBytes.adopt(hkdfExpand(f, info(FLOW_KEY_LABEL, 32, flowId), 32)),
    iv: hkdfExpand(f, info(FLOW_IV_LABEL, ivLen, flowId), ivLen),
  };
}
