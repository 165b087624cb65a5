/**
 * The simulator's control API (etsi014.md S37): change the link, inject faults and switch
 * quirk modes of a running KME pair, in-process (`sim.control`) or over the admin HTTP
 * endpoint (admin-server.ts), which maps its JSON bodies 1:1 onto these methods.
 */
import type { Logger } from '../../util/logger.js';
import { checkFaults, type KmeFaultOptions, type KmeFaults } from './faults.js';
import { expectObject, inputError, optBool, optInt, rejectUnknown } from './input.js';
import type { KeyPool, LinkSettings } from './link.js';
import type { ResolvedKmeSimConfig } from './options.js';
import { checkQuirks, type KmeQuirkOptions, type KmeQuirks } from './quirks.js';
import type { Endpoint } from './router.js';
import type { PendingKeyStore } from './store.js';

/** Argument of `setLink`: any subset; absent members keep their value. */
export interface KmeLinkInput {
  /** Secret key rate, bit/s, 0..10^12. Applies from now on. */
  keyRateBps?: number;
  /** Pool capacity = Status `max_key_count`, keys of `key_size`, 0..10^9. Shrinking drops the excess. */
  maxKeyCount?: number;
  /** true: no accrual from now on; false: accrual resumes from now (paused time is not made up). */
  paused?: boolean;
}

/** Which fault acted, as counted in {@link KmeSimState.injected}. */
export type InjectedFault = 'latency' | 'stall' | 'status503' | 'mismatch';

/**
 * A JSON-able snapshot of the simulator, as `control.state()` and `GET /admin/state` give it.
 * Directions are written `"<KME ID>-><KME ID>"`: from the master's KME to the slave's.
 */
export interface KmeSimState {
  link: LinkSettings & {
    /** Status `key_size`, bits (fixed at start). */
    keySizeBits: number;
  };
  /**
   * Status `stored_key_count` per direction: whole keys of `key_size` a master at the first
   * KME can get for a slave at the second. Both directions draw on the one link pool, so
   * the two numbers are equal.
   */
  stored: Record<string, number>;
  /** Keys handed out by the first KME's `enc_keys` that the slave has not fetched from the second. */
  pending: Record<string, number>;
  /** Faults by KME ID, as they stand now (counters count down as they act). */
  faults: Record<string, KmeFaults>;
  quirks: KmeQuirks;
  /**
   * Requests since start or the last reset, by KME ID, endpoint (`status`, `enc_keys`,
   * `dec_keys`, `other` = any other path) and HTTP status (`"200"`, `"503"`, ...; `"stalled"`
   * for answers left hanging by `stallMidBody`). Includes 401s.
   */
  requests: Record<string, Partial<Record<Endpoint, Record<string, number>>>>;
  /** How often each fault acted since start or the last reset, by KME ID (mismatch: per key). */
  injected: Record<string, Record<InjectedFault, number>>;
}

/**
 * Run-time control of a started simulator pair; `sim.control`.
 *
 * Every method validates its argument strictly (unknown members and wrong types throw
 * QkdgwError `QKDGW_E_KMS_CONFIG` naming the member, and change nothing), applies it at
 * once (the next request sees it), logs one `{"event":"kme_sim_admin","action":...}`
 * line, and returns the new {@link state}. The admin endpoint takes the same members as
 * JSON (admin-server.ts).
 *
 * ```ts
 * sim.control.setLink({ paused: true });                  // no accrual
 * sim.control.drain();                                    // stored_key_count -> 0
 * sim.control.addKeys(5);                                 // 5 keys of key_size now
 * sim.control.setFaults({ kme: 'KME_B', latencyMs: 200 }); // only KME_B is slow
 * sim.control.setFaults({ status503: 2 });                // next 2 requests on EACH KME: 503
 * sim.control.setFaults({ kme: 'KME_B', mismatchNext: 1 }); // KME_B's copy of the next key differs
 * sim.control.setQuirks({ exhaustion: 'partial-200', unknownId404: true });
 * sim.control.reset();                                    // back to the startup settings
 * ```
 */
export interface KmeSimControl {
  /** Changes the link; see {@link KmeLinkInput}. */
  setLink(input: KmeLinkInput): KmeSimState;
  /**
   * Empties the link pool (`stored_key_count` 0; accrual goes on unless paused). With
   * `pending: true` also wipes every key handed to a master and not yet fetched by its slave
   * (its `dec_keys` then fails as for an unknown key_ID).
   */
  drain(opts?: { pending?: boolean }): KmeSimState;
  /** Adds `count` keys of `key_size` to the pool at once, up to `max_key_count` (0..10^9). */
  addKeys(count: number): KmeSimState;
  /** Sets faults on one KME (`kme`) or both (absent); see faults.ts {@link KmeFaults}. */
  setFaults(input: KmeFaultOptions): KmeSimState;
  /** Switches quirk modes (both KMEs); see quirks.ts {@link KmeQuirks}. */
  setQuirks(input: KmeQuirkOptions): KmeSimState;
  /**
   * Returns link settings, faults and quirks to the startup configuration and zeroes the
   * counters of {@link state}. Keys are kept, unless `keys: true`: then pending keys are
   * wiped and the pool holds `initialKeyCount` keys again.
   */
  reset(opts?: { keys?: boolean }): KmeSimState;
  /** A snapshot; changes nothing. */
  state(): KmeSimState;
}

const emptyInjected = (): Record<InjectedFault, number> => ({ latency: 0, stall: 0, status503: 0, mismatch: 0 });
const MAX_ADD_KEYS = 1_000_000_000;

/** The control API's implementation, plus the hooks the servers call per request. */
export class SimControl implements KmeSimControl {
  readonly #config: ResolvedKmeSimConfig;
  readonly #pool: KeyPool;
  readonly #store: PendingKeyStore;
  readonly #logger: Logger;
  readonly #kmeIds: string[];
  readonly #kmeOfSae = new Map<string, string>();
  /** Live objects: handlers and the fault gate hold references, so they are changed in place. */
  readonly quirks: KmeQuirks;
  readonly #faults = new Map<string, KmeFaults>();
  #requests: KmeSimState['requests'] = {};
  #injected: KmeSimState['injected'] = {};

  constructor(config: ResolvedKmeSimConfig, pool: KeyPool, store: PendingKeyStore, logger: Logger) {
    this.#config = config;
    this.#pool = pool;
    this.#store = store;
    this.#logger = logger;
    this.#kmeIds = config.kmes.map((k) => k.kmeId);
    for (const k of config.kmes) for (const s of k.saes) this.#kmeOfSae.set(s, k.kmeId);
    this.quirks = { ...config.quirks };
    for (const id of this.#kmeIds) this.#faults.set(id, { ...config.faults[id] });
    this.#zeroCounters();
  }

  #zeroCounters(): void {
    this.#requests = {};
    this.#injected = {};
    for (const id of this.#kmeIds) {
      this.#requests[id] = {};
      this.#injected[id] = emptyInjected();
    }
  }

  #log(action: string, fields: Record<string, unknown>): void {
    this.#logger.info({ event: 'kme_sim_admin', action, ...fields });
  }

  /** The live fault settings of KME `kmeId` (the fault gate reads and counts them down). */
  faultsOf(kmeId: string): KmeFaults {
    const f = this.#faults.get(kmeId);
    if (!f) throw new Error(`no KME ${kmeId}`);
    return f;
  }

  /** Counts one answered (or stalled) request. */
  countRequest(kmeId: string, endpoint: Endpoint, status: number | 'stalled'): void {
    const byEndpoint = (this.#requests[kmeId] ??= {});
    const byStatus = (byEndpoint[endpoint] ??= {});
    byStatus[status] = (byStatus[status] ?? 0) + 1;
  }

  /** Counts one fault that acted on KME `kmeId`. */
  countInjected(kmeId: string, fault: InjectedFault): void {
    (this.#injected[kmeId] ??= emptyInjected())[fault]++;
  }

  /** True, counting one down, when KME `kmeId` (the slave's) must deliver the next key with other bytes. */
  takeMismatch(kmeId: string): boolean {
    const f = this.faultsOf(kmeId);
    if (f.mismatchNext <= 0) return false;
    f.mismatchNext--;
    this.countInjected(kmeId, 'mismatch');
    return true;
  }

  setLink(input: KmeLinkInput): KmeSimState {
    const o = expectObject(input, 'link');
    rejectUnknown(o, 'link', ['keyRateBps', 'maxKeyCount', 'paused']);
    const s: Partial<LinkSettings> = {};
    const rate = optInt(o.keyRateBps, 'link.keyRateBps', 0, 1e12);
    if (rate !== undefined) s.keyRateBps = rate;
    const max = optInt(o.maxKeyCount, 'link.maxKeyCount', 0, 1e9);
    if (max !== undefined) s.maxKeyCount = max;
    const paused = optBool(o.paused, 'link.paused');
    if (paused !== undefined) s.paused = paused;
    this.#pool.configure(s);
    this.#log('set_link', { set: s, link: this.#pool.settings() });
    return this.state();
  }

  drain(opts?: { pending?: boolean }): KmeSimState {
    const o = expectObject(opts, 'drain');
    rejectUnknown(o, 'drain', ['pending']);
    const pending = optBool(o.pending, 'drain.pending') ?? false;
    const drained = this.#pool.drain();
    const dropped = pending ? this.#store.clear() : 0;
    this.#log('drain', { drained_keys: drained, dropped_pending: dropped });
    return this.state();
  }

  addKeys(count: number): KmeSimState {
    const n = optInt(count, 'addKeys.count', 0, MAX_ADD_KEYS);
    if (n === undefined) inputError('addKeys.count', 'is required');
    const added = this.#pool.addKeys(n);
    this.#log('add_keys', { requested: n, added, stored_key_count: this.#pool.storedKeyCount() });
    return this.state();
  }

  setFaults(input: KmeFaultOptions): KmeSimState {
    const { kmes, set } = checkFaults(input, this.#kmeIds);
    for (const id of kmes) Object.assign(this.faultsOf(id), set);
    this.#log('set_faults', { kmes, set });
    return this.state();
  }

  setQuirks(input: KmeQuirkOptions): KmeSimState {
    const set = checkQuirks(input);
    Object.assign(this.quirks, set);
    this.#log('set_quirks', { set, quirks: { ...this.quirks } });
    return this.state();
  }

  reset(opts?: { keys?: boolean }): KmeSimState {
    const o = expectObject(opts, 'reset');
    rejectUnknown(o, 'reset', ['keys']);
    const keys = optBool(o.keys, 'reset.keys') ?? false;
    const l = this.#config.link;
    this.#pool.configure({ keyRateBps: l.keyRateBps, maxKeyCount: l.maxKeyCount, paused: this.#config.paused });
    Object.assign(this.quirks, this.#config.quirks);
    for (const id of this.#kmeIds) Object.assign(this.faultsOf(id), this.#config.faults[id]);
    this.#zeroCounters();
    if (keys) {
      this.#store.clear();
      this.#pool.refill(l.initialKeyCount);
    }
    this.#log('reset', { keys });
    return this.state();
  }

  state(): KmeSimState {
    const [a, b] = this.#kmeIds;
    const dirs = [`${a}->${b}`, `${b}->${a}`];
    const stored = this.#pool.storedKeyCount();
    const counted = this.#store.countBy((k) => `${this.#kmeOfSae.get(k.master)}->${this.#kmeOfSae.get(k.slave)}`);
    const faults: KmeSimState['faults'] = {};
    for (const [id, f] of this.#faults) faults[id] = { ...f };
    // structuredClone: the caller may keep or change the snapshot freely.
    return structuredClone({
      link: { ...this.#pool.settings(), keySizeBits: this.#config.link.keySizeBits },
      stored: Object.fromEntries(dirs.map((d) => [d, stored])),
      pending: Object.fromEntries(dirs.map((d) => [d, counted[d] ?? 0])),
      faults,
      quirks: { ...this.quirks },
      requests: this.#requests,
      injected: this.#injected,
    });
  }
}
