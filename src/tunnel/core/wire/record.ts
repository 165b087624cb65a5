/**
 * Carrier records (protocol.md s5.1): a 20-byte header
 * `u8 type || u8 flags=0 || u16 reserved=0 || u32 epoch_low32 || u64 counter || u32 ct_len`
 * followed by ct_len bytes of ciphertext || 16-byte tag; AAD = the header.
 *
 * The receiver checks the whole header (type, flags, reserved, counter, per-type length)
 * before reading the body; {@link RecordReader} does that on the stream.
 */
import { ErrorCodes, QkdgwError } from '../../../errors.js';
import { WireError, isWireError } from './errors.js';

export * from './preamble.js';
export * from './l3.js';

// --- sizes and offsets (protocol.md s5.1) ---
export const RECORD_HEADER_LEN = 20;
export const RECORD_OFF_TYPE = 0;
export const RECORD_OFF_FLAGS = 1;
export const RECORD_OFF_RESERVED = 2;
export const RECORD_OFF_EPOCH = 4;
export const RECORD_OFF_COUNTER = 8;
export const RECORD_OFF_CT_LEN = 16;
/** AEAD tag length of both suites, bytes. */
export const AEAD_TAG_LEN = 16;
export const MIN_RECORD_CT_LEN = AEAD_TAG_LEN;
/** 65,536 plaintext bytes + 16-byte tag. */
export const MAX_RECORD_CT_LEN = 65_552;
/** Largest DATA plaintext, bytes: the I/O layer cuts reads into pieces of at most this. */
export const MAX_DATA_PLAINTEXT = 65_536;
/** Largest OPEN plaintext (service name), bytes. */
export const MAX_SERVICE_NAME_LEN = 255;
/** RST plaintext: exactly one u16 reason. */
export const RST_PLAINTEXT_LEN = 2;

/** Counters above this cannot be represented exactly as a JS number: rejected. */
export const MAX_RECORD_COUNTER = Number.MAX_SAFE_INTEGER;
const COUNTER_HI_MAX = Math.floor(Number.MAX_SAFE_INTEGER / 2 ** 32); // 0x1fffff

/** Record types (protocol.md s5.1 table). 0x04 is the L3 packet type, never valid on a carrier. */
export const RecordType = {
  OPEN: 0x01,
  DATA: 0x02,
  FIN: 0x03,
  L3: 0x04,
  RST: 0x05,
  KEEPALIVE: 0x06,
} as const;
export type CarrierRecordType = 0x01 | 0x02 | 0x03 | 0x05 | 0x06;

/** Plaintext length bounds per carrier record type, bytes (protocol.md s5.1 table). */
export const RECORD_PLAINTEXT_BOUNDS: Readonly<Record<CarrierRecordType, { min: number; max: number }>> = {
  [RecordType.OPEN]: { min: 1, max: MAX_SERVICE_NAME_LEN },
  [RecordType.DATA]: { min: 1, max: MAX_DATA_PLAINTEXT },
  [RecordType.FIN]: { min: 0, max: 0 },
  [RecordType.RST]: { min: RST_PLAINTEXT_LEN, max: RST_PLAINTEXT_LEN },
  [RecordType.KEEPALIVE]: { min: 0, max: 0 },
};

export const RECORD_TYPE_NAMES: Readonly<Record<CarrierRecordType, string>> = {
  [RecordType.OPEN]: 'OPEN',
  [RecordType.DATA]: 'DATA',
  [RecordType.FIN]: 'FIN',
  [RecordType.RST]: 'RST',
  [RecordType.KEEPALIVE]: 'KEEPALIVE',
};

export function isCarrierRecordType(t: number): t is CarrierRecordType {
  return t === 0x01 || t === 0x02 || t === 0x03 || t === 0x05 || t === 0x06;
}

/** ct_len bounds of a carrier record type: its plaintext bounds + the 16-byte tag. */
export function ctLenBounds(type: CarrierRecordType): { min: number; max: number } {
  const b = RECORD_PLAINTEXT_BOUNDS[type];
  return { min: b.min + AEAD_TAG_LEN, max: b.max + AEAD_TAG_LEN };
}

/** RST reasons (protocol.md s5.1). Unknown codes read as `internal`. */
export const RstReason = {
  unknown_service: 1,
  target_unreachable: 2,
  target_reset: 3,
  client_reset: 4,
  protocol_error: 5,
  key_expired: 6,
  busy: 7,
  shutdown: 8,
  internal: 0xffff,
} as const;
export type RstReasonName = keyof typeof RstReason;

const RST_NAMES = new Map<number, RstReasonName>(Object.entries(RstReason).map(([k, v]) => [v, k as RstReasonName]));

/** Name of an RST reason code; any code not in the table is `internal`. */
export function rstReasonName(code: number): RstReasonName {
  return RST_NAMES.get(code) ?? 'internal';
}

/** A decoded carrier record header. flags and reserved are always 0 and not kept. */
export interface RecordHeader {
  type: CarrierRecordType;
  /** Low 32 bits of the epoch number (u32). */
  epochLow32: number;
  /** u64 counter; always <= 2^53 - 1. */
  counter: number;
  /** Ciphertext + tag length, bytes. */
  ctLen: number;
}

/**
 * Writes the 20-byte header into `out` at `offset` (a fresh buffer when `out` is omitted)
 * and returns the 20-byte view. Throws QkdgwError INTERNAL on a field we must never send
 * (unknown or L3 type, epochLow32 not a u32, counter not a safe integer >= 0, ct_len
 * outside the type's bounds).
 */
export function encodeRecordHeader(h: RecordHeader, out?: Buffer, offset = 0): Buffer {
  if (!isCarrierRecordType(h.type)) throw new QkdgwError(ErrorCodes.INTERNAL, `refusing to encode record type ${h.type}`);
  if (!Number.isInteger(h.epochLow32) || h.epochLow32 < 0 || h.epochLow32 > 0xffff_ffff) throw new QkdgwError(ErrorCodes.INTERNAL, 'record epoch_low32 is not a u32');
  if (!Number.isSafeInteger(h.counter) || h.counter < 0) throw new QkdgwError(ErrorCodes.INTERNAL, 'record counter is not a safe integer >= 0');
  const b = ctLenBounds(h.type);
  if (!Number.isInteger(h.ctLen) || h.ctLen < b.min || h.ctLen > b.max) throw new QkdgwError(ErrorCodes.INTERNAL, `record ct_len ${h.ctLen} outside ${b.min}..${b.max}`);
  const dst = out ? out.subarray(offset, offset + RECORD_HEADER_LEN) : Buffer.allocUnsafe(RECORD_HEADER_LEN);
  if (dst.length < RECORD_HEADER_LEN) throw new QkdgwError(ErrorCodes.INTERNAL, 'record header output buffer too small');
  dst[RECORD_OFF_TYPE] = h.type;
  dst[RECORD_OFF_FLAGS] = 0;
  dst.writeUInt16BE(0, RECORD_OFF_RESERVED);
  dst.writeUInt32BE(h.epochLow32, RECORD_OFF_EPOCH);
  dst.writeUInt32BE(Math.floor(h.counter / 2 ** 32), RECORD_OFF_COUNTER);
  dst.writeUInt32BE(h.counter >>> 0, RECORD_OFF_COUNTER + 4);
  dst.writeUInt32BE(h.ctLen, RECORD_OFF_CT_LEN);
  return dst;
}

/**
 * Decodes and validates the 20 header bytes at `offset` of `buf` (protocol.md s5.1), before
 * any body byte is read. Throws WireError: `record_short` (< 20 bytes), `record_type`
 * (unknown, or L3 0x04), `record_flags`, `record_reserved`, `record_counter` (> 2^53 - 1),
 * `record_length` (ct_len outside the type's bounds).
 */
export function decodeRecordHeader(buf: Uint8Array, offset = 0): RecordHeader {
  if (buf.length - offset < RECORD_HEADER_LEN) throw new WireError('record_short', 'record header shorter than 20 bytes');
  const v = new DataView(buf.buffer, buf.byteOffset + offset, RECORD_HEADER_LEN);
  const type = v.getUint8(RECORD_OFF_TYPE);
  if (!isCarrierRecordType(type)) throw new WireError('record_type', `record type 0x${type.toString(16).padStart(2, '0')} is not valid on a carrier`);
  const ctLen = v.getUint32(RECORD_OFF_CT_LEN);
  if (ctLen < MIN_RECORD_CT_LEN || ctLen > MAX_RECORD_CT_LEN) throw new WireError('record_length', `record ct_len ${ctLen} outside ${MIN_RECORD_CT_LEN}..${MAX_RECORD_CT_LEN}`);
  if (v.getUint8(RECORD_OFF_FLAGS) !== 0) throw new WireError('record_flags', 'record flags are not 0');
  if (v.getUint16(RECORD_OFF_RESERVED) !== 0) throw new WireError('record_reserved', 'record reserved field is not 0');
  const b = ctLenBounds(type);
  if (ctLen < b.min || ctLen > b.max) throw new WireError('record_length', `${RECORD_TYPE_NAMES[type]} ct_len ${ctLen} outside ${b.min}..${b.max}`);
  const hi = v.getUint32(RECORD_OFF_COUNTER);
  if (hi > COUNTER_HI_MAX) throw new WireError('record_counter', 'record counter above 2^53 - 1');
  return {
    type,
    epochLow32: v.getUint32(RECORD_OFF_EPOCH),
    counter: hi * 2 ** 32 + v.getUint32(RECORD_OFF_COUNTER + 4),
    ctLen,
  };
}

/** One complete carrier record: its validated header and ct_len bytes of ciphertext || tag. */
export interface WireRecord {
  header: RecordHeader;
  body: Buffer;
}

/**
 * Splits a carrier byte stream (after the preamble) into records. Validates each header as
 * soon as its 20 bytes are there, then collects exactly ct_len bytes; between calls it holds
 * at most one incomplete record (<= 20 + 65,552 bytes). A body that lies whole inside one
 * chunk is returned as a view of that chunk (no copy), so callers must not reuse chunk
 * memory (Node sockets never do). After an error the reader stays failed.
 */
export class RecordReader {
  readonly #hdr = Buffer.alloc(RECORD_HEADER_LEN);
  #hdrFill = 0;
  #header: RecordHeader | null = null;
  #body: Buffer | null = null;
  #bodyFill = 0;
  #failed: WireError | null = null;

  /** Bytes held for an incomplete record. */
  get buffered(): number {
    return this.#hdrFill + this.#bodyFill + (this.#header ? RECORD_HEADER_LEN : 0);
  }

  /**
   * Feeds bytes; returns every record completed by them, in order. Throws WireError
   * (see {@link decodeRecordHeader}) as soon as a bad header is complete; records completed
   * earlier in the same chunk are dropped with it (the carrier aborts anyway).
   */
  push(chunk: Uint8Array): WireRecord[] {
    if (this.#failed) throw this.#failed;
    const out: WireRecord[] = [];
    let off = 0;
    try {
      while (off < chunk.length) {
        if (this.#header === null) {
          if (this.#hdrFill === 0 && chunk.length - off >= RECORD_HEADER_LEN) {
            this.#header = decodeRecordHeader(chunk, off);
            off += RECORD_HEADER_LEN;
          } else {
            const take = Math.min(RECORD_HEADER_LEN - this.#hdrFill, chunk.length - off);
            this.#hdr.set(chunk.subarray(off, off + take), this.#hdrFill);
            this.#hdrFill += take;
            off += take;
            if (this.#hdrFill < RECORD_HEADER_LEN) break;
            this.#hdrFill = 0;
            this.#header = decodeRecordHeader(this.#hdr);
          }
          const len = this.#header.ctLen;
          if (chunk.length - off >= len) {
            out.push({ header: this.#header, body: toBuffer(chunk.subarray(off, off + len)) });
            this.#header = null;
            off += len;
            continue;
          }
          this.#body = Buffer.allocUnsafe(len);
          this.#bodyFill = 0;
        }
        const body = this.#body!;
        const take = Math.min(body.length - this.#bodyFill, chunk.length - off);
        body.set(chunk.subarray(off, off + take), this.#bodyFill);
        this.#bodyFill += take;
        off += take;
        if (this.#bodyFill === body.length) {
          out.push({ header: this.#header, body });
          this.#header = null;
          this.#body = null;
          this.#bodyFill = 0;
        }
      }
    } catch (e) {
      if (isWireError(e)) {
        this.#failed = e;
        this.#header = null;
        this.#body = null;
        this.#bodyFill = 0;
        this.#hdrFill = 0;
      }
      throw e;
    }
    return out;
  }
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
