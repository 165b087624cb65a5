/**
 * Control frames (protocol.md s2): `u32 length || JSON object (UTF-8)`, 1 <= length <= 65,536.
 *
 * Every frame has `type` and exactly the members of its row in the protocol.md s2 table.
 * A missing, extra or duplicated member, a wrong type, an integer that is not a safe
 * integer (or out of its range), or a binary field that is not strict base64url of the
 * exact length is a {@link WireError} with alert `bad_message`. Semantic checks that need
 * session state (version 1, identity = verified identity, `next` present only in the
 * responder's HELLO, INIT mode bits vs key_IDs) belong to the session.
 */
import { ErrorCodes, QkdgwError } from '../../../errors.js';
import { fromB64uStrict, toB64u } from '../../../util/bytes.js';
import { ALERTS_REQUIRING_EPOCH, isAlertCode, type AlertCode } from './alerts.js';
import { WireError, isWireError } from './errors.js';
import { isJsonObject, parseStrictJson, type JsonObject, type JsonValue } from './strict-json.js';

export { ALERT_CODES, FATAL_ALERTS, HANDSHAKE_ONLY_ALERTS, ALERTS_REQUIRING_EPOCH, isAlertCode, isFatalAlert } from './alerts.js';
export type { AlertCode } from './alerts.js';

// --- sizes (protocol.md s2, s3) ---
/** Length prefix of a control frame, bytes. */
export const CONTROL_LENGTH_LEN = 4;
/** Largest JSON payload of one control frame, bytes (protocol.md s2). */
export const MAX_CONTROL_PAYLOAD = 65_536;
export const NONCE_LEN = 32; // N_I, N_R
export const X25519_PUBLIC_LEN = 32; // pkX_I, pkX_R
export const MLKEM768_EK_LEN = 1_184; // ek_M
export const MLKEM768_CT_LEN = 1_088; // ct_M
export const HANDSHAKE_TAG_LEN = 32; // tag_R, tag_I
/** key_ID: 1..64 printable ASCII bytes (protocol.md s3.4). */
export const MAX_KEY_ID_LEN = 64;
/** At most one key_ID per INIT (protocol.md s2 table). */
export const MAX_KEY_IDS = 1;
/** ALERT message length bound, in Unicode code points (protocol.md s2 table). */
export const MAX_ALERT_MESSAGE = 256;
/** Bound on HELLO `suites` entries. Our choice: two suites exist; 64 leaves room without unbounded arrays. */
export const MAX_HELLO_SUITES = 64;
/** JSON nesting of a control frame is 2 (object > array); 4 leaves slack and still bounds recursion. */
const CONTROL_JSON_DEPTH = 4;

const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffff_ffff;

export const REKEY_REASONS = ['time', 'records', 'bytes', 'flows'] as const;
export type RekeyReason = (typeof REKEY_REASONS)[number];

export interface Hello { type: 'HELLO'; version: number; identity: string; suites: number[]; receiver_index: number; epoch: number; next?: number }
export interface Init { type: 'INIT'; suite: number; epoch: number; mode: number; key_IDs: string[]; N_I: Buffer; pkX_I: Buffer; ek_M: Buffer }
export interface Resp { type: 'RESP'; epoch: number; N_R: Buffer; pkX_R: Buffer; ct_M: Buffer; tag_R: Buffer }
export interface Confirm { type: 'CONFIRM'; epoch: number; tag_I: Buffer }
export interface RekeyRequest { type: 'REKEY_REQUEST'; epoch: number; reason: RekeyReason }
export interface Ping { type: 'PING'; id: number }
export interface Pong { type: 'PONG'; id: number }
export interface Alert { type: 'ALERT'; code: AlertCode; message: string; epoch?: number }
export type ControlMessage = Hello | Init | Resp | Confirm | RekeyRequest | Ping | Pong | Alert;
export type ControlType = ControlMessage['type'];

/** Members of each type besides `type`, in wire order; `?` marks an optional member. */
const MEMBERS: Record<ControlType, readonly string[]> = {
  HELLO: ['version', 'identity', 'suites', 'receiver_index', 'epoch', 'next?'],
  INIT: ['suite', 'epoch', 'mode', 'key_IDs', 'N_I', 'pkX_I', 'ek_M'],
  RESP: ['epoch', 'N_R', 'pkX_R', 'ct_M', 'tag_R'],
  CONFIRM: ['epoch', 'tag_I'],
  REKEY_REQUEST: ['epoch', 'reason'],
  PING: ['id'],
  PONG: ['id'],
  ALERT: ['code', 'message', 'epoch?'],
};
export const CONTROL_TYPES = Object.keys(MEMBERS) as ControlType[];

/** True for a key_ID string: 1..64 printable ASCII characters (0x20..0x7e). */
export function isKeyIdString(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= MAX_KEY_ID_LEN && /^[\x20-\x7e]+$/.test(s);
}

/** `s` cut to {@link MAX_ALERT_MESSAGE} code points, for building an ALERT. */
export function truncateAlertMessage(s: string): string {
  const cps = Array.from(s);
  return cps.length <= MAX_ALERT_MESSAGE ? s : cps.slice(0, MAX_ALERT_MESSAGE).join('');
}

function bad(member: string, what: string): never {
  throw new WireError('bad_member', `control member ${member}: ${what}`, 'bad_message', { member });
}

function int(o: JsonObject, m: string, min: number, max: number): number {
  const v = o[m];
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(m, 'not a safe integer');
  if (v < min || v > max) bad(m, 'out of range');
  return v;
}

function str(o: JsonObject, m: string): string {
  const v = o[m];
  if (typeof v !== 'string') bad(m, 'not a string');
  return v;
}

function bin(o: JsonObject, m: string, len: number): Buffer {
  const v = o[m];
  if (typeof v !== 'string') bad(m, 'not a string');
  const b = fromB64uStrict(v, len);
  if (b === null) bad(m, `not base64url of exactly ${len} bytes`);
  return b;
}

function arr(o: JsonObject, m: string, maxLen: number): JsonValue[] {
  const v = o[m];
  if (!Array.isArray(v)) bad(m, 'not an array');
  if (v.length > maxLen) bad(m, 'too many entries');
  return v;
}

/** Checks the member set of `o` against `type`'s row: no extra, none missing. */
function checkMembers(o: JsonObject, type: ControlType): void {
  const spec = MEMBERS[type];
  const allowed = new Set(spec.map((m) => m.replace('?', '')));
  allowed.add('type');
  for (const k of Object.keys(o)) {
    if (!allowed.has(k)) throw new WireError('extra_member', `${type} has an extra member`, 'bad_message', { member: k.slice(0, 64) });
  }
  for (const m of spec) {
    if (!m.endsWith('?') && !Object.hasOwn(o, m)) {
      throw new WireError('missing_member', `${type} lacks member ${m}`, 'bad_message', { member: m });
    }
  }
}

/** Parses a control message object already checked to be a JSON object. */
function fromObject(o: JsonObject): ControlMessage {
  if (!Object.hasOwn(o, 'type')) throw new WireError('missing_member', 'control frame lacks type', 'bad_message', { member: 'type' });
  const type = o.type;
  if (typeof type !== 'string' || !Object.hasOwn(MEMBERS, type)) throw new WireError('unknown_type', 'unknown control frame type');
  const t = type as ControlType;
  checkMembers(o, t);
  const epoch = (m = 'epoch') => int(o, m, 0, Number.MAX_SAFE_INTEGER);
  switch (t) {
    case 'HELLO': {
      const suites = arr(o, 'suites', MAX_HELLO_SUITES).map((s, i) => {
        if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0 || s > U16_MAX) bad(`suites[${i}]`, 'not a u16');
        return s;
      });
      const msg: Hello = {
        type: 'HELLO',
        version: int(o, 'version', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
        identity: str(o, 'identity'),
        suites,
        receiver_index: int(o, 'receiver_index', 1, U32_MAX),
        epoch: epoch(),
      };
      if (Object.hasOwn(o, 'next')) msg.next = epoch('next');
      return msg;
    }
    case 'INIT': {
      const keyIds = arr(o, 'key_IDs', MAX_KEY_IDS).map((k, i) => {
        if (!isKeyIdString(k)) bad(`key_IDs[${i}]`, 'not 1..64 printable ASCII characters');
        return k;
      });
      return {
        type: 'INIT',
        suite: int(o, 'suite', 0, U16_MAX),
        epoch: epoch(),
        mode: int(o, 'mode', 0, U8_MAX),
        key_IDs: keyIds,
        N_I: bin(o, 'N_I', NONCE_LEN),
        pkX_I: bin(o, 'pkX_I', X25519_PUBLIC_LEN),
        ek_M: bin(o, 'ek_M', MLKEM768_EK_LEN),
      };
    }
    case 'RESP':
      return {
        type: 'RESP',
        epoch: epoch(),
        N_R: bin(o, 'N_R', NONCE_LEN),
        pkX_R: bin(o, 'pkX_R', X25519_PUBLIC_LEN),
        ct_M: bin(o, 'ct_M', MLKEM768_CT_LEN),
        tag_R: bin(o, 'tag_R', HANDSHAKE_TAG_LEN),
      };
    case 'CONFIRM':
      return { type: 'CONFIRM', epoch: epoch(), tag_I: bin(o, 'tag_I', HANDSHAKE_TAG_LEN) };
    case 'REKEY_REQUEST': {
      const reason = str(o, 'reason');
      if (!(REKEY_REASONS as readonly string[]).includes(reason)) bad('reason', 'unknown rekey reason');
      return { type: 'REKEY_REQUEST', epoch: epoch(), reason: reason as RekeyReason };
    }
    case 'PING':
    case 'PONG':
      return { type: t, id: int(o, 'id', 0, Number.MAX_SAFE_INTEGER) };
    case 'ALERT': {
      const code = str(o, 'code');
      if (!isAlertCode(code)) bad('code', 'unknown ALERT code');
      const message = str(o, 'message');
      if (message.length > MAX_ALERT_MESSAGE && Array.from(message).length > MAX_ALERT_MESSAGE) bad('message', 'longer than 256 characters');
      const msg: Alert = { type: 'ALERT', code, message };
      if (Object.hasOwn(o, 'epoch')) msg.epoch = epoch();
      else if (ALERTS_REQUIRING_EPOCH.has(code)) throw new WireError('missing_member', `ALERT ${code} lacks epoch`, 'bad_message', { member: 'epoch' });
      return msg;
    }
  }
}

/**
 * Decodes the JSON payload of one control frame (without its u32 length).
 * Returns a typed message whose binary members are fresh Buffers.
 * Throws WireError (alert `bad_message`) on any violation of protocol.md s2.
 */
export function decodeControlPayload(json: Uint8Array): ControlMessage {
  if (json.length === 0 || json.length > MAX_CONTROL_PAYLOAD) throw new WireError('frame_length', `control payload length ${json.length} outside 1..${MAX_CONTROL_PAYLOAD}`);
  const v = parseStrictJson(json, { integersOnly: true, maxDepth: CONTROL_JSON_DEPTH });
  if (!isJsonObject(v)) throw new WireError('frame_not_object', 'control frame is not a JSON object');
  return fromObject(v);
}

function toObject(msg: ControlMessage): Record<string, unknown> {
  const o: Record<string, unknown> = { type: msg.type };
  for (const spec of MEMBERS[msg.type] ?? []) {
    const m = spec.replace('?', '');
    const v = (msg as unknown as Record<string, unknown>)[m];
    if (v === undefined && spec.endsWith('?')) continue;
    o[m] = Buffer.isBuffer(v) ? toB64u(v) : v;
  }
  return o;
}

/**
 * Encodes a whole control frame: u32 length || JSON. Members are written in table order;
 * members not in the table are not written. The result is checked with the decoder, so an
 * invalid message (a value out of range, a binary field of the wrong length, an oversized
 * frame) throws QkdgwError INTERNAL: that is a bug on the sending side, never sent.
 */
export function encodeControl(msg: ControlMessage): Buffer {
  if (!msg || typeof msg !== 'object' || !Object.hasOwn(MEMBERS, msg.type)) {
    throw new QkdgwError(ErrorCodes.INTERNAL, 'refusing to encode a control message of unknown type');
  }
  const json = Buffer.from(JSON.stringify(toObject(msg)), 'utf8');
  try {
    decodeControlPayload(json);
  } catch (e) {
    if (isWireError(e)) throw new QkdgwError(ErrorCodes.INTERNAL, `refusing to encode an invalid ${msg.type}: ${e.message}`, { reason: e.reason });
    throw e;
  }
  const frame = Buffer.allocUnsafe(CONTROL_LENGTH_LEN + json.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, CONTROL_LENGTH_LEN);
  return frame;
}

/**
 * A WireError from {@link ControlFrameReader.push}; `before` holds the messages that
 * were complete and valid ahead of the bad frame in the same push, in order, so the
 * session may act on them before it answers `bad_message` and closes.
 */
export class ControlFrameError extends WireError {
  readonly before: ControlMessage[];
  constructor(cause: WireError, before: ControlMessage[]) {
    super(cause.reason, cause.message, cause.alert);
    this.name = 'ControlFrameError';
    this.before = before;
  }
}

/**
 * Splits a TCP byte stream into control messages. Checks each length as soon as its 4
 * bytes are there (before any payload is read), so it never holds more than one frame of
 * at most 4 + 65,536 bytes between calls. After an error the reader stays failed and every
 * later push throws the same error.
 */
export class ControlFrameReader {
  readonly #len = Buffer.alloc(CONTROL_LENGTH_LEN);
  #lenFill = 0;
  #body: Buffer | null = null;
  #bodyFill = 0;
  #failed: WireError | null = null;

  /** Bytes held for an incomplete frame (for tests and metrics). */
  get buffered(): number {
    return this.#lenFill + this.#bodyFill;
  }

  /**
   * Feeds bytes; returns every message completed by them, in order.
   * Throws ControlFrameError (a WireError, alert `bad_message`) on a length of 0 or
   * > 65,536 or a bad payload.
   */
  push(chunk: Uint8Array): ControlMessage[] {
    // Later pushes rethrow with an empty `before`: those messages were handed out once.
    if (this.#failed) throw new ControlFrameError(this.#failed, []);
    const out: ControlMessage[] = [];
    let off = 0;
    try {
      while (off < chunk.length) {
        if (this.#body === null) {
          const take = Math.min(CONTROL_LENGTH_LEN - this.#lenFill, chunk.length - off);
          this.#len.set(chunk.subarray(off, off + take), this.#lenFill);
          this.#lenFill += take;
          off += take;
          if (this.#lenFill < CONTROL_LENGTH_LEN) break;
          this.#lenFill = 0;
          const len = this.#len.readUInt32BE(0);
          if (len === 0 || len > MAX_CONTROL_PAYLOAD) throw new WireError('frame_length', `control frame length ${len} outside 1..${MAX_CONTROL_PAYLOAD}`);
          if (chunk.length - off >= len) {
            // Whole payload in this chunk: decode in place, nothing buffered.
            out.push(decodeControlPayload(chunk.subarray(off, off + len)));
            off += len;
            continue;
          }
          this.#body = Buffer.allocUnsafe(len);
          this.#bodyFill = 0;
        }
        const take = Math.min(this.#body.length - this.#bodyFill, chunk.length - off);
        this.#body.set(chunk.subarray(off, off + take), this.#bodyFill);
        this.#bodyFill += take;
        off += take;
        if (this.#bodyFill === this.#body.length) {
          const body = this.#body;
          this.#body = null;
          this.#bodyFill = 0;
          out.push(decodeControlPayload(body));
        }
      }
    } catch (e) {
      if (!isWireError(e)) throw e;
      this.#body = null;
      this.#bodyFill = 0;
      this.#failed = e;
      throw new ControlFrameError(e, out);
    }
    return out;
  }
}
