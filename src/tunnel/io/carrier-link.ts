/**
 * One carrier (protocol.md s5.1) joined to its local socket: the client connection on
 * the entry gateway, the target connection on the exit gateway. Records go through the
 * pure CarrierSession; this file moves bytes with backpressure end to end, maps FIN to a
 * true half-close, and maps every other end to a reset of the local socket, so that a
 * local endpoint never sees a clean EOF for a stream the peer did not finish.
 */
import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Socket } from 'node:net';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { CarrierSession, isCarrierAbort, type CarrierEvent } from '../core/carrier.js';
import { MAX_DATA_PLAINTEXT, RecordReader, RecordType, type RstReasonName, type CarrierRecordType } from '../core/wire/record.js';
import { encodePreamble } from '../core/wire/preamble.js';
import type { Epoch } from '../core/epochs.js';
import type { CarrierHandle, PeerRuntime } from './peer.js';

export interface CarrierTimers {
  /** KEEPALIVE after this long with nothing sent (10 s). */
  keepaliveMs: number;
  /** Dead after this long with nothing received while reading (30 s). */
  deadAfterMs: number;
}

export interface CarrierLinkOptions {
  side: 'entry' | 'exit';
  runtime: PeerRuntime;
  carrier: Socket;
  flowId: Buffer;
  clock: Clock;
  logger: Logger;
  timers: CarrierTimers;
  /**
   * Exit side: called on the authenticated OPEN. Returns the local target socket or an RST
   * reason, both only once the flow_id was added to the epoch's set (the RST is sealed), or
   * `silent` (replay, set full: closed with no record sealed).
   */
  onOpen?: (service: string, epoch: Epoch) => Socket | { rst: RstReasonName } | { silent: string };
}

type Pending = { type: CarrierRecordType; payload: Buffer };

/** Bytes a carrier link holds in user space right now (BC-30: all of them must stay bounded). */
export interface CarrierBuffers {
  /** Sealed records written to the carrier socket and not yet taken by the kernel. */
  carrierOut: number;
  /** Plaintext written to the local socket and not yet taken by the kernel. */
  localOut: number;
  /** Read from the carrier socket, not yet handed to us (paused stream). */
  carrierIn: number;
  /** Read from the local socket, not yet handed to us (paused stream). */
  localIn: number;
  /** An incomplete record in the RecordReader. */
  partialRecord: number;
  /** Plaintext waiting for an epoch (hold). */
  pending: number;
}

const linksByRuntime = new WeakMap<PeerRuntime, Set<CarrierLink>>();

/** The open carrier links of a peer runtime (status, tests). */
export function carrierLinksOf(rt: PeerRuntime): CarrierLink[] {
  return [...(linksByRuntime.get(rt) ?? [])];
}

const EMPTY = Buffer.alloc(0);
const ENOTCONN = osConstants.errno.ENOTCONN;

export class CarrierLink implements CarrierHandle {
  readonly cs: CarrierSession;
  readonly #o: CarrierLinkOptions;
  readonly #rt: PeerRuntime;
  readonly #carrier: Socket;
  #local: Socket | null = null;
  #localConnected = false;
  readonly #reader = new RecordReader();
  #pending: Pending[] = [];
  #cancelWait: (() => void) | null = null;
  #holdTimer: (() => void) | null = null;
  #liveTimer: (() => void) | null = null;
  #lastSent: number;
  #lastRecv: number;
  #done = false;
  #localEof = false;
  #carrierReadPaused = false;
  #localReadPaused = false;
  /** Bytes delivered to the local socket and read from it (status, tests). */
  bytesIn = 0;
  bytesOut = 0;
  endReason: string | null = null;

  constructor(o: CarrierLinkOptions) {
    this.#o = o;
    this.#rt = o.runtime;
    this.#carrier = o.carrier;
    this.cs = new CarrierSession({
      side: o.side,
      flowId: o.flowId,
      crypto: this.#rt.carrierCrypto,
      recvLookup: (low32, purpose) => {
        const e = purpose === 'open' ? this.#rt.newCarrierEpoch(low32) : this.#rt.carrierEpoch(low32, this.#pinned());
        return e ? { epoch: e.n, suite: e.suite, flowSecret: e.flowRecv } : null;
      },
    });
    this.#lastSent = this.#lastRecv = o.clock.now();
    this.#rt.registerCarrier(this);
    let set = linksByRuntime.get(this.#rt);
    if (!set) linksByRuntime.set(this.#rt, (set = new Set()));
    set.add(this);
    this.#carrier.setNoDelay(true);
    this.#carrier.on('data', (c: Buffer) => this.#guard(() => this.#onCarrierData(c)));
    this.#carrier.on('end', () => this.#guard(() => this.#onCarrierEnd()));
    this.#carrier.on('error', (e) => this.#onCarrierGone(`carrier error: ${e.message}`));
    this.#carrier.on('close', () => this.#onCarrierGone('carrier closed'));
    this.#carrier.on('drain', () => this.#resumeLocal());
    this.#armLiveness();
  }

  /** Runs a socket callback; an exception nobody foresaw ends this carrier only, never the daemon. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#o.logger.error({ event: 'carrier_internal_error', flow: this.#flowHex(), err: e instanceof Error ? e.message : String(e) });
      this.#end('internal', { silent: true });
    }
  }

  get pinEpoch(): number | null {
    return this.cs.pinEpoch;
  }

  get side(): 'entry' | 'exit' {
    return this.#o.side;
  }

  /** What this link holds in user space now, bytes. */
  get buffered(): CarrierBuffers {
    const l = this.#local;
    return {
      carrierOut: this.#carrier.writableLength,
      localOut: l ? l.writableLength : 0,
      carrierIn: this.#carrier.readableLength,
      localIn: l ? l.readableLength : 0,
      partialRecord: this.#reader.buffered,
      pending: this.#pending.reduce((n, p) => n + p.payload.length, 0),
    };
  }

  #pinned(): Epoch | null {
    const n = this.cs.pinEpoch;
    return n === null ? null : this.#rt.epochByNumber(n);
  }

  // ---------------------------------------------------------------- entry side

  /** Entry side: writes the preamble and OPEN (once an epoch allows), then starts the pump. */
  startEntry(local: Socket, service: string, peerReceiverIndex: number): void {
    this.#carrier.write(encodePreamble({ receiverIndex: peerReceiverIndex, flowId: this.#o.flowId }));
    this.#attachLocal(local, true);
    this.#localReadPaused = true; // accepted paused (pauseOnConnect): read only once OPEN is out
    this.#send(RecordType.OPEN, Buffer.from(service, 'ascii'));
    this.#resumeLocal();
  }

  // ---------------------------------------------------------------- local socket

  #attachLocal(local: Socket, connected: boolean): void {
    this.#local = local;
    this.#localConnected = connected;
    local.setNoDelay(true);
    local.on('connect', () => {
      this.#localConnected = true;
    });
    local.on('data', (chunk: Buffer) => this.#guard(() => this.#onLocalData(chunk)));
    local.on('end', () => this.#guard(() => this.#onLocalEnd()));
    local.on('error', (e: NodeJS.ErrnoException) => this.#onLocalError(e));
    local.on('close', () => {
      if (!this.#done && !this.cs.finished) this.#onLocalError(Object.assign(new Error('local socket closed'), { code: 'ECLOSED' }));
    });
    local.on('drain', () => this.#resumeCarrier());
  }

  #onLocalData(chunk: Buffer): void {
    if (this.#done) return;
    this.bytesOut += chunk.length;
    for (let off = 0; off < chunk.length; off += MAX_DATA_PLAINTEXT) {
      this.#send(RecordType.DATA, chunk.subarray(off, Math.min(chunk.length, off + MAX_DATA_PLAINTEXT)));
    }
  }

  #onLocalEnd(): void {
    if (this.#done) return;
    // libuv reports EOF, not ECONNRESET, when a reset arrives while unread data is still
    // queued (POLLHUP after a partial read). Only a true FIN may become our FIN record
    // (protocol.md s5.1), so ask the kernel whether the connection is still there. Once we
    // sent our own FIN the question has no answer: a FIN then moves the socket to CLOSE too.
    if (this.#local && !this.#local.writableEnded && peerGone(this.#local)) {
      return this.#onLocalError(Object.assign(new Error('local connection reset (EOF after RST)'), { code: 'ECONNRESET' }));
    }
    this.#localEof = true;
    this.#send(RecordType.FIN, EMPTY);
  }

  #onLocalError(e: NodeJS.ErrnoException): void {
    if (this.#done) return;
    const reason: RstReasonName = this.#o.side === 'entry' ? 'client_reset' : this.#localConnected ? 'target_reset' : 'target_unreachable';
    this.#o.logger.debug({ event: 'carrier_local_error', reason, code: e.code, flow: this.#flowHex() });
    this.#end(reason, { rst: reason });
  }

  // ---------------------------------------------------------------- sending

  /** Seals and writes one record, or queues it while the pair is on hold. */
  #send(type: CarrierRecordType, payload: Buffer): void {
    if (this.#done) return;
    if (this.#pending.length) {
      this.#pending.push({ type, payload });
      return;
    }
    if (!this.#trySend(type, payload)) {
      this.#pending.push({ type, payload });
      this.#waitForEpoch();
    }
  }

  /** False when there is no epoch to seal under (hold). */
  #trySend(type: CarrierRecordType, payload: Buffer): boolean {
    const e = this.#rt.sendEpoch();
    if (!e) return false;
    let rec: Buffer;
    try {
      rec = this.cs.sealRecord(type, payload, { epoch: e.n, suite: e.suite, flowSecret: e.flowSend });
    } catch (err) {
      this.#end(isCarrierAbort(err) ? err.reason : 'internal', { silent: true });
      return true;
    }
    this.#rt.noteSealed(e, payload.length, type === RecordType.DATA ? payload.length : 0);
    this.#lastSent = this.#o.clock.now();
    const ok = this.#carrier.write(rec);
    if (!ok) this.#pauseLocal();
    if (type === RecordType.FIN) this.#maybeFinished();
    return true;
  }

  #waitForEpoch(): void {
    this.#pauseLocal();
    if (this.#cancelWait) return;
    this.#cancelWait = this.#rt.onEpochsChanged(() => {
      this.#cancelWait = null;
      this.#flush();
    });
    if (!this.#holdTimer) {
      // The hold is the pair's, not this carrier's: it started when the pair lost its last sealable epoch.
      const until = this.#rt.holdDeadline() ?? this.#o.clock.now() + this.#rt.holdMs;
      this.#holdTimer = this.#o.clock.setTimer(Math.max(0, until - this.#o.clock.now()), () => {
        this.#holdTimer = null;
        if (this.#pending.length && !this.#done) this.#end('hold expired: no epoch to seal under', { silent: true });
      });
    }
  }

  #flush(): void {
    while (this.#pending.length && !this.#done) {
      const p = this.#pending[0];
      if (!this.#trySend(p.type, p.payload)) {
        this.#waitForEpoch();
        return;
      }
      this.#pending.shift();
    }
    this.#holdTimer?.();
    this.#holdTimer = null;
    this.#lastRecv = this.#o.clock.now(); // the liveness timer restarts after a hold
    if (!this.#carrier.writableNeedDrain) this.#resumeLocal();
  }

  #pauseLocal(): void {
    if (this.#local && !this.#localReadPaused) {
      this.#localReadPaused = true;
      this.#local.pause();
    }
  }

  #resumeLocal(): void {
    if (this.#done || this.#pending.length || !this.#local || !this.#localReadPaused) return;
    this.#localReadPaused = false;
    this.#local.resume();
  }

  // ---------------------------------------------------------------- receiving

  #onCarrierData(chunk: Buffer): void {
    if (this.#done) return;
    this.#lastRecv = this.#o.clock.now();
    let recs;
    try {
      recs = this.#reader.push(chunk);
    } catch (err) {
      return this.#abortProtocol('malformed record', err);
    }
    for (const r of recs) {
      if (this.#done) return;
      let ev: CarrierEvent;
      try {
        ev = this.cs.openRecord(r.header, r.body);
      } catch (err) {
        return this.#abortProtocol('record rejected', err);
      }
      const e = this.#rt.epochByNumber(ev.epoch);
      if (e) this.#rt.noteAuthenticated(e, ev.kind === 'data' ? ev.bytes.length : 0);
      this.#rt.updatePin(this);
      this.#onEvent(ev, e);
    }
  }

  #onEvent(ev: CarrierEvent, e: Epoch | null): void {
    switch (ev.kind) {
      case 'open': {
        if (!e || !this.#o.onOpen) return this.#end('OPEN without an epoch object', { silent: true });
        const r = this.#o.onOpen(ev.service, e);
        if ('silent' in r) return this.#end(r.silent, { silent: true });
        // Both verdicts below come after the flow_id was just added to the epoch's set
        // (protocol.md s5.1 Replay): sealing is allowed now, an RST included.
        this.cs.admit();
        if ('rst' in r) {
          this.#o.logger.info({ event: 'carrier_refused', service: ev.service, reason: r.rst, flow: this.#flowHex() });
          return this.#end(r.rst, { rst: r.rst });
        }
        this.#attachLocal(r, false);
        this.#flush();
        return;
      }
      case 'data': {
        this.bytesIn += ev.bytes.length;
        const ok = this.#local!.write(ev.bytes);
        if (!ok) this.#pauseCarrier();
        return;
      }
      case 'fin':
        this.#local?.end();
        this.#maybeFinished();
        return;
      case 'rst':
        return this.#end(`peer sent RST ${ev.reason}`, {});
      case 'keepalive':
        return;
    }
  }

  #pauseCarrier(): void {
    if (!this.#carrierReadPaused) {
      this.#carrierReadPaused = true;
      this.#carrier.pause();
    }
  }

  #resumeCarrier(): void {
    if (this.#done || !this.#carrierReadPaused) return;
    this.#carrierReadPaused = false;
    this.#lastRecv = this.#o.clock.now(); // the dead timer restarts on resume
    this.#carrier.resume();
  }

  #abortProtocol(what: string, err: unknown): void {
    const reason = isCarrierAbort(err) ? err.reason : 'malformed';
    if (reason === 'auth_failed') this.#rt.stats.authFailures++;
    this.#o.logger.warn({ event: 'carrier_aborted', reason, flow: this.#flowHex(), detail: (err as Error).message }, what);
    this.#end(reason, { silent: true });
  }

  #onCarrierEnd(): void {
    if (this.#done) return;
    if (this.cs.finished) return this.#finish();
    this.#end('carrier ended before the stream finished', { silent: true });
  }

  #onCarrierGone(reason: string): void {
    if (this.#done) return;
    if (this.cs.finished) return this.#finish();
    this.#end(reason, { silent: true });
  }

  #maybeFinished(): void {
    // Entry gateway closes the carrier once FIN went both ways (protocol.md s5.1).
    if (this.cs.finished && this.#o.side === 'entry') this.#finish();
  }

  /** Clean end: both directions finished. */
  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.endReason = 'finished';
    this.#cleanup();
    this.#carrier.end();
    this.#o.logger.debug({ event: 'carrier_finished', flow: this.#flowHex(), bytes_in: this.bytesIn, bytes_out: this.bytesOut });
  }

  // ---------------------------------------------------------------- ends

  /** CarrierHandle: abort from the runtime (key expiry, peer reset, shutdown). */
  abort(reason: string, opts: { silent?: boolean } = {}): void {
    const rst: RstReasonName = reason === 'key_expired' ? 'key_expired' : reason === 'shutdown' ? 'shutdown' : 'internal';
    this.#end(reason, opts.silent ? { silent: true } : { rst });
  }

  /** Any end but a finish: reset the local socket; RST the peer unless `silent`. */
  #end(reason: string, how: { rst?: RstReasonName; silent?: boolean }): void {
    if (this.#done) return;
    this.#done = true;
    this.endReason = reason;
    if (how.rst && !how.silent && !this.cs.closed) {
      const e = this.#rt.sendEpoch();
      if (e && (this.#o.side === 'entry' ? this.cs.lastSentEpoch !== null : true)) {
        try {
          this.#carrier.write(this.cs.sealRst(how.rst, { epoch: e.n, suite: e.suite, flowSecret: e.flowSend }));
        } catch {
          // The carrier may not seal (not admitted, closed): ending it is enough.
        }
      }
    }
    this.#rt.stats.carrierAborts++;
    this.#cleanup();
    this.#local?.resetAndDestroy();
    this.#carrier.end();
    const c = this.#carrier;
    const t = setTimeout(() => c.destroy(), 2_000);
    t.unref();
    // Operators need to see flows that did not finish cleanly; the data port's rate limit bounds the volume.
    this.#o.logger.info({ event: 'carrier_reset', side: this.#o.side, reason, flow: this.#flowHex(), bytes_in: this.bytesIn, bytes_out: this.bytesOut });
  }

  #cleanup(): void {
    this.#cancelWait?.();
    this.#cancelWait = null;
    this.#holdTimer?.();
    this.#holdTimer = null;
    this.#liveTimer?.();
    this.#liveTimer = null;
    this.#pending = [];
    this.cs.close();
    this.#rt.unregisterCarrier(this);
    linksByRuntime.get(this.#rt)?.delete(this);
  }

  // ---------------------------------------------------------------- liveness

  #armLiveness(): void {
    if (this.#done) return;
    const t = this.#o.timers;
    const now = this.#o.clock.now();
    const next = Math.min(this.#lastSent + t.keepaliveMs, this.#lastRecv + t.deadAfterMs);
    this.#liveTimer = this.#o.clock.setTimer(Math.max(0, next - now) + 1, () => {
      this.#liveTimer = null;
      this.#onLiveness();
    });
  }

  #onLiveness(): void {
    if (this.#done) return;
    const now = this.#o.clock.now();
    const t = this.#o.timers;
    const onHold = this.#pending.length > 0;
    // The dead timer runs only while we read this carrier and no hold is on (protocol.md s5.1):
    // neither data waiting here nor a pair with no epoch to seal under (a KME outage past the
    // hard limit). Then the peer cannot send even a KEEPALIVE; the pair's hold bounds the wait.
    const pairOnHold = this.#rt.sendEpoch() === null;
    if (pairOnHold) this.#lastRecv = now;
    if (this.#carrierReadPaused || onHold) this.#lastRecv = now;
    if (now - this.#lastRecv >= t.deadAfterMs) return this.#end('liveness timeout', { silent: true });
    if (!onHold && now - this.#lastSent >= t.keepaliveMs && this.#canKeepalive()) this.#trySend(RecordType.KEEPALIVE, EMPTY);
    if (now - this.#lastSent >= t.keepaliveMs) this.#lastSent = now; // nothing could be sent: do not spin
    this.#armLiveness();
  }

  /** KEEPALIVE needs the carrier opened on our side (entry: OPEN sent; exit: admitted). */
  #canKeepalive(): boolean {
    return !this.cs.closed && (this.#o.side === 'entry' ? this.cs.lastSentEpoch !== null : this.#local !== null);
  }

  #flowHex(): string {
    return this.#o.flowId.toString('hex');
  }
}

/**
 * True when the kernel says `s` has no peer any more (getpeername fails with ENOTCONN:
 * TCP state CLOSE, i.e. the peer reset), false while it is connected or half-closed
 * (CLOSE_WAIT after a FIN) or when we cannot tell. Meaningful only while our side has not
 * sent its FIN: after it, a FIN from the peer also leaves the socket in CLOSE (TIME_WAIT is
 * a separate kernel object). Uses the handle directly because `socket.remoteAddress`
 * caches its first answer. Linux semantics; elsewhere it may answer false.
 */
export function peerGone(s: Socket): boolean {
  const h = (s as unknown as { _handle?: { getpeername?: (out: object) => number } | null })._handle;
  if (!h || typeof h.getpeername !== 'function') return false;
  const err = h.getpeername({});
  return err === -ENOTCONN;
}

/** A fresh 16-byte flow_id from a CSPRNG (protocol.md s5.1). */
export function newFlowId(): Buffer {
  return randomBytes(16);
}
