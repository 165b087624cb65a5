/**
 * The one error type of the wire modules: every malformed frame, record header, preamble
 * or L3 header is a WireError (code WIRE_MALFORMED). `alert` is the ALERT code a control
 * session answers with (always `bad_message` for decoding faults); `reason` is a short,
 * stable tag for counters and logs. Messages never contain key material.
 */
import { ErrorCodes, QkdgwError } from '../../../errors.js';
import type { AlertCode } from './alerts.js';

export type WireErrorReason =
  // strict JSON
  | 'json_syntax'
  | 'json_utf8'
  | 'json_depth'
  | 'json_duplicate'
  // control frames
  | 'frame_length'
  | 'frame_not_object'
  | 'unknown_type'
  | 'missing_member'
  | 'extra_member'
  | 'bad_member'
  // carrier records
  | 'record_type'
  | 'record_flags'
  | 'record_reserved'
  | 'record_counter'
  | 'record_length'
  | 'record_short'
  // preamble
  | 'preamble_magic'
  | 'preamble_version'
  | 'preamble_reserved'
  | 'preamble_index'
  | 'preamble_short'
  // L3
  | 'l3_type'
  | 'l3_flags'
  | 'l3_reserved'
  | 'l3_index'
  | 'l3_counter'
  | 'l3_short';

export class WireError extends QkdgwError {
  readonly alert: AlertCode;
  readonly reason: WireErrorReason;
  constructor(reason: WireErrorReason, message: string, alert: AlertCode = 'bad_message', details?: Record<string, unknown>) {
    super(ErrorCodes.WIRE_MALFORMED, message, { reason, alert, ...details });
    this.name = 'WireError';
    this.alert = alert;
    this.reason = reason;
  }
}

export function isWireError(e: unknown): e is WireError {
  return e instanceof WireError;
}
