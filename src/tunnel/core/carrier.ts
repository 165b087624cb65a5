/**
 * The per-carrier record protocol of protocol.md s5.1 as a pure object (no I/O, no clock):
 * sequencing, counters, epochs, flow keys, OPEN/FIN/RST rules. The I/O layer feeds it
 * records from a {@link RecordReader} and writes what {@link CarrierSession.sealRecord}
 * returns.
 *
 * Send side: the caller passes the epoch snapshot `(epoch, suite, F_d)` with every record;
 * it is read once, and header, key and counter all come from that one read (BC-23). The
 * flow key of (epoch, flow_id) is derived once and cached; counter 0 on the first record
 * under a new epoch, +1 after; the epoch never decreases.
 *
 * Receive side: every record must authenticate before anything of it is used, the epoch
 * never decreases, counters run 0, 1, 2, ... per epoch, and the OPEN/FIN/RST sequence rules
 * hold; any violation throws {@link CarrierAbort} and the carrier is closed with its keys
 * wiped.
 */
import type { SuiteId } from '../../crypto/suites.js';
import { aeadForSuite, NODE_BACKEND, type CryptoBackend } from '../../crypto/backend.js';
import { deriveFlowKeys } from '../../kdf/flow.js';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { SecretBytes } from '../../util/secret.js';
import { CarrierAbort, type CarrierAbortReason, type CarrierEvent } from './carrier-events.js';
import { FlowKeySlot, type CarrierCrypto } from './carrier-keys.js';
import {
  AEAD_TAG_LEN,
  MAX_DATA_PLAINTEXT,
  MAX_RECORD_COUNTER,
  MAX_SERVICE_NAME_LEN,
  PREAMBLE_FLOW_ID_LEN,
  RECORD_HEADER_LEN,
  RECORD_TYPE_NAMES,
  RST_PLAINTEXT_LEN,
  RecordType,
  RstReason,
  encodeRecordHeader,
  isCarrierRecordType,
  rstReasonName,
  type CarrierRecordType,
  type RecordHeader,
  type RstReasonName,
} from './wire/record.js';

export { CarrierAbort, isCarrierAbort, type CarrierAbortReason, type CarrierEvent } from './carrier-events.js';
export type { CarrierCrypto } from './carrier-keys.js';

/** The epoch a record is sealed under: our outbound direction's F_d (`flow i2r` or `flow r2i`). */
export interface SendEpoch {
  epoch: number;
  suite: SuiteId;
  flowSecret: SecretBytes;
}

/** An epoch a received record may use: the peer's outbound direction's F_d. */
export interface RecvEpoch {
  epoch: number;
  suite: SuiteId;
  flowSecret: SecretBytes;
}

/**
 * Maps a record's `epoch_low32` to the epoch it names, or null when this carrier may not
 * use it (protocol.md s4). `purpose` is `open` for the first record on an exit-side carrier
 * (only epochs that accept new carriers: current, next, previous within grace; a `next`
 * past its hard limit is not receive-capable) and `record` otherwise (any epoch still held
 * or pinned for this carrier).
 */
export type RecvEpochLookup = (epochLow32: number, purpose: 'open' | 'record') => RecvEpoch | null;

export type CarrierSide = 'entry' | 'exit';

export interface CarrierOptions {
  /** entry: accepted the client and opens the carrier; exit: accepted the carrier. */
  side: CarrierSide;
  /** 16 bytes from the preamble (copied). */
  flowId: Uint8Array;
  recvLookup: RecvEpochLookup;
  /** Defaults to the suite registry's AEADs and src/kdf/flow.ts. */
  crypto?: CarrierCrypto;
}

/** Carrier crypto on `backend` (suite 1) and XChaCha20-Poly1305 (suite 2), QGW-KDF-1 flow keys. */
export function carrierCryptoFor(backend: CryptoBackend): CarrierCrypto {
  return {
    aeadFor: (suite) => aeadForSuite(suite, backend),
    deriveFlowKeys: (flowSecret, flowId, suite) => deriveFlowKeys(flowSecret, flowId, suite),
  };
}

/** Carrier crypto on the node:crypto backend (tests and tools; the daemon passes its chosen backend). */
export const defaultCarrierCrypto: CarrierCrypto = carrierCryptoFor(NODE_BACKEND);

/** protocol.md s5.1: a service name is 1..255 bytes of [A-Za-z0-9._-]. */
export const SERVICE_NAME_RE = /^[A-Za-z0-9._-]{1,255}$/;

function isServiceByte(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f || c === 0x2d;
}

const EMPTY = Buffer.alloc(0);

export class CarrierSession {
  readonly side: CarrierSide;
  readonly flowId: Buffer;
  readonly #lookup: RecvEpochLookup;
  readonly #crypto: CarrierCrypto;
  readonly #aad = Buffer.alloc(RECORD_HEADER_LEN);

  #send: FlowKeySlot | null = null;
  #sendEpoch: number | null = null;
  #sendCounter = 0; // next counter under #sendEpoch
  #recv: FlowKeySlot | null = null;
  #recvEpoch: number | null = null;
  #recvCounter = -1; // last counter received under #recvEpoch

  #openSent = false;
  #openSentEpoch: number | null = null;
  #openReceived = false;
  #openReceivedEpoch: number | null = null;
  #service: string | null = null;
  #admitted = false;
  #finSent = false;
  #finReceived = false;
  #rst: 'sent' | 'received' | null = null;
  #closed = false;
  #abortReason: CarrierAbortReason | null = null;

  /** Throws QkdgwError INTERNAL unless flowId is 16 bytes. */
  constructor(opts: CarrierOptions) {
    if (opts.flowId.length !== PREAMBLE_FLOW_ID_LEN) throw new QkdgwError(ErrorCodes.INTERNAL, 'flow_id must be 16 bytes');
    if (opts.side !== 'entry' && opts.side !== 'exit') throw new QkdgwError(ErrorCodes.INTERNAL, 'carrier side must be entry or exit');
    this.side = opts.side;
    this.flowId = Buffer.from(opts.flowId);
    this.#lookup = opts.recvLookup;
    this.#crypto = opts.crypto ?? defaultCarrierCrypto;
  }

  // ---------------------------------------------------------------- state

  /** True once a FIN was both sent and received: only then may the entry side close TCP. */
  get finished(): boolean {
    return this.#finSent && this.#finReceived;
  }
  get finSent(): boolean {
    return this.#finSent;
  }
  get finReceived(): boolean {
    return this.#finReceived;
  }
  /** 'sent' / 'received' once an RST went either way. */
  get rst(): 'sent' | 'received' | null {
    return this.#rst;
  }
  /** True after an RST, an abort or close(): nothing more is sealed or opened. */
  get closed(): boolean {
    return this.#closed;
  }
  /** Why the carrier aborted, or null. */
  get abortReason(): CarrierAbortReason | null {
    return this.#abortReason;
  }
  /** Exit side: the service named by the OPEN received, once it authenticated. */
  get service(): string | null {
    return this.#service;
  }
  /** Entry side: epoch our OPEN was sealed under. Exit side: epoch the OPEN arrived under. */
  get openEpoch(): number | null {
    return this.side === 'entry' ? this.#openSentEpoch : this.#openReceivedEpoch;
  }
  /** Epoch of the last record sealed, or null. */
  get lastSentEpoch(): number | null {
    return this.#sendEpoch;
  }
  /** Epoch of the last authenticated record received, or null. */
  get lastReceivedEpoch(): number | null {
    return this.#recvEpoch;
  }
  /**
   * The carrier's pin (protocol.md s4): the session keeps epoch e's flow receive secret
   * while some open carrier has pinEpoch <= e. The epoch of the last record received; an
   * entry-side carrier that has received nothing counts its OPEN's epoch minus 1; null when
   * neither exists or the carrier is closed (nothing pinned).
   */
  get pinEpoch(): number | null {
    if (this.#closed) return null;
    if (this.#recvEpoch !== null) return this.#recvEpoch;
    if (this.side === 'entry' && this.#openSentEpoch !== null) return this.#openSentEpoch - 1;
    return null;
  }
  /** True when a DATA record may be sealed now. */
  get canSendData(): boolean {
    return !this.#closed && !this.#finSent && (this.side === 'entry' ? this.#openSent : this.#admitted);
  }

  /**
   * Exit side only: the OPEN's flow_id was just added to its epoch's set (protocol.md s5.1
   * Replay). Before this nothing may be sealed. Throws QkdgwError INTERNAL on the entry
   * side or before an authenticated OPEN.
   */
  admit(): void {
    if (this.side !== 'exit' || !this.#openReceived) throw new QkdgwError(ErrorCodes.INTERNAL, 'admit() is for an exit carrier after its OPEN');
    if (this.#closed) throw new QkdgwError(ErrorCodes.INTERNAL, 'admit() on a closed carrier');
    this.#admitted = true;
  }

  /** Ends the carrier (idempotent): wipes cached flow keys; later seal/open throw CarrierAbort `closed`. */
  close(): void {
    this.#closed = true;
    this.#send?.wipe();
    this.#recv?.wipe();
    this.#send = null;
    this.#recv = null;
  }

  #abort(reason: CarrierAbortReason, message: string, details?: Record<string, unknown>): never {
    if (!this.#closed) this.#abortReason = reason;
    this.close();
    throw new CarrierAbort(reason, message, { flowSide: this.side, ...details });
  }

  // ---------------------------------------------------------------- send

  /**
   * Seals one record under `send` and returns header || ciphertext || tag, written into one
   * buffer (20 + payload.length + 16 bytes). Reads `send.epoch`, `send.suite` and
   * `send.flowSecret` exactly once. Enforces: entry side's first record is OPEN, exactly
   * once; exit side never sends OPEN and seals nothing before admit(); no DATA or second FIN
   * after FIN; payload within the type's bounds; epoch never decreases; counter 0 on a new
   * epoch, +1 after. Throws CarrierAbort (`send_*`, `counter_exhausted`, `closed`), after
   * which the carrier is closed; errors of the crypto layer pass through unchanged.
   */
  sealRecord(type: CarrierRecordType, payload: Uint8Array, send: SendEpoch): Buffer {
    const epoch = send.epoch;
    const suite = send.suite;
    const flowSecret = send.flowSecret;
    if (this.#closed) throw new CarrierAbort('closed', 'carrier is closed');
    if (!isCarrierRecordType(type)) this.#abort('send_bad_payload', `cannot seal record type ${type} on a carrier`);
    this.#checkSendSequence(type, payload);
    if (!Number.isSafeInteger(epoch) || epoch < 1 || flowSecret.wiped) this.#abort('send_epoch_unusable', 'send epoch is not usable', { epoch });
    if (this.#sendEpoch !== null && epoch < this.#sendEpoch) {
      this.#abort('send_epoch_decreased', `send epoch ${epoch} below ${this.#sendEpoch}`, { epoch });
    }
    if (this.#send === null || this.#send.epoch !== epoch) {
      const slot = FlowKeySlot.derive(this.#crypto, flowSecret, this.flowId, epoch, suite);
      this.#send?.wipe();
      this.#send = slot;
      this.#sendEpoch = epoch;
      this.#sendCounter = 0;
    } else if (this.#send.suite !== suite) {
      this.#abort('send_epoch_unusable', `epoch ${epoch} changed suite`, { epoch });
    }
    const counter = this.#sendCounter;
    if (counter > MAX_RECORD_COUNTER) this.#abort('counter_exhausted', 'carrier send counter exhausted', { epoch });
    const slot = this.#send;
    const out = Buffer.allocUnsafe(RECORD_HEADER_LEN + payload.length + AEAD_TAG_LEN);
    const aad = encodeRecordHeader({ type, epochLow32: epoch >>> 0, counter, ctLen: payload.length + AEAD_TAG_LEN }, out, 0);
    const sealed = slot.seal(counter, payload, aad, out.subarray(RECORD_HEADER_LEN));
    if (sealed.length !== payload.length + AEAD_TAG_LEN) throw new QkdgwError(ErrorCodes.INTERNAL, 'AEAD returned a wrong sealed length');
    this.#sendCounter = counter + 1;
    this.#recordSent(type, epoch);
    return out;
  }

  #checkSendSequence(type: CarrierRecordType, payload: Uint8Array): void {
    if (this.side === 'entry') {
      if (type === RecordType.OPEN && this.#openSent) this.#abort('send_open_twice', 'OPEN already sent');
      if (type !== RecordType.OPEN && !this.#openSent) this.#abort('send_first_not_open', `first record must be OPEN, not ${RECORD_TYPE_NAMES[type]}`);
    } else {
      if (type === RecordType.OPEN) this.#abort('send_open_from_exit', 'the exit side never sends OPEN');
      if (!this.#admitted) this.#abort('send_not_admitted', 'nothing is sealed before the flow_id is admitted');
    }
    if ((type === RecordType.DATA || type === RecordType.FIN) && this.#finSent) this.#abort('send_after_fin', `${RECORD_TYPE_NAMES[type]} after FIN`);
    const n = payload.length;
    switch (type) {
      case RecordType.OPEN: {
        let ok = n >= 1 && n <= MAX_SERVICE_NAME_LEN;
        for (let i = 0; ok && i < n; i++) ok = isServiceByte(payload[i]);
        if (!ok) this.#abort('send_bad_payload', 'service name is not 1..255 bytes of [A-Za-z0-9._-]');
        break;
      }
      case RecordType.DATA:
        if (n < 1 || n > MAX_DATA_PLAINTEXT) this.#abort('send_bad_payload', `DATA of ${n} bytes (1..${MAX_DATA_PLAINTEXT})`);
        break;
      case RecordType.RST:
        if (n !== RST_PLAINTEXT_LEN) this.#abort('send_bad_payload', 'RST payload must be 2 bytes');
        break;
      default:
        if (n !== 0) this.#abort('send_bad_payload', `${RECORD_TYPE_NAMES[type]} payload must be empty`);
    }
  }

  #recordSent(type: CarrierRecordType, epoch: number): void {
    switch (type) {
      case RecordType.OPEN:
        this.#openSent = true;
        this.#openSentEpoch = epoch;
        break;
      case RecordType.FIN:
        this.#finSent = true;
        break;
      case RecordType.RST:
        this.#rst = 'sent';
        this.close();
        break;
    }
  }

  /** OPEN with a service name of 1..255 bytes of [A-Za-z0-9._-] (entry side, first record). */
  sealOpen(service: string, send: SendEpoch): Buffer {
    return this.sealRecord(RecordType.OPEN, Buffer.from(service, 'latin1'), send);
  }
  /** DATA of 1..65,536 bytes. */
  sealData(bytes: Uint8Array, send: SendEpoch): Buffer {
    return this.sealRecord(RecordType.DATA, bytes, send);
  }
  /** FIN: we read EOF locally and send no more DATA. */
  sealFin(send: SendEpoch): Buffer {
    return this.sealRecord(RecordType.FIN, EMPTY, send);
  }
  /** RST with a reason name or u16 code; the carrier is closed afterwards. */
  sealRst(reason: RstReasonName | number, send: SendEpoch): Buffer {
    const code = typeof reason === 'number' ? reason : RstReason[reason];
    const p = Buffer.alloc(RST_PLAINTEXT_LEN);
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) this.#abort('send_bad_payload', 'RST reason is not a u16');
    p.writeUInt16BE(code, 0);
    return this.sealRecord(RecordType.RST, p, send);
  }
  /** KEEPALIVE (also allowed after FIN: the other direction may still need liveness). */
  sealKeepalive(send: SendEpoch): Buffer {
    return this.sealRecord(RecordType.KEEPALIVE, EMPTY, send);
  }

  // ---------------------------------------------------------------- receive

  /**
   * Authenticates and decodes one record whose header {@link decodeRecordHeader} validated.
   * Checks, in order: the epoch (lookup; never decreasing), the counter (0 on a new epoch,
   * last + 1 otherwise), the tag, then the sequence rules and payload. Returns the event;
   * throws CarrierAbort (see {@link CarrierAbortReason}) and closes the carrier otherwise.
   * A record whose tag fails releases no plaintext.
   */
  openRecord(header: RecordHeader, body: Uint8Array): CarrierEvent {
    if (this.#closed) throw new CarrierAbort('closed', 'carrier is closed');
    if (body.length !== header.ctLen) this.#abort('malformed', 'record body length differs from ct_len');
    const purpose = this.side === 'exit' && !this.#openReceived ? 'open' : 'record';
    const e = this.#lookup(header.epochLow32, purpose);
    if (e === null || e.flowSecret.wiped || !Number.isSafeInteger(e.epoch) || e.epoch >>> 0 !== header.epochLow32) {
      this.#abort('unknown_epoch', 'record for an epoch this carrier cannot use', { epochLow32: header.epochLow32 });
    }
    const epoch = e.epoch;
    if (this.#recvEpoch !== null && epoch < this.#recvEpoch) {
      this.#abort('epoch_decreased', `record epoch ${epoch} below ${this.#recvEpoch}`, { epoch });
    }
    const expected = epoch === this.#recvEpoch ? this.#recvCounter + 1 : 0;
    if (header.counter !== expected) this.#abort('bad_counter', `record counter is not ${expected}`, { epoch, counter: header.counter });

    if (this.#recv === null || this.#recv.epoch !== epoch) {
      const slot = FlowKeySlot.derive(this.#crypto, e.flowSecret, this.flowId, epoch, e.suite);
      this.#recv?.wipe();
      this.#recv = slot;
    }
    const aad = encodeRecordHeader(header, this.#aad, 0);
    const pt = this.#recv.open(header.counter, body, aad);
    if (pt === null) this.#abort('auth_failed', 'record tag does not verify', { epoch });
    this.#recvEpoch = epoch;
    this.#recvCounter = header.counter;
    try {
      return this.#event(header.type, pt, epoch);
    } catch (err) {
      pt.fill(0);
      throw err;
    }
  }

  #event(type: CarrierRecordType, pt: Buffer, epoch: number): CarrierEvent {
    if (type === RecordType.OPEN) {
      if (this.side === 'entry') this.#abort('open_from_exit', 'the exit side sent OPEN', { epoch });
      if (this.#openReceived) this.#abort('open_twice', 'second OPEN', { epoch });
      let ok = pt.length >= 1 && pt.length <= MAX_SERVICE_NAME_LEN;
      for (let i = 0; ok && i < pt.length; i++) ok = isServiceByte(pt[i]);
      if (!ok) this.#abort('bad_open_name', 'OPEN service name is not 1..255 bytes of [A-Za-z0-9._-]', { epoch });
      this.#openReceived = true;
      this.#openReceivedEpoch = epoch;
      this.#service = pt.toString('latin1');
      return { kind: 'open', epoch, service: this.#service };
    }
    if (this.side === 'exit' && !this.#openReceived) this.#abort('first_not_open', `first record is ${RECORD_TYPE_NAMES[type]}, not OPEN`, { epoch });
    if (this.side === 'entry' && !this.#openSent) this.#abort('record_before_open', 'record received before OPEN was sent', { epoch });
    switch (type) {
      case RecordType.DATA:
        if (this.#finReceived) this.#abort('after_fin', 'DATA after FIN', { epoch });
        if (pt.length < 1 || pt.length > MAX_DATA_PLAINTEXT) this.#abort('malformed', 'DATA length out of range', { epoch });
        return { kind: 'data', epoch, bytes: pt };
      case RecordType.FIN:
        if (this.#finReceived) this.#abort('after_fin', 'FIN after FIN', { epoch });
        if (pt.length !== 0) this.#abort('malformed', 'FIN with a payload', { epoch });
        this.#finReceived = true;
        return { kind: 'fin', epoch };
      case RecordType.RST: {
        if (pt.length !== RST_PLAINTEXT_LEN) this.#abort('bad_rst', 'RST payload is not 2 bytes', { epoch });
        const code = pt.readUInt16BE(0);
        this.#rst = 'received';
        this.close();
        return { kind: 'rst', epoch, reason: rstReasonName(code), code };
      }
      default:
        if (pt.length !== 0) this.#abort('malformed', 'KEEPALIVE with a payload', { epoch });
        return { kind: 'keepalive', epoch };
    }
  }
}
