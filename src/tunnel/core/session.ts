/**
 * The control-plane state machine of one peer pair (protocol.md s1-s4), with no I/O.
 *
 * The I/O shell feeds events (`handle(event, now)`) and executes the returned actions:
 * send a frame, close a connection, fetch a QKD key, log an event. Time comes in as
 * `now` (monotonic ms); `nextDeadline()` says when `tick` is due next. One instance per
 * peer pair, living as long as the process: epochs belong to the pair, not to the
 * control connection (protocol.md s2).
 */
import { randomBytes } from 'node:crypto';
import { isQkdgwError } from '../../errors.js';
import { SecretBytes } from '../../util/secret.js';
import { compareBytes } from '../../util/bytes.js';
import type { Alert, AlertCode, ControlMessage, Hello, Init, RekeyReason, Resp } from './wire/control.js';
import { isFatalAlert, isKeyIdString } from './wire/control.js';
import { Spec } from './constants.js';
import { Epoch, EpochSlots, type Role } from './epochs.js';
import { checkConfirm, finishInitiator, initPublicValuesValid, InitiatorPending, respond, type HandshakeContext } from './handshake.js';
import { KeyIdMemory } from './key-id-memory.js';

export type QkdPolicy = 'required' | 'preferred' | 'off';

/** Per-pair options (protocol.md s6 defaults are applied by the config layer). All times in ms. */
export interface SessionOptions {
  selfId: string;
  peerId: string;
  /** Suites we offer, in our preference order (1 = AES-256-GCM, 2 = XChaCha20-Poly1305). */
  suites: Array<1 | 2>;
  qkd: QkdPolicy;
  rekeyAfterTimeMs: number;
  rekeyJitterMs: number;
  rekeyAfterRecords: number;
  rekeyAfterBytes: number;
  hardLimitTimeMs: number;
  hardLimitRecords: number;
  handshakeTimeoutMs: number;
  graceMs: number;
  carrierHoldMs: number;
  maxFlowsPerEpoch: number;
  /** Upper bound on the initiator's wait for enc_keys (the KME client has its own deadline). */
  keyFetchTimeoutMs?: number;
  /** Handshake retry backoff bounds, ms (protocol.md s6: 500 .. 30 000). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** `preferred`: a degraded epoch rekeys this long after it starts, ms (protocol.md s6: 60 000). */
  degradedLifetimeMs?: number;
  /** `preferred`: consecutive KME status checks with stored keys before a QKD epoch again (s6: 3). */
  recoveryChecks?: number;
  /** This side's receiver_index for the pair (1..2^32-1), drawn by the caller. */
  receiverIndex: number;
  /** Uniform [0,1) source for jitter; tests pass a fixed one. */
  random?: () => number;
}

export type ConnId = number;

export type SessionEvent =
  | { type: 'conn-up'; conn: ConnId; exporter: Buffer }
  | { type: 'conn-down'; conn: ConnId }
  | { type: 'message'; conn: ConnId; msg: ControlMessage }
  /** A frame that failed to decode (protocol.md s2: ALERT bad_message). */
  | { type: 'malformed'; conn: ConnId; reason: string }
  | { type: 'key'; hs: number; keyId: string; key: SecretBytes }
  | { type: 'key-failed'; hs: number; code: string; message: string }
  | { type: 'tick' }
  /** The data plane rekey triggers (records, bytes, flows). */
  | { type: 'trigger'; reason: RekeyReason }
  /** A KME `status` check for this pair: stored_key_count, or null when the check failed. */
  | { type: 'kme-status'; storedKeyCount: number | null };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type SessionAction =
  | { type: 'send'; conn: ConnId; msg: ControlMessage }
  | { type: 'close'; conn: ConnId; reason: string }
  /** Initiator (master SAE): one 256-bit key from enc_keys with the peer as slave. */
  | { type: 'get-key'; hs: number }
  /** Responder (slave SAE): the announced key from dec_keys, within `deadlineMs`. */
  | { type: 'get-key-by-id'; hs: number; keyId: string; deadlineMs: number }
  | { type: 'log'; level: LogLevel; event: string; fields: Record<string, unknown> }
  /** Slots changed: the data plane resumes held work or re-checks what it may seal under. */
  | { type: 'epochs-changed' }
  /** The peer lost its state (protocol.md s3.3): close every carrier of the pair. */
  | { type: 'peer-reset' }
  /** Carriers pinned to this retired epoch passed hard limit + carrier_hold: abort them. */
  | { type: 'abort-pinned'; epoch: number };

interface Conn {
  id: ConnId;
  exporter: Buffer;
  helloSent: boolean;
  peerHello: Hello | null;
  /** Initiator: chaining decision for the first INIT of this session (s3.3). */
  firstChained: boolean;
  /** Whether an INIT was sent/received on this session, and whether the first one was chained. */
  initSeen: boolean;
  firstInitChained: boolean;
  /** A handshake of this session completed (initiator: tag_R verified; responder: promoted). */
  completed: boolean;
}

type InitiatorFlight =
  | { phase: 'key'; hs: number; conn: ConnId; epoch: number; started: number; deadline: number; degraded: boolean }
  | {
      phase: 'resp';
      hs: number;
      conn: ConnId;
      epoch: number;
      started: number;
      deadline: number;
      degraded: boolean;
      ctx: HandshakeContext;
      pending: InitiatorPending;
      kQkd: SecretBytes;
      saltEpoch: Epoch | null;
    };

interface ResponderFlight {
  hs: number;
  conn: ConnId;
  init: Init;
  chained: boolean;
  deadline: number;
}


/** Which gateway of a pair is the initiator (protocol.md s1): the byte-wise smaller identity. */
export function roleOf(selfId: string, peerId: string): Role {
  return compareBytes(Buffer.from(selfId, 'utf8'), Buffer.from(peerId, 'utf8')) < 0 ? 'initiator' : 'responder';
}

/** A fresh receiver_index in 1..2^32-1 (protocol.md s2). */
export function drawReceiverIndex(taken: ReadonlySet<number> = new Set()): number {
  for (;;) {
    const v = randomBytes(4).readUInt32BE();
    if (v !== 0 && !taken.has(v)) return v;
  }
}

export class PeerSession {
  readonly role: Role;
  readonly opts: Required<SessionOptions>;
  readonly slots: EpochSlots;
  /** The peer's receiver_index from its last HELLO (carriers we open carry it). */
  peerReceiverIndex: number | null = null;
  /** Counters of ignored or refused messages, by reason (metrics read them). */
  readonly counters = new Map<string, number>();

  /** L (protocol.md s3.3): the largest epoch number held, sent, seen or reported for the pair. */
  #maxEpoch = 0;
  #conns = new Map<ConnId, Conn>();
  #active: Conn | null = null;
  #hsSeq = 0;
  #iFlight: InitiatorFlight | null = null;
  #rFlight: ResponderFlight | null = null;
  /** Initiator: a handshake is wanted (trigger, timer, request) once allowed. */
  #want: { reason: string; immediate: boolean } | null = null;
  #failures = 0;
  #failingSince: number | null = null;
  #failAlarmed = false;
  #notBefore = 0;
  /** Rekey time of the current epoch with its jitter drawn once. */
  #rekeyAt: number | null = null;
  /** Responder: REKEY_REQUEST bookkeeping for the current epoch. */
  #requestedFor: number | null = null;
  #requestedAt = 0;
  #keyIds = new KeyIdMemory(Spec.KEY_ID_MEMORY);
  #hardLimitNotified: number | null = null;
  /** Initiator under `preferred` (protocol.md s6): the ladder's state and its evidence. */
  #ladder: 'qkd' | 'degraded' = 'qkd';
  #goodChecks = 0;
  #keyUnavailableStreak = 0;
  /** The next attempt is a degraded INIT at once (its QKD attempt failed). */
  #stepDown: string | null = null;
  /** `now` of the event being handled. */
  #now = 0;

  constructor(opts: SessionOptions) {
    this.opts = {
      keyFetchTimeoutMs: 10_000,
      backoffMinMs: Spec.BACKOFF_MIN_MS,
      backoffMaxMs: Spec.BACKOFF_MAX_MS,
      degradedLifetimeMs: Spec.DEGRADED_LIFETIME_MS,
      recoveryChecks: Spec.RECOVERY_CHECKS,
      random: Math.random,
      ...opts,
    };
    this.role = roleOf(opts.selfId, opts.peerId);
    this.slots = new EpochSlots({ graceMs: opts.graceMs, carrierHoldMs: opts.carrierHoldMs });
  }

  /**
   * Reload (issue 5): a new policy for this pair, applied in place: suites and `qkd` for the
   * next handshake, rekey triggers and hard limits for epochs derived from now on (the epoch
   * in force keeps the limits it was derived with, and its drawn rekey time), timeouts,
   * backoff and the ladder's settings at once, grace and carrier hold for every decision
   * from now on. Identity, role and receiver_index cannot change this way.
   */
  updatePolicy(p: Omit<SessionOptions, 'selfId' | 'peerId' | 'receiverIndex' | 'random' | 'keyFetchTimeoutMs'>): void {
    Object.assign(this.opts, p);
    this.slots.setTimes({ graceMs: this.opts.graceMs, carrierHoldMs: this.opts.carrierHoldMs });
  }

  /** L, for tests and status. */
  get maxEpoch(): number {
    return this.#maxEpoch;
  }
  get activeConn(): ConnId | null {
    return this.#active?.id ?? null;
  }
  get handshakeInFlight(): boolean {
    return this.#iFlight !== null || this.#rFlight !== null;
  }
  /** The degradation ladder (protocol.md s6), for status and metrics. */
  get ladder(): { mode: 'qkd' | 'degraded'; goodChecks: number; keyUnavailableStreak: number } {
    const c = this.slots.current;
    const mode = c && (c.mode & Spec.MODE_DEGRADED) !== 0 ? 'degraded' : this.role === 'initiator' ? this.#ladder : 'qkd';
    return { mode, goodChecks: this.#goodChecks, keyUnavailableStreak: this.#keyUnavailableStreak };
  }

  // ---------------------------------------------------------------- data-plane queries

  /** The epoch to seal under now (current, within its hard limits), or null (hold). */
  sendEpoch(now: number): Epoch | null {
    const c = this.slots.current;
    return c && c.canSeal(now) ? c : null;
  }

  /** The epoch a new carrier's OPEN may use (protocol.md s4), by the low 32 bits of its number. */
  newCarrierEpoch(low32: number, now: number): Epoch | null {
    const e = this.slots.byLow32(low32);
    return e && !e.recvExhausted && this.slots.acceptsNewCarriers(e, now) ? e : null;
  }

  /**
   * The epoch an open carrier whose last received epoch is `last` may receive under:
   * `last` itself while pinned, or a newer slot epoch still receive-capable.
   */
  carrierEpoch(low32: number, last: Epoch | null, now: number): Epoch | null {
    if (last && last.low32 === low32) return last.wiped || last.recvExhausted || now >= last.hardLimitAt + this.opts.carrierHoldMs ? null : last;
    const e = this.slots.byLow32(low32);
    if (!e || e.wiped || e.recvExhausted || (last && e.n <= last.n)) return null;
    if (e === this.slots.next) return now < e.hardLimitAt ? e : null;
    return now < e.hardLimitAt + this.opts.graceMs ? e : null;
  }

  /**
   * An authenticated record arrived under `e`: the responder promotes a held `next`
   * (protocol.md s4); the initiator starts the grace of `previous`.
   */
  onAuthenticatedRecord(e: Epoch, now: number): SessionAction[] {
    const out: SessionAction[] = [];
    // protocol.md s6: limits count per epoch and direction; a peer that seals past the
    // hard limit is refused from then on (carrierEpoch/newCarrierEpoch return null).
    e.openedRecords++;
    if (this.role === 'responder' && e === this.slots.next && now < e.hardLimitAt) {
      this.#promoteNext(now, out, 'record');
    } else if (this.role === 'initiator' && e === this.slots.current && this.slots.previous && this.slots.previous.graceFrom === null) {
      this.slots.previous.graceFrom = now;
    }
    return out;
  }

  /** Accounting of what this side sealed; may trigger a rekey (records/bytes, protocol.md s6). */
  noteSealed(e: Epoch, bytes: number, now: number): SessionAction[] {
    e.sealedRecords++;
    e.sealedBytes += bytes;
    if (e !== this.slots.current) return [];
    if (e.sealedRecords === e.hardLimitRecords) {
      // BC-16: the sender stops here; carriers queue until a successor is installed.
      const out = this.handle({ type: 'trigger', reason: 'records' }, now);
      out.push({ type: 'log', level: 'error', event: 'epoch_hard_limit', fields: { epoch: e.n, limit: 'records', sealed_records: e.sealedRecords, qkd: this.opts.qkd } });
      out.push({ type: 'epochs-changed' });
      return out;
    }
    if (e.sealedRecords === this.opts.rekeyAfterRecords) return this.handle({ type: 'trigger', reason: 'records' }, now);
    if (e.sealedBytes >= this.opts.rekeyAfterBytes && e.sealedBytes - bytes < this.opts.rekeyAfterBytes) return this.handle({ type: 'trigger', reason: 'bytes' }, now);
    return [];
  }

  /**
   * Adds an OPEN's flow_id to the epoch's replay set (protocol.md s5.1). Returns 'ok',
   * 'replay' (already there) or 'exhausted' (set full: a rekey is triggered).
   */
  admitFlow(e: Epoch, flowIdHex: string, now: number, out: SessionAction[]): 'ok' | 'replay' | 'exhausted' {
    if (e.flowIds.has(flowIdHex)) return 'replay';
    if (e.flowIds.size >= this.opts.maxFlowsPerEpoch) {
      out.push(...this.handle({ type: 'trigger', reason: 'flows' }, now));
      return 'exhausted';
    }
    e.flowIds.add(flowIdHex);
    return 'ok';
  }

  // ---------------------------------------------------------------- the state machine

  /** Feeds one event; returns what the shell must do, in order. */
  handle(ev: SessionEvent, now: number): SessionAction[] {
    this.#now = now;
    const out: SessionAction[] = [];
    switch (ev.type) {
      case 'conn-up':
        this.#onConnUp(ev.conn, ev.exporter, out);
        break;
      case 'conn-down':
        this.#onConnDown(ev.conn, now, out);
        break;
      case 'malformed':
        this.#fatal(ev.conn, 'bad_message', ev.reason, undefined, out);
        break;
      case 'message':
        this.#onMessage(ev.conn, ev.msg, now, out);
        break;
      case 'key':
        if (this.role === 'initiator') this.#onMasterKey(ev.hs, ev.keyId, ev.key, now, out);
        else this.#onSlaveKey(ev.hs, ev.keyId, ev.key, now, out);
        break;
      case 'key-failed':
        this.#onKeyFailed(ev.hs, ev.code, ev.message, now, out);
        break;
      case 'trigger':
        this.#onTrigger(ev.reason, now, out);
        break;
      case 'kme-status':
        this.#onKmeStatus(ev.storedKeyCount, out);
        break;
      case 'tick':
        break;
    }
    this.#onTimers(now, out);
    return out;
  }

  /** The next time `tick` must run (ms), or null when nothing is scheduled. */
  nextDeadline(): number | null {
    const ds: number[] = [];
    if (this.#iFlight) ds.push(this.#iFlight.deadline);
    if (this.#rFlight) ds.push(this.#rFlight.deadline);
    if (this.role === 'initiator') {
      if (this.#want && this.#canStart()) ds.push(this.#want.immediate ? 0 : this.#notBefore);
      if (this.#rekeyAt !== null && !this.#want) ds.push(this.#rekeyAt);
    } else {
      const c = this.slots.current;
      if (c && this.#active && !this.#rFlight && !this.slots.next) ds.push(this.#responderRequestAt(c));
    }
    const c = this.slots.current;
    if (c && this.#hardLimitNotified !== c.n) ds.push(c.hardLimitAt);
    for (const e of this.slots.retired.values()) ds.push(e.hardLimitAt + this.opts.carrierHoldMs);
    return ds.length ? Math.min(...ds) : null;
  }

  /** Zeroizes every epoch and pending secret (shutdown). */
  wipe(): void {
    this.#abortInitiatorFlight();
    this.#rFlight = null;
    this.slots.wipeAll();
  }

  // ---------------------------------------------------------------- connections and HELLO

  #hello(): Hello {
    const h: Hello = {
      type: 'HELLO',
      version: Spec.VERSION,
      identity: this.opts.selfId,
      suites: [...this.opts.suites],
      receiver_index: this.opts.receiverIndex,
      epoch: this.slots.current?.n ?? 0,
    };
    if (this.role === 'responder') h.next = this.slots.next?.n ?? 0;
    return h;
  }

  #onConnUp(id: ConnId, exporter: Buffer, out: SessionAction[]): void {
    const c: Conn = { id, exporter, helloSent: true, peerHello: null, firstChained: false, initSeen: false, firstInitChained: false, completed: false };
    this.#conns.set(id, c);
    out.push({ type: 'send', conn: id, msg: this.#hello() });
  }

  #onConnDown(id: ConnId, now: number, out: SessionAction[]): void {
    const c = this.#conns.get(id);
    if (!c) return;
    this.#conns.delete(id);
    if (this.#active === c) {
      this.#active = null;
      this.#failFlightsOn(id, 'connection closed', now, out);
      out.push({ type: 'log', level: 'info', event: 'control_down', fields: { conn: id } });
    }
  }

  #onHello(c: Conn, h: Hello, now: number, out: SessionAction[]): void {
    if (c.peerHello) return this.#fatal(c.id, 'unexpected_message', 'second HELLO', undefined, out);
    if (h.version !== Spec.VERSION) return this.#fatal(c.id, 'bad_version', `version ${h.version} not supported`, undefined, out);
    if (h.identity !== this.opts.peerId) return this.#fatal(c.id, 'bad_identity', 'HELLO identity differs from the certificate identity', undefined, out);
    const fromResponder = this.role === 'initiator';
    if (fromResponder !== (h.next !== undefined)) return this.#fatal(c.id, 'bad_message', fromResponder ? 'responder HELLO without next' : 'initiator HELLO with next', undefined, out);
    c.peerHello = h;
    this.peerReceiverIndex = h.receiver_index;

    // A newer connection that completed HELLO replaces the old one (protocol.md s2).
    const old = this.#active;
    this.#active = c;
    if (old && old !== c) {
      this.#conns.delete(old.id);
      this.#failFlightsOn(old.id, 'control connection replaced', now, out);
      out.push({ type: 'close', conn: old.id, reason: 'replaced by a newer connection' });
    }

    const holds = this.#holdsState();
    const peerLost = h.epoch === 0 && (h.next ?? 0) === 0;
    if (peerLost && holds) {
      this.#abortInitiatorFlight();
      this.#rFlight = null;
      this.slots.wipeAll();
      this.#rekeyAt = null;
      out.push({ type: 'log', level: 'warn', event: 'peer_state_lost', fields: { L: this.#maxEpoch } });
      out.push({ type: 'peer-reset' }, { type: 'epochs-changed' });
    }
    this.#see(h.epoch);
    if (h.next !== undefined) this.#see(h.next);

    if (this.role === 'responder') {
      const n = this.slots.next;
      if (n && n.n === h.epoch) this.#promoteNext(now, out, 'hello');
      else if (n) {
        this.slots.discardNext();
        out.push({ type: 'log', level: 'info', event: 'epoch_discarded', fields: { epoch: n.n, reason: 'initiator HELLO does not name it' } });
      }
      out.push({ type: 'log', level: 'info', event: 'control_up', fields: { conn: c.id, peer_epoch: h.epoch } });
      return;
    }

    // Initiator: decide the chaining of this session's first INIT (s3.3).
    const cur = this.slots.current?.n ?? 0;
    c.firstChained = cur > 0 && (h.epoch === cur || h.next === cur);
    out.push({ type: 'log', level: 'info', event: 'control_up', fields: { conn: c.id, peer_epoch: h.epoch, peer_next: h.next, chained: c.firstChained } });
    if (cur === 0) this.#wantHandshake('first epoch', true);
    else if (!c.firstChained) this.#wantHandshake('peer does not hold our current epoch', true);
  }

  // ---------------------------------------------------------------- messages

  #onMessage(id: ConnId, msg: ControlMessage, now: number, out: SessionAction[]): void {
    const c = this.#conns.get(id);
    if (!c) return;
    if (msg.type === 'HELLO') return this.#onHello(c, msg, now, out);
    if (!c.peerHello) return this.#fatal(id, 'unexpected_message', `${msg.type} before HELLO`, undefined, out);
    switch (msg.type) {
      case 'PING':
        out.push({ type: 'send', conn: id, msg: { type: 'PONG', id: msg.id } });
        return;
      case 'PONG':
        return;
      case 'ALERT':
        return this.#onAlert(c, msg, now, out);
      case 'INIT':
        if (this.role !== 'responder') return this.#fatal(id, 'unexpected_message', 'INIT sent to the initiator', undefined, out);
        return this.#onInit(c, msg, now, out);
      case 'RESP':
        if (this.role !== 'initiator') return this.#fatal(id, 'unexpected_message', 'RESP sent to the responder', undefined, out);
        return this.#onResp(c, msg, now, out);
      case 'CONFIRM':
        if (this.role !== 'responder') return this.#fatal(id, 'unexpected_message', 'CONFIRM sent to the initiator', undefined, out);
        return this.#onConfirm(c, msg.epoch, msg.tag_I, now, out);
      case 'REKEY_REQUEST':
        if (this.role !== 'initiator') return this.#fatal(id, 'unexpected_message', 'REKEY_REQUEST sent to the responder', undefined, out);
        if (msg.epoch !== (this.slots.current?.n ?? -1) || this.#iFlight) return this.#count('rekey_request_ignored', out, { epoch: msg.epoch });
        out.push({ type: 'log', level: 'info', event: 'rekey_requested', fields: { epoch: msg.epoch, reason: msg.reason } });
        this.#wantHandshake(`peer request (${msg.reason})`, false);
        return;
    }
  }

  #onAlert(c: Conn, a: Alert, now: number, out: SessionAction[]): void {
    // A bad_tag received by the initiator was sent by the responder: it concerns tag_I.
    const fatal = isFatalAlert(a.code, { concernsTagI: this.role === 'initiator' });
    out.push({ type: 'log', level: 'warn', event: 'alert_received', fields: { code: a.code, epoch: a.epoch, message: a.message, fatal } });
    if (a.code === 'bad_epoch' && a.epoch !== undefined) this.#see(a.epoch);
    if (fatal) {
      if (this.role === 'responder' && a.epoch !== undefined && this.slots.next?.n === a.epoch) this.#discardNext('fatal alert', out);
      this.#conns.delete(c.id);
      if (this.#active === c) this.#active = null;
      this.#failFlightsOn(c.id, `peer sent ALERT ${a.code}`, now, out);
      out.push({ type: 'close', conn: c.id, reason: `peer sent fatal ALERT ${a.code}` });
      return;
    }
    if (this.role === 'initiator') {
      const f = this.#iFlight;
      if (!f || f.conn !== c.id || f.epoch !== a.epoch) return this.#count('alert_ignored', out, { code: a.code, epoch: a.epoch });
      if (a.code === 'policy_refused' && f.degraded) out.push({ type: 'log', level: 'error', event: 'degraded_refused_by_peer', fields: { epoch: a.epoch, message: a.message } });
      this.#failInitiator(`peer refused: ${a.code}`, now, out, a.code === 'key_unavailable' ? 'key_unavailable' : 'other');
      return;
    }
    const f = this.#rFlight;
    if (f && f.conn === c.id && f.init.epoch === a.epoch) {
      this.#rFlight = null;
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: a.epoch, reason: `peer sent ${a.code}` } });
      return;
    }
    if (this.slots.next && this.slots.next.n === a.epoch) return this.#discardNext(`peer sent ${a.code}`, out);
    this.#count('alert_ignored', out, { code: a.code, epoch: a.epoch });
  }

  // ---------------------------------------------------------------- initiator

  #canStart(): boolean {
    return this.role === 'initiator' && this.#iFlight === null && this.#active !== null && this.#active.peerHello !== null;
  }

  #wantHandshake(reason: string, immediate: boolean): void {
    if (this.role !== 'initiator') return;
    if (this.#want) {
      if (immediate) this.#want.immediate = true;
      return;
    }
    this.#want = { reason, immediate };
  }

  #onTrigger(reason: RekeyReason, now: number, out: SessionAction[]): void {
    if (this.role === 'initiator') {
      if (this.#iFlight) return; // triggers during a handshake are dropped (protocol.md s1)
      this.#wantHandshake(reason, false);
      return;
    }
    this.#maybeRequest(reason, now, out);
  }

  #startHandshake(now: number, out: SessionAction[]): void {
    const c = this.#active!;
    const want = this.#want!;
    this.#want = null;
    // No QKD key is consumed for a handshake that cannot agree on a suite.
    if (!this.opts.suites.some((s) => c.peerHello!.suites.includes(s))) {
      this.#noteFailure(now);
      return this.#fatal(c.id, 'no_common_suite', `no common suite: we offer ${this.opts.suites.join(',')}, the peer ${c.peerHello!.suites.join(',')}`, undefined, out);
    }
    const epoch = this.#maxEpoch + 1;
    if (epoch > Spec.MAX_EPOCH) {
      // Only a peer that reported absurd numbers gets here; numbering cannot go on safely.
      this.#noteFailure(now);
      out.push({ type: 'log', level: 'error', event: 'epoch_space_exhausted', fields: { L: this.#maxEpoch } });
      this.#wantHandshake(want.reason, false);
      return;
    }
    this.#see(epoch); // a number sent in an INIT is never reused
    const hs = ++this.#hsSeq;
    const degraded = this.#nextIsDegraded();
    const stepDown = this.#stepDown;
    this.#stepDown = null;
    this.#iFlight = { phase: 'key', hs, conn: c.id, epoch, started: now, deadline: now + (degraded ? 0 : this.opts.keyFetchTimeoutMs), degraded };
    out.push({ type: 'log', level: 'info', event: 'handshake_started', fields: { epoch, reason: stepDown ? `${want.reason}; degraded because ${stepDown}` : want.reason, mode: degraded ? 'degraded' : 'qkd' } });
    if (degraded) this.#sendInit(null, now, out);
    else out.push({ type: 'get-key', hs });
  }

  /** protocol.md s6: whether this initiator's next INIT is degraded (bit1, no QKD key). */
  #nextIsDegraded(): boolean {
    if (this.opts.qkd === 'off') return true;
    if (this.opts.qkd !== 'preferred') return false;
    if (this.#stepDown !== null) return true;
    return this.#ladder === 'degraded' && this.#goodChecks < this.opts.recoveryChecks;
  }

  #onKmeStatus(stored: number | null, out: SessionAction[]): void {
    const before = this.#goodChecks;
    this.#goodChecks = stored !== null && stored >= 1 ? this.#goodChecks + 1 : 0;
    if (this.role !== 'initiator' || this.opts.qkd !== 'preferred' || this.#ladder !== 'degraded') return;
    if (before < this.opts.recoveryChecks && this.#goodChecks >= this.opts.recoveryChecks) {
      out.push({ type: 'log', level: 'info', event: 'qkd_recovery_ready', fields: { good_checks: this.#goodChecks, stored_key_count: stored } });
    } else if (before >= this.opts.recoveryChecks && this.#goodChecks === 0) {
      out.push({ type: 'log', level: 'warn', event: 'qkd_recovery_lost', fields: { stored_key_count: stored } });
    }
  }

  /**
   * protocol.md s6 `preferred`: a QKD attempt whose enc_keys failed, or the third QKD INIT
   * in a row answered `key_unavailable`, is retried at once as a degraded INIT.
   */
  #maybeStepDown(kind: 'enc_keys' | 'key_unavailable' | 'other', wasDegraded: boolean, reason: string, out: SessionAction[]): boolean {
    if (wasDegraded) return false;
    if (kind === 'key_unavailable') this.#keyUnavailableStreak++;
    else this.#keyUnavailableStreak = 0;
    if (this.opts.qkd !== 'preferred') return false;
    const why = kind === 'enc_keys' ? 'enc_keys failed after its retries' : kind === 'key_unavailable' && this.#keyUnavailableStreak >= Spec.KEY_UNAVAILABLE_STEP_DOWN ? `${this.#keyUnavailableStreak} QKD INITs in a row got key_unavailable` : null;
    if (!why) return false;
    this.#stepDown = why;
    this.#keyUnavailableStreak = 0;
    this.#goodChecks = 0; // hysteresis: N fresh good checks before the next QKD attempt
    out.push({ type: 'log', level: 'warn', event: 'qkd_step_down', fields: { reason: why, cause: reason } });
    return true;
  }

  #onMasterKey(hs: number, keyId: string, key: SecretBytes, now: number, out: SessionAction[]): void {
    const f = this.#iFlight;
    if (!f || f.hs !== hs || f.phase !== 'key') {
      key.wipe(); // a late key is never used: the KME consumed it, nobody else may have it
      out.push({ type: 'log', level: 'info', event: 'qkd_key_discarded', fields: { key_ID: keyId, reason: 'handshake no longer in flight' } });
      return;
    }
    if (!isKeyIdString(keyId) || key.length !== Spec.QKD_KEY_LEN) {
      key.wipe();
      return this.#failInitiator(`KME returned an unusable key (key_ID ${JSON.stringify(keyId.slice(0, 64))})`, now, out);
    }
    if (this.#keyIds.has(keyId)) {
      key.wipe();
      return this.#failInitiator(`KME returned key_ID ${keyId} again (key_reused)`, now, out);
    }
    this.#keyIds.add(keyId);
    this.#sendInit({ keyId, key }, now, out);
  }

  #sendInit(k: { keyId: string; key: SecretBytes } | null, now: number, out: SessionAction[]): void {
    const f = this.#iFlight!;
    const c = this.#conns.get(f.conn)!;
    const h = c.peerHello!;
    const suite = this.opts.suites.find((s) => h.suites.includes(s));
    if (suite === undefined) {
      k?.key.wipe();
      this.#iFlight = null;
      return this.#fatal(c.id, 'no_common_suite', 'no common suite', undefined, out);
    }
    const cur = this.slots.current;
    const chained = cur !== null && (c.initSeen ? c.firstInitChained || c.completed : c.firstChained);
    if (!c.initSeen) {
      c.initSeen = true;
      c.firstInitChained = chained;
    }
    const mode = (chained ? Spec.MODE_CHAINED : 0) | (k ? 0 : Spec.MODE_DEGRADED);
    const keyIds = k ? [k.keyId] : [];
    const ctx: HandshakeContext = { suite, epoch: f.epoch, mode, idI: this.opts.selfId, idR: this.opts.peerId, keyIds, exporter: c.exporter, salt: chained ? cur!.chain.expose() : null };
    const pending = new InitiatorPending();
    this.#iFlight = { phase: 'resp', hs: f.hs, conn: f.conn, epoch: f.epoch, started: f.started, deadline: now + this.opts.handshakeTimeoutMs, degraded: k === null, ctx, pending, kQkd: k ? k.key : SecretBytes.zero(32), saltEpoch: chained ? cur : null };
    out.push({ type: 'send', conn: c.id, msg: { type: 'INIT', suite, epoch: f.epoch, mode, key_IDs: keyIds, N_I: pending.nI, pkX_I: pending.x.publicKey, ek_M: pending.ek } });
  }

  #onResp(c: Conn, r: Resp, now: number, out: SessionAction[]): void {
    const f = this.#iFlight;
    if (!f || f.phase !== 'resp' || f.conn !== c.id || f.epoch !== r.epoch) return this.#count('resp_ignored', out, { epoch: r.epoch });
    this.#see(r.epoch);
    let res: ReturnType<typeof finishInitiator>;
    try {
      res = finishInitiator(f.ctx, f.pending, r, f.kQkd);
    } catch (e) {
      f.kQkd.wipe();
      this.#iFlight = null;
      this.#noteFailure(now);
      this.#wantHandshake('retry after a malformed RESP', false);
      return this.#fatal(c.id, 'bad_message', isQkdgwError(e) ? e.message : 'malformed RESP', r.epoch, out);
    }
    f.kQkd.wipe();
    this.#iFlight = null;
    if (!res) {
      this.#sendAlert(c.id, 'bad_tag', 'tag_R did not verify', r.epoch, out);
      this.#noteFailure(now);
      this.#wantHandshake('retry after bad tag_R', false);
      out.push({ type: 'log', level: 'error', event: 'handshake_failed', fields: { epoch: r.epoch, reason: 'bad_tag (tag_R): key confirmation failed', key_IDs: f.ctx.keyIds } });
      return;
    }
    const e = new Epoch({ n: r.epoch, suite: f.ctx.suite, mode: f.ctx.mode, keyIds: f.ctx.keyIds, derivedAt: now, hardLimitMs: this.opts.hardLimitTimeMs, hardLimitRecords: this.opts.hardLimitRecords, secrets: res.secrets, role: 'initiator', th: res.th });
    const old = this.slots.current;
    this.#install(e, null, now, out);
    old?.wipeChain(); // the salt of e: zeroized once e is confirmed (s3.2)
    c.completed = true;
    this.#succeeded();
    out.push({ type: 'send', conn: c.id, msg: { type: 'CONFIRM', epoch: r.epoch, tag_I: res.tagI } });
  }

  #onTimers(now: number, out: SessionAction[]): void {
    const f = this.#iFlight;
    if (f && now >= f.deadline && f.phase === 'resp') {
      this.#sendAlert(f.conn, 'handshake_timeout', 'no valid RESP in time', f.epoch, out);
      this.#failInitiator('handshake timeout', now, out);
    } else if (f && now >= f.deadline && f.phase === 'key') {
      this.#failInitiator('enc_keys did not answer in time', now, out, 'enc_keys');
    }
    const rf = this.#rFlight;
    if (rf && now >= rf.deadline) {
      this.#rFlight = null;
      this.#sendAlert(rf.conn, 'key_unavailable', 'dec_keys did not deliver the key in time', rf.init.epoch, out);
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: rf.init.epoch, reason: 'key_unavailable (deadline)', key_IDs: rf.init.key_IDs } });
    }
    const c = this.slots.current;
    if (c && this.#hardLimitNotified !== c.n && now >= c.hardLimitAt) {
      this.#hardLimitNotified = c.n;
      // The alarm of protocol.md s6 (`required`: no QKD key, no new epoch): traffic for the pair now waits (hold).
      out.push({ type: 'log', level: 'error', event: 'epoch_hard_limit', fields: { epoch: c.n, limit: 'time', qkd: this.opts.qkd, failures: this.#failures } });
      out.push({ type: 'epochs-changed' });
    }
    for (const e of this.slots.expiredPins(now)) {
      out.push({ type: 'abort-pinned', epoch: e.n });
      this.slots.dropRetired(e);
    }
    if (this.role === 'initiator') {
      if (this.#rekeyAt !== null && now >= this.#rekeyAt && !this.#iFlight && !this.#want) {
        this.#rekeyAt = null;
        this.#wantHandshake('time', false);
      }
      if (this.#want && this.#canStart() && (this.#want.immediate || now >= this.#notBefore)) this.#startHandshake(now, out);
    } else if (c && now >= this.#responderRequestAt(c)) {
      this.#maybeRequest('time', now, out);
    }
  }

  #onKeyFailed(hs: number, code: string, message: string, now: number, out: SessionAction[]): void {
    if (this.role === 'initiator') {
      const f = this.#iFlight;
      if (f && f.hs === hs && f.phase === 'key') this.#failInitiator(`enc_keys failed: ${code}: ${message}`, now, out, 'enc_keys');
      return;
    }
    const f = this.#rFlight;
    if (!f || f.hs !== hs) return;
    this.#rFlight = null;
    this.#sendAlert(f.conn, 'key_unavailable', `dec_keys failed: ${code}`, f.init.epoch, out);
    out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: f.init.epoch, reason: `key_unavailable: ${code}: ${message}`, key_IDs: f.init.key_IDs } });
  }

  #failInitiator(reason: string, now: number, out: SessionAction[], kind: 'enc_keys' | 'key_unavailable' | 'other' = 'other'): void {
    const f = this.#iFlight;
    if (!f) return;
    this.#abortInitiatorFlight();
    this.#noteFailure(now);
    const stepDown = this.#maybeStepDown(kind, f.degraded, reason, out);
    out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: f.epoch, reason, mode: f.degraded ? 'degraded' : 'qkd', failures: this.#failures, retry_in_ms: stepDown ? 0 : Math.max(0, this.#notBefore - now) } });
    if (this.#failingSince !== null && !this.#failAlarmed && now - this.#failingSince >= Spec.FAILURE_ALARM_AFTER_MS) {
      this.#failAlarmed = true;
      out.push({ type: 'log', level: 'error', event: 'handshake_failing', fields: { since_ms: now - this.#failingSince, failures: this.#failures } });
    }
    this.#wantHandshake(`retry after: ${reason}`, stepDown);
  }

  #abortInitiatorFlight(): void {
    const f = this.#iFlight;
    this.#iFlight = null;
    if (f?.phase === 'resp') {
      f.pending.wipe();
      f.kQkd.wipe();
    }
  }

  #noteFailure(now: number): void {
    this.#failures++;
    if (this.#failingSince === null) this.#failingSince = now;
    const failingFor = now - this.#failingSince;
    const { backoffMinMs: min, backoffMaxMs: max } = this.opts;
    const base = failingFor >= Spec.FAILURE_ALARM_AFTER_MS ? max : Math.min(max, min * 2 ** Math.min(this.#failures - 1, 52));
    // Jitter in [base/2, base] so that both ends of many pairs do not retry in lockstep.
    this.#notBefore = now + Math.max(min, Math.round(base * (0.5 + 0.5 * this.opts.random())));
  }

  #succeeded(): void {
    this.#failures = 0;
    this.#failingSince = null;
    this.#failAlarmed = false;
    this.#notBefore = 0;
  }

  // ---------------------------------------------------------------- responder

  #onInit(c: Conn, m: Init, now: number, out: SessionAction[]): void {
    const degraded = (m.mode & Spec.MODE_DEGRADED) !== 0;
    // A malformed INIT is not a handshake at all: it moves no epoch number and discards nothing.
    if (!this.opts.suites.includes(m.suite as 1 | 2) || (m.mode & ~0x03) !== 0 || m.key_IDs.length !== (degraded ? 0 : 1) || !initPublicValuesValid(m)) {
      return this.#fatal(c.id, 'bad_message', 'INIT fails validation (suite, mode, key_IDs or public values)', m.epoch, out);
    }
    if (this.#rFlight) return this.#fatal(c.id, 'unexpected_message', 'INIT while a handshake is in flight', m.epoch, out);
    // An unconfirmed `next` was abandoned by the initiator: its CONFIRM would have come first.
    if (this.slots.next) this.#discardNext('a new INIT arrived before its CONFIRM', out);
    const L = this.#maxEpoch;
    this.#see(m.epoch);

    const cur = this.slots.current;
    const expectChained = cur !== null && (c.initSeen ? c.firstInitChained || c.completed : c.peerHello!.epoch > 0 && cur.n === c.peerHello!.epoch);
    const chained = (m.mode & Spec.MODE_CHAINED) !== 0;
    if (!c.initSeen) {
      c.initSeen = true;
      c.firstInitChained = chained;
    }
    if (degraded) {
      const refuse = this.#refuseDegraded(cur !== null, chained, c.peerHello!.epoch > 0 || c.completed);
      if (refuse) {
        this.#sendAlert(c.id, 'policy_refused', refuse, m.epoch, out);
        out.push({ type: 'log', level: 'warn', event: 'degraded_refused', fields: { epoch: m.epoch, reason: refuse } });
        return;
      }
    }
    const holds = this.#holdsState();
    if (!(L < m.epoch) || (holds && m.epoch > L + Spec.EPOCH_WINDOW) || chained !== expectChained || (chained && (!cur || cur.wiped))) {
      return this.#fatal(c.id, 'bad_epoch', `INIT epoch ${m.epoch} / chaining ${chained} not acceptable`, this.#maxEpoch, out);
    }
    if (!degraded && this.#keyIds.has(m.key_IDs[0])) {
      this.#sendAlert(c.id, 'key_reused', 'key_ID already used for this pair', m.epoch, out);
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: m.epoch, reason: 'key_reused', key_IDs: m.key_IDs } });
      return;
    }
    const hs = ++this.#hsSeq;
    this.#rFlight = { hs, conn: c.id, init: m, chained, deadline: now + Spec.DEC_KEYS_DEADLINE_MS };
    if (degraded) {
      out.push({ type: 'log', level: 'warn', event: chained ? 'degraded_epoch' : 'degraded_unchained', fields: { epoch: m.epoch } });
      this.#onSlaveKey(hs, '', SecretBytes.zero(32), now, out);
    } else {
      this.#keyIds.add(m.key_IDs[0]);
      out.push({ type: 'get-key-by-id', hs, keyId: m.key_IDs[0], deadlineMs: Spec.DEC_KEYS_DEADLINE_MS });
    }
  }

  /** Why a degraded INIT is refused here (protocol.md s3.3, s6), or null to accept it. */
  #refuseDegraded(holdsCurrent: boolean, chained: boolean, peerHoldsCurrent: boolean): string | null {
    if (this.opts.qkd === 'required') return 'policy requires a QKD key';
    if (chained) return null;
    if (holdsCurrent && peerHoldsCurrent) return 'chain_mismatch: both sides hold an epoch but share no chain; only a QKD INIT is accepted';
    if (holdsCurrent || peerHoldsCurrent) return 'an unchained degraded epoch is allowed only when neither side holds an epoch';
    return null;
  }

  #onSlaveKey(hs: number, keyId: string, key: SecretBytes, now: number, out: SessionAction[]): void {
    const f = this.#rFlight;
    if (!f || f.hs !== hs) {
      key.wipe();
      if (keyId) out.push({ type: 'log', level: 'info', event: 'qkd_key_discarded', fields: { key_ID: keyId, reason: 'handshake no longer in flight' } });
      return;
    }
    const m = f.init;
    const degraded = (m.mode & Spec.MODE_DEGRADED) !== 0;
    if (!degraded && (keyId.toLowerCase() !== m.key_IDs[0].toLowerCase() || key.length !== Spec.QKD_KEY_LEN)) {
      key.wipe();
      this.#rFlight = null;
      this.#sendAlert(f.conn, 'key_unavailable', 'KME returned a different or malformed key', m.epoch, out);
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: m.epoch, reason: 'key_unavailable (KME answer does not match)', key_IDs: m.key_IDs } });
      return;
    }
    const c = this.#conns.get(f.conn)!;
    const cur = this.slots.current;
    const ctx: HandshakeContext = { suite: m.suite as 1 | 2, epoch: m.epoch, mode: m.mode, idI: this.opts.peerId, idR: this.opts.selfId, keyIds: m.key_IDs, exporter: c.exporter, salt: f.chained ? cur!.chain.expose() : null };
    let r: ReturnType<typeof respond>;
    try {
      r = respond(ctx, m, key.expose());
    } catch (e) {
      this.#rFlight = null;
      return this.#fatal(c.id, 'bad_message', isQkdgwError(e) ? e.message : 'INIT public values invalid', m.epoch, out);
    } finally {
      key.wipe();
    }
    this.#rFlight = null;
    const e = new Epoch({ n: m.epoch, suite: ctx.suite, mode: m.mode, keyIds: m.key_IDs, derivedAt: now, hardLimitMs: this.opts.hardLimitTimeMs, hardLimitRecords: this.opts.hardLimitRecords, secrets: r.secrets, role: 'responder', th: r.th });
    this.slots.next = e;
    out.push({ type: 'log', level: 'info', event: 'epoch_next', fields: { epoch: e.n, key_IDs: e.keyIds, suite: e.suite, mode: e.mode } });
    out.push({ type: 'send', conn: c.id, msg: { type: 'RESP', epoch: m.epoch, N_R: r.nR, pkX_R: r.pkXR, ct_M: r.ctM, tag_R: r.tagR } });
    out.push({ type: 'epochs-changed' });
  }

  #onConfirm(c: Conn, epoch: number, tagI: Buffer, now: number, out: SessionAction[]): void {
    const n = this.slots.next;
    const cur = this.slots.current;
    const target = n && n.n === epoch ? n : cur && cur.n === epoch && !cur.confirmed ? cur : null;
    if (!target) return this.#count('confirm_ignored', out, { epoch });
    if (!checkConfirm(target.finishedI, target.th, tagI)) {
      if (target === n) this.slots.discardNext();
      out.push({ type: 'log', level: 'error', event: 'handshake_failed', fields: { epoch, reason: 'bad_tag (tag_I): key confirmation failed', key_IDs: target.keyIds } });
      return this.#fatal(c.id, 'bad_tag', 'tag_I did not verify', epoch, out);
    }
    target.confirmed = true;
    c.completed = true;
    if (target === n) this.#promoteNext(now, out, 'confirm');
  }

  #promoteNext(now: number, out: SessionAction[], why: string): void {
    const n = this.slots.next!;
    const old = this.slots.current;
    this.#install(n, now, now, out, why);
    old?.wipeChain();
    if (this.#active) this.#active.completed = true;
  }

  #responderRequestAt(c: Epoch): number {
    if (this.#requestedFor === c.n) return this.#requestedAt + this.opts.handshakeTimeoutMs;
    return c.derivedAt + this.#rekeyAfterMs(c) + Spec.RESPONDER_REKEY_EXTRA_MS;
  }

  #maybeRequest(reason: RekeyReason, now: number, out: SessionAction[]): void {
    const c = this.slots.current;
    const conn = this.#active;
    if (!c || !conn || this.#rFlight || this.slots.next) return;
    // At most one per epoch, and again only after a handshake timeout passed with no INIT.
    if (this.#requestedFor === c.n && now < this.#requestedAt + this.opts.handshakeTimeoutMs) return;
    this.#requestedFor = c.n;
    this.#requestedAt = now;
    out.push({ type: 'send', conn: conn.id, msg: { type: 'REKEY_REQUEST', epoch: c.n, reason } });
    out.push({ type: 'log', level: 'info', event: 'rekey_request_sent', fields: { epoch: c.n, reason } });
  }

  // ---------------------------------------------------------------- shared

  #install(e: Epoch, graceFrom: number | null, now: number, out: SessionAction[], why = 'tag_R verified'): void {
    const wasDegraded = this.slots.current !== null && (this.slots.current.mode & Spec.MODE_DEGRADED) !== 0;
    const evicted = this.slots.install(e, graceFrom);
    this.#see(e.n);
    if (this.role === 'initiator') this.#rekeyAt = now + this.#rekeyAfterMs(e) + Math.floor(this.opts.random() * this.opts.rekeyJitterMs);
    const degraded = (e.mode & Spec.MODE_DEGRADED) !== 0;
    if (degraded && !wasDegraded) {
      // The alarm of protocol.md s6: traffic is protected by ML-KEM + X25519 only.
      out.push({ type: 'log', level: 'error', event: 'qkd_degraded', fields: { epoch: e.n, qkd: this.opts.qkd, lifetime_ms: this.#rekeyAfterMs(e), recovery_checks: this.opts.recoveryChecks } });
    } else if (!degraded && wasDegraded) {
      out.push({ type: 'log', level: 'info', event: 'qkd_restored', fields: { epoch: e.n, key_IDs: e.keyIds, good_checks: this.#goodChecks } });
    }
    if (this.role === 'initiator') {
      this.#ladder = degraded ? 'degraded' : 'qkd';
      if (!degraded) this.#keyUnavailableStreak = 0;
    }
    out.push({
      type: 'log',
      level: 'info',
      event: 'epoch_switch',
      fields: { epoch: e.n, key_IDs: e.keyIds, suite: e.suite, mode: e.mode, degraded: (e.mode & Spec.MODE_DEGRADED) !== 0, chained: (e.mode & Spec.MODE_CHAINED) !== 0, previous: this.slots.previous?.n ?? null, evicted: evicted?.n ?? null, role: this.role, why },
    });
    out.push({ type: 'epochs-changed' });
  }

  /** Rekey time of `e`: `degraded_lifetime` for a degraded epoch under `preferred` (s6). */
  #rekeyAfterMs(e: Epoch): number {
    return (e.mode & Spec.MODE_DEGRADED) !== 0 && this.opts.qkd === 'preferred' ? Math.min(this.opts.degradedLifetimeMs, this.opts.rekeyAfterTimeMs) : this.opts.rekeyAfterTimeMs;
  }

  #discardNext(reason: string, out: SessionAction[]): void {
    const n = this.slots.discardNext();
    if (n) {
      out.push({ type: 'log', level: 'info', event: 'epoch_discarded', fields: { epoch: n.n, reason } });
      out.push({ type: 'epochs-changed' });
    }
  }

  #failFlightsOn(id: ConnId, reason: string, now: number, out: SessionAction[]): void {
    if (this.#iFlight && this.#iFlight.conn === id) this.#failInitiator(reason, now, out);
    if (this.#rFlight && this.#rFlight.conn === id) {
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch: this.#rFlight.init.epoch, reason } });
      this.#rFlight = null;
    }
  }

  #fatal(id: ConnId, code: AlertCode, message: string, epoch: number | undefined, out: SessionAction[]): void {
    out.push({ type: 'send', conn: id, msg: alert(code, message, epoch) });
    out.push({ type: 'log', level: 'warn', event: 'alert_sent', fields: { code, epoch, message, fatal: true } });
    const c = this.#conns.get(id);
    this.#conns.delete(id);
    if (c && this.#active === c) this.#active = null;
    if (this.#iFlight && this.#iFlight.conn === id) {
      const epoch = this.#iFlight.epoch;
      this.#abortInitiatorFlight();
      this.#noteFailure(this.#now);
      out.push({ type: 'log', level: 'warn', event: 'handshake_failed', fields: { epoch, reason: `sent fatal ALERT ${code}` } });
      this.#wantHandshake(`retry after fatal ALERT ${code}`, false);
    }
    if (this.#rFlight && this.#rFlight.conn === id) this.#rFlight = null;
    out.push({ type: 'close', conn: id, reason: `sent fatal ALERT ${code}` });
  }

  /** A handshake-only ALERT (the connection stays): sent and logged as `alert_sent`, like a fatal one. */
  #sendAlert(conn: ConnId, code: AlertCode, message: string, epoch: number, out: SessionAction[]): void {
    out.push({ type: 'send', conn, msg: alert(code, message, epoch) });
    out.push({ type: 'log', level: 'warn', event: 'alert_sent', fields: { code, epoch, message, fatal: false } });
  }

  #count(what: string, out: SessionAction[], fields: Record<string, unknown>): void {
    this.counters.set(what, (this.counters.get(what) ?? 0) + 1);
    out.push({ type: 'log', level: 'debug', event: what, fields });
  }

  #see(n: number): void {
    if (n > this.#maxEpoch) this.#maxEpoch = n;
  }

  #holdsState(): boolean {
    const s = this.slots;
    return s.current !== null || s.next !== null || s.previous !== null || s.retired.size > 0;
  }
}

function alert(code: AlertCode, message: string, epoch?: number): Alert {
  const a: Alert = { type: 'ALERT', code, message };
  if (epoch !== undefined) a.epoch = epoch;
  return a;
}

