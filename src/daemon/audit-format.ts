/**
 * The key audit trail line format (README "Key audit trail"), shared by the writer
 * (audit.ts) and the checker (audit-verify.ts).
 *
 * One JSON object per line, fields in this order, absent ones left out:
 *   {seq, time, event, peer?, key_ID?, epoch?, mode?, reason?, prev}
 * `seq` counts records from 1; `time` is ISO 8601 UTC with milliseconds; `prev` is the
 * lower-case hex SHA-256 of the previous record's exact line bytes without its newline
 * (64 zeros for the first record). A run of lines that are not JSON (a write torn by a
 * crash or a full disk) is followed by a `chain_resumed_after_torn_line` record whose
 * `prev` skips the run and whose `reason` is {@link tornReason} of the run's bytes.
 *
 * The field whitelist is the fence that keeps key bytes out: a record carries key_IDs,
 * epoch numbers and short reasons, never key material (issue 5).
 */
import { createHash } from 'node:crypto';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { isValidKeyId } from '../kms/etsi014/key-id.js';

/** `prev` of the first record: 64 hex zeros. */
export const ZERO_HASH = '0'.repeat(64);

/** Longest `reason`, in UTF-16 code units; longer reasons are cut (record) or refused (verify). */
export const REASON_MAX = 256;

/** Longest run of torn bytes, and longest line, the writer and the checker accept: 4 MiB. */
export const MAX_TORN_BYTES = 4 * 1024 * 1024;

/** Events a caller may record (src/daemon/audit-events.ts maps log events to these). */
export const RECORDABLE_EVENTS = [
  /** a QKD key delivered by the KME to this (master) SAE: enc_keys, usually via the key pool */
  'key_fetched',
  /** the initiator starts a handshake for `epoch` in `mode` */
  'handshake_started',
  /** responder: the announced key came by dec_keys and `epoch` is derived, waiting for CONFIRM */
  'epoch_next',
  /** `epoch` is installed and carries traffic (key confirmed: tag_R / CONFIRM verified) */
  'epoch_switch',
  /** the secrets of `epoch` (and so what its QKD key gave) are zeroized: evicted or discarded */
  'epoch_zeroized',
  /** a QKD key was not used: failed or stale handshake, or a late KME answer; zeroized */
  'key_discarded',
  /** unused pooled keys were zeroized (expired or pool closed); the count is in `reason` */
  'pool_keys_zeroized',
  /** alarm: a degraded epoch (ML-KEM + X25519 only) is in use (protocol.md s6) */
  'qkd_degraded',
  /** a QKD epoch is in use again after degraded ones */
  'qkd_restored',
  /** `preferred`: the next INIT is degraded because QKD keys failed */
  'qkd_step_down',
  /** alarm: the current epoch hit its hard limit with no successor */
  'epoch_hard_limit',
] as const;

/** Events only the trail itself writes. */
export const TRAIL_EVENTS = ['audit_opened', 'audit_closed', 'chain_resumed_after_torn_line'] as const;

export type RecordableEventName = (typeof RECORDABLE_EVENTS)[number];
export type TrailEventName = (typeof TRAIL_EVENTS)[number];
export type AuditEventName = RecordableEventName | TrailEventName;

/** `qkd`: the epoch mixes a QKD key; `degraded`: ML-KEM + X25519 only (protocol.md s6). */
export type AuditMode = 'qkd' | 'degraded';

/**
 * One event to record. Only these fields exist; anything else (a field named `key`, a
 * Buffer anywhere) is refused with QKDGW_E_AUDIT_FIELD.
 */
export interface AuditEvent {
  event: RecordableEventName;
  /** the peer gateway's identity (SAE ID): 1..64 of A-Z a-z 0-9 . _ - */
  peer?: string;
  /** ETSI GS QKD 014 key_ID: 1..64 printable ASCII characters (protocol.md s3.4) */
  key_ID?: string;
  /** epoch number, a non-negative safe integer */
  epoch?: number;
  mode?: AuditMode;
  /** why; at most {@link REASON_MAX} characters (longer is cut) */
  reason?: string;
}

/** A parsed line. */
export interface AuditRecord {
  seq: number;
  time: string;
  event: AuditEventName;
  peer?: string;
  key_ID?: string;
  epoch?: number;
  mode?: AuditMode;
  reason?: string;
  prev: string;
}

const EVENT_FIELDS = ['event', 'peer', 'key_ID', 'epoch', 'mode', 'reason'] as const;
const RECORD_FIELDS = new Set<string>(['seq', 'time', ...EVENT_FIELDS, 'prev']);
const ALL_EVENTS = new Set<string>([...RECORDABLE_EVENTS, ...TRAIL_EVENTS]);
const RECORDABLE = new Set<string>(RECORDABLE_EVENTS);
const PEER = /^[A-Za-z0-9._-]{1,64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Lower-case hex SHA-256 of `b`. */
export function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * The `reason` of the `chain_resumed_after_torn_line` record that follows a run of torn
 * lines: `bytes` are the run's exact file bytes (lines joined by their newlines, without
 * the newline after the last), `lines` how many lines the run has.
 */
export function tornReason(bytes: Uint8Array, lines: number): string {
  return `torn: ${lines} line(s), ${bytes.length} bytes, sha256 ${sha256Hex(bytes)}`;
}

/** True when `line` parses as JSON at all (a torn write never does). */
export function parsesAsJson(line: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString('utf8')) };
  } catch {
    return { ok: false };
  }
}

function refuse(field: string, why: string): never {
  // Never echo the value: it may be exactly what must not be written.
  throw new QkdgwError(ErrorCodes.AUDIT_FIELD, `audit event refused: ${field} ${why}`, { field });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/**
 * Checks an event from a caller and returns a fresh copy holding only whitelisted fields.
 * `internal` allows the trail's own events. A value that is a Buffer or any typed array,
 * an unknown field (e.g. `key`), a malformed key_ID/peer/epoch/mode, or a non-string
 * reason throws QKDGW_E_AUDIT_FIELD; the message names the field, never its value.
 */
export function checkEvent(ev: unknown, internal = false): Omit<AuditRecord, 'seq' | 'time' | 'prev'> {
  if (!isPlainObject(ev)) refuse('event object', 'must be a plain object');
  for (const k of Reflect.ownKeys(ev)) {
    if (typeof k !== 'string' || !(EVENT_FIELDS as readonly string[]).includes(k)) refuse(`field ${String(k)}`, 'is not an audit field (only event, peer, key_ID, epoch, mode, reason)');
    const v = ev[k];
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) refuse(k, 'holds bytes');
  }
  const { event, peer, key_ID, epoch, mode, reason } = ev;
  if (typeof event !== 'string' || !(internal ? ALL_EVENTS : RECORDABLE).has(event)) refuse('event', 'is not a known audit event');
  const out: Omit<AuditRecord, 'seq' | 'time' | 'prev'> = { event: event as AuditEventName };
  if (peer !== undefined) {
    if (typeof peer !== 'string' || !PEER.test(peer)) refuse('peer', 'must be 1..64 of A-Z a-z 0-9 . _ -');
    out.peer = peer;
  }
  if (key_ID !== undefined) {
    if (!isValidKeyId(key_ID)) refuse('key_ID', 'must be 1..64 printable ASCII characters');
    out.key_ID = key_ID;
  }
  if (epoch !== undefined) {
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) refuse('epoch', 'must be a non-negative integer');
    out.epoch = epoch;
  }
  if (mode !== undefined) {
    if (mode !== 'qkd' && mode !== 'degraded') refuse('mode', "must be 'qkd' or 'degraded'");
    out.mode = mode;
  }
  if (reason !== undefined) {
    if (typeof reason !== 'string') refuse('reason', 'must be a string');
    out.reason = reason.length > REASON_MAX ? `${reason.slice(0, REASON_MAX - 3)}...` : reason;
  }
  return out;
}

/** The exact line (no newline) of one record; fields in the documented order. */
export function encodeRecord(seq: number, time: string, ev: Omit<AuditRecord, 'seq' | 'time' | 'prev'>, prev: string): string {
  // Built field by field (never a spread of the caller's object): the whitelist is the format.
  const o: Record<string, unknown> = { seq, time, event: ev.event };
  if (ev.peer !== undefined) o.peer = ev.peer;
  if (ev.key_ID !== undefined) o.key_ID = ev.key_ID;
  if (ev.epoch !== undefined) o.epoch = ev.epoch;
  if (ev.mode !== undefined) o.mode = ev.mode;
  if (ev.reason !== undefined) o.reason = ev.reason;
  o.prev = prev;
  return JSON.stringify(o);
}

/**
 * Checks a parsed line against the format: only known fields, seq >= 1, ISO time, a known
 * event, valid optional fields, 64-hex prev. Returns the record or why it is not one.
 * Chain checks (seq continuity, prev) are the caller's.
 */
export function checkRecord(v: unknown): { ok: true; rec: AuditRecord } | { ok: false; reason: string } {
  if (!isPlainObject(v)) return { ok: false, reason: 'not a JSON object' };
  for (const k of Object.keys(v)) if (!RECORD_FIELDS.has(k)) return { ok: false, reason: `unexpected field ${JSON.stringify(k.slice(0, 40))}` };
  const { seq, time, prev } = v;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return { ok: false, reason: 'seq is not a positive integer' };
  if (typeof time !== 'string' || !ISO.test(time) || Number.isNaN(Date.parse(time))) return { ok: false, reason: 'time is not an ISO 8601 UTC time' };
  if (typeof prev !== 'string' || !HEX64.test(prev)) return { ok: false, reason: 'prev is not 64 lower-case hex digits' };
  let ev: Omit<AuditRecord, 'seq' | 'time' | 'prev'>;
  try {
    const { seq: _s, time: _t, prev: _p, ...rest } = v;
    ev = checkEvent(rest, true);
  } catch (e) {
    return { ok: false, reason: (e as Error).message.replace(/^audit event refused: /, '') };
  }
  if (typeof v.reason === 'string' && v.reason.length > REASON_MAX) return { ok: false, reason: `reason longer than ${REASON_MAX} characters` };
  return { ok: true, rec: { seq, time, ...ev, prev } };
}
