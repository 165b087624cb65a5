/**
 * L3 packet header (protocol.md s5.2), 20 bytes:
 * `u8 type=0x04 || u8 flags=0 || u16 reserved=0 || u32 receiver_index || u32 epoch_low32 || u64 counter`,
 * then ciphertext || 16-byte tag; AAD = the header. `receiver_index` is the value the
 * receiving gateway sent in its HELLO.
 */
import { ErrorCodes, QkdgwError } from '../../../errors.js';
import { WireError } from './errors.js';

export const L3_HEADER_LEN = 20;
export const L3_TYPE = 0x04;
export const L3_OFF_TYPE = 0;
export const L3_OFF_FLAGS = 1;
export const L3_OFF_RESERVED = 2;
export const L3_OFF_RECEIVER_INDEX = 4;
export const L3_OFF_EPOCH = 8;
export const L3_OFF_COUNTER = 12;
const L3_TAG_LEN = 16;
/** Shortest valid datagram: header + tag (an empty IP packet is never sent, but the AEAD allows it). */
export const L3_MIN_DATAGRAM = L3_HEADER_LEN + L3_TAG_LEN;
const COUNTER_HI_MAX = Math.floor(Number.MAX_SAFE_INTEGER / 2 ** 32);

export interface L3Header {
  /** u32, 1..2^32-1. */
  receiverIndex: number;
  /** Low 32 bits of the epoch. */
  epochLow32: number;
  /** u64 counter, <= 2^53 - 1. */
  counter: number;
}

/** Writes the 20-byte header into `out` at `offset` (fresh buffer if omitted). Throws QkdgwError INTERNAL on an unsendable field. */
export function encodeL3Header(h: L3Header, out?: Buffer, offset = 0): Buffer {
  if (!Number.isInteger(h.receiverIndex) || h.receiverIndex < 1 || h.receiverIndex > 0xffff_ffff) throw new QkdgwError(ErrorCodes.INTERNAL, 'L3 receiver_index outside 1..2^32-1');
  if (!Number.isInteger(h.epochLow32) || h.epochLow32 < 0 || h.epochLow32 > 0xffff_ffff) throw new QkdgwError(ErrorCodes.INTERNAL, 'L3 epoch_low32 is not a u32');
  if (!Number.isSafeInteger(h.counter) || h.counter < 0) throw new QkdgwError(ErrorCodes.INTERNAL, 'L3 counter is not a safe integer >= 0');
  const dst = out ? out.subarray(offset, offset + L3_HEADER_LEN) : Buffer.allocUnsafe(L3_HEADER_LEN);
  if (dst.length < L3_HEADER_LEN) throw new QkdgwError(ErrorCodes.INTERNAL, 'L3 header output buffer too small');
  dst[L3_OFF_TYPE] = L3_TYPE;
  dst[L3_OFF_FLAGS] = 0;
  dst.writeUInt16BE(0, L3_OFF_RESERVED);
  dst.writeUInt32BE(h.receiverIndex, L3_OFF_RECEIVER_INDEX);
  dst.writeUInt32BE(h.epochLow32, L3_OFF_EPOCH);
  dst.writeUInt32BE(Math.floor(h.counter / 2 ** 32), L3_OFF_COUNTER);
  dst.writeUInt32BE(h.counter >>> 0, L3_OFF_COUNTER + 4);
  return dst;
}

/**
 * Decodes the first 20 bytes of `buf`. Throws WireError: `l3_short`, `l3_type`, `l3_flags`,
 * `l3_reserved`, `l3_index` (receiver_index 0), `l3_counter` (> 2^53 - 1).
 */
export function decodeL3Header(buf: Uint8Array): L3Header {
  if (buf.length < L3_HEADER_LEN) throw new WireError('l3_short', 'L3 header shorter than 20 bytes');
  const v = new DataView(buf.buffer, buf.byteOffset, L3_HEADER_LEN);
  if (v.getUint8(L3_OFF_TYPE) !== L3_TYPE) throw new WireError('l3_type', 'L3 packet type is not 0x04');
  if (v.getUint8(L3_OFF_FLAGS) !== 0) throw new WireError('l3_flags', 'L3 flags are not 0');
  if (v.getUint16(L3_OFF_RESERVED) !== 0) throw new WireError('l3_reserved', 'L3 reserved field is not 0');
  const receiverIndex = v.getUint32(L3_OFF_RECEIVER_INDEX);
  if (receiverIndex === 0) throw new WireError('l3_index', 'L3 receiver_index is 0');
  const hi = v.getUint32(L3_OFF_COUNTER);
  if (hi > COUNTER_HI_MAX) throw new WireError('l3_counter', 'L3 counter above 2^53 - 1');
  return { receiverIndex, epochLow32: v.getUint32(L3_OFF_EPOCH), counter: hi * 2 ** 32 + v.getUint32(L3_OFF_COUNTER + 4) };
}

/**
 * Splits one UDP datagram into its decoded header, the raw header bytes (the AAD) and
 * ciphertext || tag. Throws WireError `l3_short` below 36 bytes, else as decodeL3Header.
 */
export function splitL3Datagram(dgram: Uint8Array): { header: L3Header; aad: Buffer; sealed: Buffer } {
  if (dgram.length < L3_MIN_DATAGRAM) throw new WireError('l3_short', 'L3 datagram shorter than header + tag');
  const header = decodeL3Header(dgram);
  const b = Buffer.from(dgram.buffer, dgram.byteOffset, dgram.byteLength);
  return { header, aad: b.subarray(0, L3_HEADER_LEN), sealed: b.subarray(L3_HEADER_LEN) };
}
