/**
 * Carrier preamble (protocol.md s5.1), sent in clear by the entry gateway, 28 bytes:
 * `"QGW1" || u8 version=1 || u8 reserved=0 || u16 reserved=0 || u32 receiver_index || flow_id(16)`.
 * `receiver_index` is the one the exit gateway gave the pair in its HELLO (1..2^32-1);
 * `flow_id` is 16 CSPRNG bytes.
 */
import { ErrorCodes, QkdgwError } from '../../../errors.js';
import { WireError } from './errors.js';

export const PREAMBLE_LEN = 28;
export const PREAMBLE_MAGIC = Buffer.from('QGW1', 'ascii');
export const PREAMBLE_VERSION = 1;
/** flow_id length, bytes (same value as FLOW_ID_LEN in src/kdf/flow.ts). */
export const PREAMBLE_FLOW_ID_LEN = 16;
export const PREAMBLE_OFF_MAGIC = 0;
export const PREAMBLE_OFF_VERSION = 4;
export const PREAMBLE_OFF_RESERVED8 = 5;
export const PREAMBLE_OFF_RESERVED16 = 6;
export const PREAMBLE_OFF_RECEIVER_INDEX = 8;
export const PREAMBLE_OFF_FLOW_ID = 12;

export interface Preamble {
  /** u32, 1..2^32-1: the exit gateway's receiver_index for the pair. */
  receiverIndex: number;
  /** 16 bytes. */
  flowId: Buffer;
}

/** The 28-byte preamble. Throws QkdgwError INTERNAL on receiverIndex outside 1..2^32-1 or flowId not 16 bytes. */
export function encodePreamble(p: Preamble): Buffer {
  if (!Number.isInteger(p.receiverIndex) || p.receiverIndex < 1 || p.receiverIndex > 0xffff_ffff) throw new QkdgwError(ErrorCodes.INTERNAL, 'preamble receiver_index outside 1..2^32-1');
  if (p.flowId.length !== PREAMBLE_FLOW_ID_LEN) throw new QkdgwError(ErrorCodes.INTERNAL, 'preamble flow_id is not 16 bytes');
  const b = Buffer.alloc(PREAMBLE_LEN);
  PREAMBLE_MAGIC.copy(b, PREAMBLE_OFF_MAGIC);
  b[PREAMBLE_OFF_VERSION] = PREAMBLE_VERSION;
  b.writeUInt32BE(p.receiverIndex, PREAMBLE_OFF_RECEIVER_INDEX);
  p.flowId.copy(b, PREAMBLE_OFF_FLOW_ID);
  return b;
}

/**
 * Decodes the first 28 bytes of `buf` (extra bytes are ignored: they are records).
 * Throws WireError: `preamble_short`, `preamble_magic`, `preamble_version`,
 * `preamble_reserved`, `preamble_index` (receiver_index 0, never given out).
 * Whether the index is known is the caller's lookup. flowId is a copy.
 */
export function decodePreamble(buf: Uint8Array): Preamble {
  if (buf.length < PREAMBLE_LEN) throw new WireError('preamble_short', 'preamble shorter than 28 bytes');
  const b = Buffer.from(buf.buffer, buf.byteOffset, PREAMBLE_LEN);
  if (!b.subarray(PREAMBLE_OFF_MAGIC, PREAMBLE_OFF_MAGIC + 4).equals(PREAMBLE_MAGIC)) throw new WireError('preamble_magic', 'preamble magic is not QGW1');
  if (b[PREAMBLE_OFF_VERSION] !== PREAMBLE_VERSION) throw new WireError('preamble_version', `preamble version ${b[PREAMBLE_OFF_VERSION]} is not 1`);
  if (b[PREAMBLE_OFF_RESERVED8] !== 0 || b.readUInt16BE(PREAMBLE_OFF_RESERVED16) !== 0) throw new WireError('preamble_reserved', 'preamble reserved bytes are not 0');
  const receiverIndex = b.readUInt32BE(PREAMBLE_OFF_RECEIVER_INDEX);
  if (receiverIndex === 0) throw new WireError('preamble_index', 'preamble receiver_index is 0');
  return { receiverIndex, flowId: Buffer.from(b.subarray(PREAMBLE_OFF_FLOW_ID, PREAMBLE_OFF_FLOW_ID + PREAMBLE_FLOW_ID_LEN)) };
}
