/**
 * PeerRuntime: the I/O shell around one pair's PeerSession (architecture.md habit 3).
 * It owns the session's single timer, executes its actions (send, close, fetch keys,
 * log), and gives the carriers what they need: the epoch to seal under, receive-epoch
 * lookups, pins, the flow replay set and the hold.
 */
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { SecretBytes } from '../../util/secret.js';
import { isQkdgwError } from '../../errors.js';
import { PeerSession, type SessionAction, type SessionEvent, type SessionOptions } from '../core/session.js';
import type { Epoch } from '../core/epochs.js';
import type { RekeyReason } from '../core/wire/control.js';
import { ControlConn } from './control-conn.js';
import { defaultCarrierCrypto, type CarrierCrypto } from '../core/carrier.js';

/** Where QKD keys come from (the daemon adapts its ETSI 014 KeySource to this). */
export interface QkdKeyProvider {
  /** Master SAE: one fresh 256-bit key for slave `peerSaeId`. */
  getKey(peerSaeId: string): Promise<{ keyId: string; key: SecretBytes }>;
  /** Slave SAE: the key `keyId` announced by master `peerSaeId`, within `deadlineMs`. */
  getKeyById(peerSaeId: string, keyId: string, opts: { deadlineMs: number }): Promise<{ keyId: string; key: SecretBytes }>;
}

/** What a carrier registers so the runtime can abort it. */
export interface CarrierHandle {
  /** Aborts with an RST reason (no record sealed when `silent`). */
  abort(reason: string, opts?: { silent?: boolean }): void;
  /** The epoch number this carrier pins (protocol.md s4), or null. */
  readonly pinEpoch: number | null;
}

export interface PeerRuntimeOptions {
  session: SessionOptions;
  keys: QkdKeyProvider;
  clock: Clock;
  logger: Logger;
  /** How long new client connections wait for an epoch before they are reset (protocol.md s4 hold). */
  holdMs: number;
  /** AEAD backends and flow-key derivation for this peer's carriers (default: node:crypto). */
  carrierCrypto?: CarrierCrypto;
}

const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1);
};

/** Reason prefixes of the session (session.ts) and their metric label, checked in order. */
const REASON_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['first epoch', 'first_epoch'],
  ['peer does not hold', 'resync'],
  ['peer request', 'peer_request'],
  ['retry after', 'retry'],
  ['peer refused', 'peer_refused'],
  ['peer sent fatal ALERT ', 'peer_alert'],
  ['peer sent ', 'peer_alert'],
  ['sent fatal ALERT', 'alert_sent'],
];

/**
 * A bounded label for a free-text handshake reason, so metrics never grow a series per
 * message: a known prefix maps to its label (`first epoch` -> `first_epoch`, `retry
 * after: ...` -> `retry`, `peer sent X` -> `peer_alert`); otherwise the leading
 * `[a-z_]+` word (`time`, `records`, `bytes`, `flows`, `bad_tag (tag_R): ...` ->
 * `bad_tag`, `key_unavailable: ...` -> `key_unavailable`); anything else -> `other`.
 */
export function reasonClass(reason: unknown): string {
  if (typeof reason !== 'string') return 'other';
  for (const [prefix, label] of REASON_PREFIXES) if (reason.startsWith(prefix)) return label;
  const m = /^([a-z_]{1,32})(?![a-z_])/.exec(reason);
  return m ? m[1] : 'other';
}

export class PeerRuntime {
  readonly session: PeerSession;
  readonly peerId: string;
  readonly log: Logger;
  readonly #o: PeerRuntimeOptions;
  #conns = new Map<number, ControlConn>();
  #cancelTimer: (() => void) | null = null;
  #timerAt: number | null = null;
  #waiters = new Set<() => void>();
  #carriers = new Map<CarrierHandle, Epoch | null>();
  #closed = false;
  /** Since when the pair has had no epoch to seal under (a process starts in that state). */
  #holdSince: number | null;
  /** Counters for status and tests. */
  /** How many times each session event (`epoch_switch`, `qkd_degraded`, ...) was logged. */
  readonly events = new Map<string, number>();
  readonly stats = { epochSwitches: 0, handshakeFailures: 0, carriersOpened: 0, carrierAborts: 0, authFailures: 0, replays: 0 };
  /** Carrier records and plaintext bytes (DATA payloads) sealed and opened since start, all epochs. */
  readonly traffic = { recordsSealed: 0, bytesSealed: 0, recordsOpened: 0, bytesOpened: 0 };
  /** Handshakes started, by the class of their trigger (reasonClass: time, records, bytes, ...). */
  readonly rekeysByReason = new Map<string, number>();
  /** Failed handshakes, by the class of their reason (reasonClass: bad_tag, key_unavailable, ...). */
  readonly handshakeFailuresByReason = new Map<string, number>();

  constructor(o: PeerRuntimeOptions) {
    this.#o = o;
    this.session = new PeerSession(o.session);
    this.peerId = o.session.peerId;
    this.log = o.logger.child({ peer: this.peerId });
    this.#holdSince = o.clock.now();
  }

  /** What this peer's carriers seal and open with. */
  get carrierCrypto(): CarrierCrypto {
    return this.#o.carrierCrypto ?? defaultCarrierCrypto;
  }

  get role(): 'initiator' | 'responder' {
    return this.session.role;
  }

  // ---------------------------------------------------------------- control plane

  /** Hands a TLS-verified control connection for this peer to the session. */
  attach(conn: ControlConn): void {
    if (this.#closed) {
      conn.close('shutting down');
      return;
    }
    this.#conns.set(conn.id, conn);
    this.log.info({ event: 'control_attached', conn: conn.id, remote: conn.remote });
    conn.start({
      message: (c, msg) => this.#feed({ type: 'message', conn: c.id, msg }),
      malformed: (c, reason) => this.#feed({ type: 'malformed', conn: c.id, reason }),
      closed: (c, reason) => {
        this.#conns.delete(c.id);
        this.log.debug({ event: 'control_closed', conn: c.id, reason });
        this.#feed({ type: 'conn-down', conn: c.id });
      },
    });
    this.#feed({ type: 'conn-up', conn: conn.id, exporter: conn.exporter });
  }

  /** True once a control connection completed HELLO. */
  get controlUp(): boolean {
    return this.session.activeConn !== null;
  }

  #feed(ev: SessionEvent): void {
    if (this.#closed) return;
    let actions: SessionAction[];
    try {
      actions = this.session.handle(ev, this.#o.clock.now());
    } catch (e) {
      // A bug or an input nobody foresaw must cost one control connection, never the daemon.
      this.log.error({ event: 'session_internal_error', on: ev.type, err: e instanceof Error ? e.message : String(e) });
      if ('conn' in ev) this.#conns.get(ev.conn)?.close('internal error');
      return;
    }
    this.#exec(actions);
  }

  #exec(actions: SessionAction[]): void {
    for (const a of actions) {
      switch (a.type) {
        case 'send':
          try {
            this.#conns.get(a.conn)?.send(a.msg);
          } catch (e) {
            // encodeControl refuses a frame that breaks protocol.md s2 rather than send it.
            this.log.error({ event: 'control_send_refused', type: a.msg.type, err: e instanceof Error ? e.message : String(e) });
            this.#conns.get(a.conn)?.close('internal error');
          }
          break;
        case 'close':
          this.#conns.get(a.conn)?.close(a.reason);
          break;
        case 'get-key':
          this.#fetch(a.hs, () => this.#o.keys.getKey(this.peerId));
          break;
        case 'get-key-by-id':
          this.#fetch(a.hs, () => this.#o.keys.getKeyById(this.peerId, a.keyId, { deadlineMs: a.deadlineMs }));
          break;
        case 'log':
          this.#logEvent(a);
          break;
        case 'epochs-changed':
          this.#trackHold();
          this.#wake();
          break;
        case 'peer-reset':
          for (const c of [...this.#carriers.keys()]) c.abort('peer lost its state', { silent: true });
          break;
        case 'abort-pinned':
          for (const [c, e] of [...this.#carriers]) if (e && e.n === a.epoch) c.abort('key_expired');
          break;
      }
    }
    this.#rearm();
  }

  #logEvent(a: Extract<SessionAction, { type: 'log' }>): void {
    // Every session event is also a counter, by its stable name (metrics read them).
    this.events.set(a.event, (this.events.get(a.event) ?? 0) + 1);
    if (a.event === 'epoch_switch') this.stats.epochSwitches++;
    if (a.event === 'handshake_failed') {
      this.stats.handshakeFailures++;
      bump(this.handshakeFailuresByReason, reasonClass(a.fields.reason));
    }
    if (a.event === 'handshake_started') bump(this.rekeysByReason, reasonClass(a.fields.reason));
    this.log[a.level]({ event: a.event, ...a.fields });
  }

  #fetch(hs: number, call: () => Promise<{ keyId: string; key: SecretBytes }>): void {
    call().then(
      (k) => {
        if (this.#closed) {
          k.key.wipe();
          return;
        }
        this.#feed({ type: 'key', hs, keyId: k.keyId, key: k.key });
      },
      (e: unknown) => {
        const code = isQkdgwError(e) ? e.code : 'QKDGW_E_INTERNAL';
        const message = e instanceof Error ? e.message : String(e);
        this.#feed({ type: 'key-failed', hs, code, message });
      },
    );
  }

  #rearm(): void {
    if (this.#closed) return;
    const at = this.session.nextDeadline();
    if (at === this.#timerAt) return;
    this.#cancelTimer?.();
    this.#cancelTimer = null;
    this.#timerAt = at;
    if (at === null) return;
    this.#cancelTimer = this.#o.clock.setTimer(Math.max(0, at - this.#o.clock.now()), () => {
      this.#timerAt = null;
      this.#cancelTimer = null;
      this.#feed({ type: 'tick' });
    });
  }

  /** A data-plane rekey trigger (records, bytes, flows). */
  trigger(reason: RekeyReason): void {
    this.#feed({ type: 'trigger', reason });
  }

  /** A KME status check for this pair (protocol.md s6 recovery checks): stored keys, or null if it failed. */
  kmeStatus(storedKeyCount: number | null): void {
    if (!this.#closed) this.#feed({ type: 'kme-status', storedKeyCount });
  }

  // ---------------------------------------------------------------- data plane

  now(): number {
    return this.#o.clock.now();
  }

  /** The epoch to seal under now, or null while the pair is on hold. */
  sendEpoch(): Epoch | null {
    return this.session.sendEpoch(this.#o.clock.now());
  }

  /** Calls `fn` once the slots change (an epoch installed or expired); returns a cancel function. */
  onEpochsChanged(fn: () => void): () => void {
    this.#waiters.add(fn);
    return () => this.#waiters.delete(fn);
  }

  #wake(): void {
    const ws = [...this.#waiters];
    this.#waiters.clear();
    for (const w of ws) w();
  }

  /**
   * Reload (issue 5): a new policy for this pair, in place (PeerSession.updatePolicy) and the
   * hold for client connections from now on, ms. The control connection, epochs and flows stay.
   */
  updatePolicy(p: Parameters<PeerSession['updatePolicy']>[0], holdMs: number): void {
    if (this.#closed) return;
    this.session.updatePolicy(p);
    this.#o.holdMs = holdMs;
    this.#rearm();
  }

  get holdMs(): number {
    return this.#o.holdMs;
  }

  /**
   * When the hold of this pair ends (protocol.md s4): `hold` after the pair entered the
   * state of having no epoch to seal under, or null while it has one. Past it, carriers
   * waiting for an epoch are aborted and new client connections are reset at once, until
   * an epoch is installed.
   */
  holdDeadline(): number | null {
    this.#trackHold();
    return this.#holdSince === null ? null : this.#holdSince + this.#o.holdMs;
  }

  #trackHold(): void {
    if (this.sendEpoch()) this.#holdSince = null;
    else if (this.#holdSince === null) this.#holdSince = this.#o.clock.now();
  }

  /**
   * Accounting after sealing `bytes` of plaintext under `e` (may trigger a rekey);
   * `dataBytes` of them were DATA payload (the traffic counters count only those).
   */
  noteSealed(e: Epoch, bytes: number, dataBytes = bytes): void {
    this.traffic.recordsSealed++;
    this.traffic.bytesSealed += dataBytes;
    const acts = this.session.noteSealed(e, bytes, this.#o.clock.now());
    if (acts.length) this.#exec(acts);
  }

  /**
   * An authenticated record arrived under `e` carrying `bytes` of DATA payload (0 for
   * OPEN/FIN/RST/KEEPALIVE): responder promotion, initiator grace, counters.
   */
  noteAuthenticated(e: Epoch, bytes = 0): void {
    this.traffic.recordsOpened++;
    this.traffic.bytesOpened += bytes;
    const acts = this.session.onAuthenticatedRecord(e, this.#o.clock.now());
    if (acts.length) this.#exec(acts);
  }

  /** OPEN's flow_id into the epoch's replay set (protocol.md s5.1). */
  admitFlow(e: Epoch, flowIdHex: string): 'ok' | 'replay' | 'exhausted' {
    const out: SessionAction[] = [];
    const r = this.session.admitFlow(e, flowIdHex, this.#o.clock.now(), out);
    if (out.length) this.#exec(out);
    if (r === 'replay') this.stats.replays++;
    return r;
  }

  /** Slot epoch for a new carrier's OPEN. */
  newCarrierEpoch(low32: number): Epoch | null {
    return this.session.newCarrierEpoch(low32, this.#o.clock.now());
  }

  /** Epoch an open carrier may receive under, given its pinned epoch. */
  carrierEpoch(low32: number, last: Epoch | null): Epoch | null {
    return this.session.carrierEpoch(low32, last, this.#o.clock.now());
  }

  /** Finds an epoch object by number among slots and retired (for pins). */
  epochByNumber(n: number): Epoch | null {
    const s = this.session.slots;
    for (const e of [s.current, s.next, s.previous]) if (e && e.n === n) return e;
    return s.retired.get(n) ?? null;
  }

  registerCarrier(c: CarrierHandle): void {
    this.#carriers.set(c, null);
    this.stats.carriersOpened++;
  }

  /** Re-pins `c` to the epoch it now reports (protocol.md s4). */
  updatePin(c: CarrierHandle): void {
    if (!this.#carriers.has(c)) return;
    const old = this.#carriers.get(c) ?? null;
    const n = c.pinEpoch;
    if (old && old.n === n) return;
    const e = n === null ? null : this.epochByNumber(n);
    if (e) this.session.slots.pin(e);
    if (old) this.session.slots.unpin(old);
    this.#carriers.set(c, e);
  }

  unregisterCarrier(c: CarrierHandle): void {
    const e = this.#carriers.get(c);
    if (e === undefined) return;
    this.#carriers.delete(c);
    if (e) this.session.slots.unpin(e);
  }

  get carrierCount(): number {
    return this.#carriers.size;
  }

  /** Aborts every carrier (reload removing the peer, shutdown). */
  abortAll(reason: string): void {
    for (const c of [...this.#carriers.keys()]) c.abort(reason);
  }

  /** Stops timers, closes control connections and zeroizes every epoch. */
  close(reason = 'shutdown'): void {
    if (this.#closed) return;
    this.abortAll('shutdown');
    this.#closed = true;
    this.#cancelTimer?.();
    for (const c of this.#conns.values()) c.close('shutdown');
    this.#conns.clear();
    // Named before the wipe, so the key audit trail records the end of every epoch's keys.
    const s = this.session.slots;
    const epochs = [...new Set([s.previous?.n, s.current?.n, s.next?.n, ...s.retired.keys()].filter((n): n is number => n !== undefined))];
    this.session.wipe();
    this.log.info({ event: 'epochs_zeroized', epochs, reason }, `epochs ${epochs.join(', ') || '(none)'} zeroized: ${reason}`);
    this.#wake();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
