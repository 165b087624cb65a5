/**
 * Epoch slots of one peer pair: previous / current / next (protocol.md s4), with
 * promotion only on authenticated evidence, grace for the previous epoch, hard limits,
 * and carrier pins that keep a retired epoch's flow receive secret alive
 * (wireguard-go device/keypair.go in spirit).
 */
import type { SecretBytes } from '../../util/secret.js';
import type { EpochSecrets } from '../../kdf/schedule.js';
import { wipeEpochSecrets } from '../../kdf/schedule.js';

export type Role = 'initiator' | 'responder';

/** One installed epoch. Secrets are wiped when the epoch is dropped and no carrier pins it. */
export class Epoch {
  readonly n: number;
  readonly low32: number;
  readonly suite: 1 | 2;
  readonly mode: number;
  readonly keyIds: readonly string[];
  /** Transcript hash of the handshake that made it (public; the responder checks CONFIRM with it). */
  readonly th: Buffer;
  /** Responder: CONFIRM verified (a record may promote before it comes). */
  confirmed = false;
  /** Monotonic ms when this side derived it; the rekey and hard-limit clocks start here. */
  readonly derivedAt: number;
  readonly hardLimitAt: number;
  readonly hardLimitRecords: number;
  /** When `previous`: the start of its grace (ms), or null while not yet started. */
  graceFrom: number | null = null;
  /** Records and bytes sealed by this side under this epoch (all carriers and L3). */
  sealedRecords = 0;
  sealedBytes = 0;
  /** Records this side opened (authenticated) under this epoch, all carriers and L3. */
  openedRecords = 0;
  /** Open carriers whose last received epoch is this one (protocol.md s4 pins). */
  pins = 0;
  /** The new-carrier replay set (protocol.md s5.1), lower-case hex flow_ids. */
  readonly flowIds = new Set<string>();
  #secrets: EpochSecrets | null;
  readonly #role: Role;

  constructor(args: { n: number; suite: 1 | 2; mode: number; keyIds: string[]; derivedAt: number; hardLimitMs: number; hardLimitRecords: number; secrets: EpochSecrets; role: Role; th: Buffer }) {
    this.n = args.n;
    this.low32 = args.n >>> 0;
    this.suite = args.suite;
    this.mode = args.mode;
    this.keyIds = Object.freeze([...args.keyIds]);
    this.th = args.th;
    this.derivedAt = args.derivedAt;
    this.hardLimitAt = args.derivedAt + args.hardLimitMs;
    this.hardLimitRecords = args.hardLimitRecords;
    this.#secrets = args.secrets;
    this.#role = args.role;
  }

  get wiped(): boolean {
    return this.#secrets === null;
  }

  /** Our outbound flow secret F_d (protocol.md s5.1). */
  get flowSend(): SecretBytes {
    const s = this.#live();
    return this.#role === 'initiator' ? s.flowI2R : s.flowR2I;
  }
  /** The peer's outbound flow secret (what we receive with). */
  get flowRecv(): SecretBytes {
    const s = this.#live();
    return this.#role === 'initiator' ? s.flowR2I : s.flowI2R;
  }
  get chain(): SecretBytes {
    return this.#live().chain;
  }
  get finishedI(): SecretBytes {
    return this.#live().finishedI;
  }

  /** True while this side may still seal under it (time and record hard limits). */
  canSeal(now: number): boolean {
    return !this.wiped && now < this.hardLimitAt && this.sealedRecords < this.hardLimitRecords;
  }

  /** True once the peer sealed `hardLimitRecords` records under it: nothing more is accepted (s6). */
  get recvExhausted(): boolean {
    return this.openedRecords >= this.hardLimitRecords;
  }

  /** Wipes the chain secret once the successor is confirmed (protocol.md s3.2). */
  wipeChain(): void {
    this.#secrets?.chain.wipe();
  }

  /** Zeroizes everything. */
  wipe(): void {
    if (this.#secrets) wipeEpochSecrets(this.#secrets);
    this.#secrets = null;
  }

  #live(): EpochSecrets {
    if (!this.#secrets) throw new Error(`epoch ${this.n} used after it was zeroized`);
    return this.#secrets;
  }

  toJSON(): Record<string, unknown> {
    return { epoch: this.n, suite: this.suite, mode: this.mode, key_IDs: this.keyIds };
  }
}

export interface SlotTimes {
  graceMs: number;
  carrierHoldMs: number;
}

/**
 * The three slots plus retired epochs still pinned by carriers.
 * No timers: every query takes `now`.
 */
export class EpochSlots {
  previous: Epoch | null = null;
  current: Epoch | null = null;
  next: Epoch | null = null;
  /** Epochs out of the slots whose flow receive secret carriers still pin. */
  readonly retired = new Map<number, Epoch>();
  #t: SlotTimes;

  constructor(times: SlotTimes) {
    this.#t = times;
  }

  /** Reload: new grace and carrier hold, ms, for every decision from now on. */
  setTimes(times: SlotTimes): void {
    this.#t = { ...times };
  }

  /**
   * Makes `e` current: the old current becomes previous (grace starts at `graceFrom`,
   * null = not yet), the old previous is evicted. Returns the evicted epoch, if any.
   */
  install(e: Epoch, graceFrom: number | null): Epoch | null {
    const evicted = this.previous;
    if (evicted) this.#retire(evicted);
    this.previous = this.current;
    if (this.previous) {
      this.previous.graceFrom = graceFrom;
    }
    this.current = e;
    if (this.next === e) this.next = null;
    return evicted;
  }

  /** Drops `next` (abandoned, refused, failed tag_I) and zeroizes it. */
  discardNext(): Epoch | null {
    const n = this.next;
    this.next = null;
    if (n) this.#retire(n);
    return n;
  }

  /** Whether `e` accepts new carriers at `now` (protocol.md s4). */
  acceptsNewCarriers(e: Epoch, now: number): boolean {
    if (e.wiped) return false;
    if (e === this.current) return now < e.hardLimitAt + this.#t.graceMs;
    if (e === this.next) return now < e.hardLimitAt;
    if (e === this.previous) {
      if (now >= e.hardLimitAt + this.#t.graceMs) return false;
      return e.graceFrom === null || now < e.graceFrom + this.#t.graceMs;
    }
    return false;
  }

  /** The slot epoch whose low 32 bits are `low32` (at most one can match), or null. */
  byLow32(low32: number): Epoch | null {
    for (const e of [this.current, this.next, this.previous]) if (e && e.low32 === low32) return e;
    return null;
  }

  /** Any known epoch (slots or retired-and-pinned) with that low32. */
  anyByLow32(low32: number): Epoch | null {
    const s = this.byLow32(low32);
    if (s) return s;
    for (const e of this.retired.values()) if (e.low32 === low32) return e;
    return null;
  }

  pin(e: Epoch): void {
    e.pins++;
  }

  unpin(e: Epoch): void {
    e.pins = Math.max(0, e.pins - 1);
    if (e.pins === 0 && this.retired.get(e.n) === e) {
      this.retired.delete(e.n);
      e.wipe();
    }
  }

  /** Retired epochs whose pin cap (hard limit + carrier_hold) passed at `now`: their carriers must be aborted. */
  expiredPins(now: number): Epoch[] {
    const out: Epoch[] = [];
    for (const e of this.retired.values()) if (now >= e.hardLimitAt + this.#t.carrierHoldMs) out.push(e);
    return out;
  }

  /** Drops a retired epoch whose carriers were aborted. */
  dropRetired(e: Epoch): void {
    this.retired.delete(e.n);
    e.wipe();
  }

  /** Zeroizes every slot and retired epoch (peer lost its state, shutdown). */
  wipeAll(): void {
    for (const e of [this.previous, this.current, this.next, ...this.retired.values()]) e?.wipe();
    this.previous = this.current = this.next = null;
    this.retired.clear();
  }

  #retire(e: Epoch): void {
    if (e.pins > 0) this.retired.set(e.n, e);
    else e.wipe();
  }
}
