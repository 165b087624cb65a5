/**
 * What a carrier's receive side yields, and why a carrier aborts (protocol.md s5.1).
 */
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { RstReasonName } from './wire/record.js';

/** An authenticated record, decoded. `epoch` is the full epoch number it was sealed under. */
export type CarrierEvent =
  | { kind: 'open'; epoch: number; service: string }
  | { kind: 'data'; epoch: number; bytes: Buffer }
  | { kind: 'fin'; epoch: number }
  | { kind: 'rst'; epoch: number; reason: RstReasonName; code: number }
  | { kind: 'keepalive'; epoch: number };

/**
 * Why a carrier aborted. Receive side: `unknown_epoch` (lookup gave nothing usable),
 * `epoch_decreased`, `bad_counter` (not 0 on a new epoch, not last + 1 otherwise),
 * `auth_failed` (tag; no plaintext byte is released), `first_not_open` (exit side: first
 * record not OPEN), `record_before_open` (entry side: a record before we sent OPEN),
 * `open_twice`, `open_from_exit` (entry side got an OPEN), `after_fin` (DATA or FIN after
 * FIN), `bad_open_name`, `bad_rst`, `malformed` (body length differs from ct_len).
 * Send side (a bug in the caller, or an unusable epoch): the `send_*` reasons and
 * `counter_exhausted`. `closed`: the carrier already ended (RST, abort or close()).
 */
export type CarrierAbortReason =
  | 'unknown_epoch'
  | 'epoch_decreased'
  | 'bad_counter'
  | 'auth_failed'
  | 'first_not_open'
  | 'record_before_open'
  | 'open_twice'
  | 'open_from_exit'
  | 'after_fin'
  | 'bad_open_name'
  | 'bad_rst'
  | 'malformed'
  | 'send_first_not_open'
  | 'send_open_twice'
  | 'send_open_from_exit'
  | 'send_not_admitted'
  | 'send_after_fin'
  | 'send_epoch_decreased'
  | 'send_epoch_unusable'
  | 'send_bad_payload'
  | 'counter_exhausted'
  | 'closed';

/**
 * Thrown by CarrierSession when the carrier must end (protocol.md s5.1: reset the local
 * socket, close the carrier, count `reason`). The session is already closed and its flow
 * keys wiped when this is thrown. Code PROTOCOL; never carries key bytes.
 */
export class CarrierAbort extends QkdgwError {
  readonly reason: CarrierAbortReason;
  constructor(reason: CarrierAbortReason, message: string, details?: Record<string, unknown>) {
    super(ErrorCodes.PROTOCOL, message, { reason, ...details });
    this.name = 'CarrierAbort';
    this.reason = reason;
  }
}

export function isCarrierAbort(e: unknown): e is CarrierAbort {
  return e instanceof CarrierAbort;
}
