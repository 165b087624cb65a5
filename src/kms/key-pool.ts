/**
 * KeyPool: QKD keys fetched ahead for ONE peer on the initiator (ETSI 014 master) side,
 * wrapping a KeySource (key-source.ts), plus the KME watch that protocol.md s6 needs.
 *
 * - Prefetch (from start(), or from the first take() with prefetchAfterFirstTake): keeps `target` keys (default 4; 0 = no prefetch, every take fetches on
 *   demand) from enc_keys. take() hands out the oldest pooled key at once, else fetches.
 *   The pool refills in the background after a take, on every status tick and after a
 *   failure's backoff. At most ONE enc_keys is in flight per pool at any time (a take
 *   that finds the pool empty joins the refill in flight). A batch is clamped to
 *   `maxBatch`, the KME's max_key_per_request and what its last status said it stored
 *   (less what we fetched since), never below 1 (status is advisory, etsi014.md A17).
 * - Each key is handed out once (it leaves the pool when taken). Pooled keys are
 *   SecretBytes; they are zeroized on close(), when older than `maxKeyAgeMs` (a KME may
 *   expire keys it delivered; checked on every take and status tick) and when a reply
 *   arrives after close(). Keys fetched ahead and never used are lost key material, not a
 *   security problem: their key_IDs were never announced.
 * - KME watch: `status` every `statusIntervalMs` (default 10 s, protocol.md s6), feeding
 *   `consecutiveGoodChecks` (the `preferred` policy's "last 3 consecutive status checks
 *   showed stored_key_count >= 1"), the supply estimate and the forecasts (forecast.ts).
 * - Events (onEvent) and log lines share stable names (KeyPoolEventName). Lines carry
 *   key counts and key_IDs only, never key bytes; a failing status check is one line per
 *   check with a running count (BC-26).
 *
 * Time comes from the injected Clock; the pool owns no sockets and does not close its
 * source (one KeySource serves all peers' pools).
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import { classifyKmsError } from './etsi014/error-map.js';
import type { KmeStatus, QkdKey } from './etsi014/types.js';
import { EventRate, SupplyEstimator, kmeDrySec, poolDrySec } from './forecast.js';
import { LowWatermark } from './threshold.js';

/** What the pool needs from a KeySource (Etsi014KeySource implements it). */
export interface KeyPoolSource {
  /** 1..count fresh keys for slave `peerSaeId` in one enc_keys (see KeySource.getKeys) */
  getKeys(peerSaeId: string, count: number, opts?: { deadlineMs?: number }): Promise<QkdKey[]>;
  status(peerSaeId: string, opts?: { deadlineMs?: number }): Promise<KmeStatus>;
}

/** Stable event names; log lines carry the same name in their `event` field. */
export type KeyPoolEventName =
  /** the pool has no key left (target > 0); once per empty spell */
  | 'key_pool_empty'
  /** the pool is back at `target` after an empty spell */
  | 'key_pool_refilled'
  /** a background or on-demand enc_keys failed (the KeySource logged the failure line) */
  | 'key_pool_refill_failed'
  /** pooled keys older than maxKeyAgeMs were zeroized (`discarded`) */
  | 'key_pool_expired'
  /** forecastKmeDrySec fell below forecastLowSec (only on the crossing) */
  | 'key_forecast_low'
  /** forecastKmeDrySec is back at or above forecastLowSec x forecastOkFactor, or null (only on the crossing) */
  | 'key_forecast_ok'
  /** every status check, ok or not (`kmeStoredKeyCount` null when it failed); feeds the session's kme-status input */
  | 'kme_status_checked'
  /** a status check failed (`code`, `consecutiveFailures`, `totalFailures`) */
  | 'kme_status_failed'
  /** the first good status check after failures (`consecutiveFailures` = the streak that ended) */
  | 'kme_status_recovered';

export interface KeyPoolEvent {
  event: KeyPoolEventName;
  peerSaeId: string;
  /** clock ms */
  at: number;
  /** keys in the pool now */
  stock: number;
  target: number;
  /** last stored_key_count read (null: none yet, or this status check failed) */
  kmeStoredKeyCount: number | null;
  consecutiveGoodChecks: number;
  forecastKmeDrySec?: number | null;
  thresholdSec?: number;
  consumptionPerSec?: number;
  supplyPerSec?: number | null;
  code?: string;
  consecutiveFailures?: number;
  totalFailures?: number;
  /** keys zeroized (key_pool_expired) */
  discarded?: number;
  /** their key_IDs (key_pool_expired), for the audit trail */
  keyIds?: string[];
  /** when the next background refill may run, ms from now (key_pool_refill_failed) */
  retryInMs?: number;
}

export interface KeyPoolLastError {
  op: 'status' | 'enc_keys';
  code: string;
  message: string;
  /** clock ms */
  at: number;
}

/** stats(): a snapshot. Rates are keys per second; times clock ms. */
export interface KeyPoolStats {
  peerSaeId: string;
  /** keys in the pool now */
  stock: number;
  target: number;
  /** stored_key_count of the last successful status check, null before the first */
  kmeStoredKeyCount: number | null;
  /** keys taken per second over the last rateWindowMs (forecast.ts: EventRate) */
  consumptionPerSec: number;
  /** KME key generation rate estimate (forecast.ts: SupplyEstimator); null = not known yet */
  supplyPerSec: number | null;
  /** seconds until the pool is empty at consumptionPerSec with no refill; null when consumption is 0 */
  forecastPoolDrySec: number | null;
  /** seconds until the KME store runs dry: stored / (consumption - supply); null = never (or no status yet) */
  forecastKmeDrySec: number | null;
  /** consecutive status checks with stored_key_count >= 1; 0 after a failed or empty check */
  consecutiveGoodChecks: number;
  /** clock ms of the last successful status check, null before the first */
  lastStatusAt: number | null;
  lastError: KeyPoolLastError | null;
  /** true between key_forecast_low and key_forecast_ok */
  forecastLow: boolean;
  refillInFlight: boolean;
  /** keys handed out by take() since start */
  taken: number;
  /** keys delivered by enc_keys since start */
  fetched: number;
  /** pooled keys zeroized unused (expired) since start; close() not counted */
  discarded: number;
  consecutiveStatusFailures: number;
  consecutiveRefillFailures: number;
}

export interface KeyPoolOptions {
  /** where keys come from (normally the daemon's Etsi014KeySource); not closed by the pool */
  source: KeyPoolSource;
  /** the peer's SAE ID: the slave SAE of our enc_keys */
  peerSaeId: string;
  /** default systemClock */
  clock?: Clock;
  logger?: Logger;
  /** receives every event; exceptions it throws are logged and ignored */
  onEvent?: (e: KeyPoolEvent) => void;
  /** keys to hold ahead, integer >= 0; 0 = no prefetch (fetch on demand). Default 4 */
  target?: number;
  /** fetch ahead only once take() was called (the daemon: only for a pair that handshakes). Default false */
  prefetchAfterFirstTake?: boolean;
  /** most keys per enc_keys, integer >= 1 (further clamped by status). Default 16 */
  maxBatch?: number;
  /** ms between KME status checks. Default 10000 (protocol.md s6) */
  statusIntervalMs?: number;
  /** deadline of one status check, ms. Default min(5000, statusIntervalMs) */
  statusDeadlineMs?: number;
  /** pooled keys older than this are zeroized, ms. Default 3600000 (1 h) */
  maxKeyAgeMs?: number;
  /** sliding window of the consumption and supply estimates, ms. Default 300000 (5 min) */
  rateWindowMs?: number;
  /** smallest span the consumption rate is divided by, ms (forecast.ts). Default 60000 */
  rateMinSpanMs?: number;
  /** the pair's rekey interval, ms; only sets the default forecastLowSec. Default 120000 (protocol.md s6) */
  rekeyIntervalMs?: number;
  /** key_forecast_low when forecastKmeDrySec < this, seconds. Default 2 x rekeyIntervalMs / 1000 (240) */
  forecastLowSec?: number;
  /** key_forecast_ok when forecastKmeDrySec >= forecastLowSec x this (or never dry). Default 1.25 */
  forecastOkFactor?: number;
  /** first wait before a background refill after a failed one, ms; doubles, jittered. Default 1000 */
  refillBackoffMs?: number;
  /** cap of that wait, ms. Default 30000 */
  refillBackoffMaxMs?: number;
  /** deadline of a background refill, ms. Default: the source's (KeySource getKeyDeadlineMs, 8000) */
  refillDeadlineMs?: number;
  /** [0,1) jitter source. Default Math.random */
  random?: () => number;
}

interface Pooled {
  k: QkdKey;
  /** clock ms when enc_keys delivered it */
  at: number;
}

const LEVEL: Record<KeyPoolEventName, 'debug' | 'info' | 'warn'> = {
  key_pool_empty: 'warn',
  key_pool_refilled: 'info',
  key_pool_refill_failed: 'debug', // the KeySource already logged its one kme_call_failed line
  key_pool_expired: 'info',
  key_forecast_low: 'warn',
  key_forecast_ok: 'info',
  kme_status_checked: 'debug',
  kme_status_failed: 'warn',
  kme_status_recovered: 'info',
};

function posInt(v: number, name: string, min: number): number {
  if (!Number.isSafeInteger(v) || v < min) throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeyPool ${name} must be an integer >= ${min}, got ${v}`);
  return v;
}
function posNum(v: number, name: string): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeyPool ${name} must be a positive finite number, got ${v}`);
  return v;
}

export class KeyPool {
  readonly peerSaeId: string;
  /** Keys held ahead (kme.pool); changed by reconfigure(). */
  target: number;
  readonly #src: KeyPoolSource;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onEvent: ((e: KeyPoolEvent) => void) | undefined;
  readonly #o: {
    maxBatch: number;
    statusIntervalMs: number;
    statusDeadlineMs: number;
    maxKeyAgeMs: number;
    forecastLowSec: number;
    refillDeadlineMs: number | undefined;
    random: () => number;
  };
  readonly #refillPolicy: BackoffPolicy;
  readonly #consumption: EventRate;
  readonly #supply: SupplyEstimator;
  #alarm: LowWatermark;
  #okFactor: number;
  readonly #keys: Pooled[] = [];
  #inflight: Promise<void> | null = null;
  #refillFailures = 0;
  #refillNotBefore = 0;
  #cancelRefillTimer: (() => void) | null = null;
  #cancelStatusTimer: (() => void) | null = null;
  #statusInFlight = false;
  /** the status check in flight (never rejects), for whenIdle() */
  #statusP: Promise<void> | null = null;
  #lastStatus: KmeStatus | null = null;
  #lastStatusAt: number | null = null;
  #fetchedSinceStatus = 0;
  /** after an exhausted batch: ask for single keys until the next good status check */
  #singleKeys = false;
  #goodChecks = 0;
  #statusFailures = 0;
  #statusFailuresTotal = 0;
  #lastError: KeyPoolLastError | null = null;
  #empty = false;
  #taken = 0;
  #fetched = 0;
  #discarded = 0;
  #started = false;
  #closed = false;
  /** rejecters of take() calls waiting on a fetch, failed by close() */
  readonly #waiters = new Set<(e: Error) => void>();

  /** Validates the options (KMS_CONFIG on a bad number). No I/O until start() or take(). */
  constructor(o: KeyPoolOptions) {
    if (typeof o.peerSaeId !== 'string' || o.peerSaeId.length === 0) throw new QkdgwError(ErrorCodes.KMS_CONFIG, 'KeyPool peerSaeId is required');
    this.peerSaeId = o.peerSaeId;
    this.#src = o.source;
    this.#clock = o.clock ?? systemClock;
    this.#log = (o.logger ?? silentLogger).child({ component: 'keypool', peerSaeId: o.peerSaeId });
    this.#onEvent = o.onEvent;
    this.target = posInt(o.target ?? 4, 'target', 0);
    this.#armed = !o.prefetchAfterFirstTake;
    const statusIntervalMs = posNum(o.statusIntervalMs ?? 10_000, 'statusIntervalMs');
    const rekeyIntervalMs = posNum(o.rekeyIntervalMs ?? 120_000, 'rekeyIntervalMs');
    const windowMs = posNum(o.rateWindowMs ?? 300_000, 'rateWindowMs');
    const forecastLowSec = posNum(o.forecastLowSec ?? (2 * rekeyIntervalMs) / 1000, 'forecastLowSec');
    const okFactor = o.forecastOkFactor ?? 1.25;
    if (!(okFactor >= 1) || !Number.isFinite(okFactor)) throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeyPool forecastOkFactor must be >= 1, got ${okFactor}`);
    this.#o = {
      maxBatch: posInt(o.maxBatch ?? 16, 'maxBatch', 1),
      statusIntervalMs,
      statusDeadlineMs: posNum(o.statusDeadlineMs ?? Math.min(5000, statusIntervalMs), 'statusDeadlineMs'),
      maxKeyAgeMs: posNum(o.maxKeyAgeMs ?? 3_600_000, 'maxKeyAgeMs'),
      forecastLowSec,
      refillDeadlineMs: o.refillDeadlineMs === undefined ? undefined : posNum(o.refillDeadlineMs, 'refillDeadlineMs'),
      random: o.random ?? Math.random,
    };
    this.#refillPolicy = {
      baseMs: posNum(o.refillBackoffMs ?? 1000, 'refillBackoffMs'),
      maxMs: posNum(o.refillBackoffMaxMs ?? 30_000, 'refillBackoffMaxMs'),
    };
    const now = this.#clock.now();
    this.#consumption = new EventRate({ windowMs, minSpanMs: Math.min(posNum(o.rateMinSpanMs ?? 60_000, 'rateMinSpanMs'), windowMs), since: now });
    this.#supply = new SupplyEstimator({ windowMs });
    this.#okFactor = okFactor;
    this.#alarm = new LowWatermark({ lowBelow: forecastLowSec, okAtOrAbove: forecastLowSec * okFactor });
  }

  /**
   * Reload (issue 5): new pool size, status interval and deadline (ms), forecast threshold
   * (seconds), applied in place so that the keys held ahead and the take() calls waiting
   * stay. A larger target refills at once; a smaller one keeps the keys already held (they
   * are used first). A new status interval re-arms the next check. Throws KMS_CONFIG on a bad
   * number (nothing changed then).
   */
  reconfigure(o: { target?: number; statusIntervalMs?: number; statusDeadlineMs?: number; forecastLowSec?: number }): void {
    const target = o.target === undefined ? this.target : posInt(o.target, 'target', 0);
    const statusIntervalMs = o.statusIntervalMs === undefined ? this.#o.statusIntervalMs : posNum(o.statusIntervalMs, 'statusIntervalMs');
    const statusDeadlineMs = o.statusDeadlineMs === undefined ? this.#o.statusDeadlineMs : posNum(o.statusDeadlineMs, 'statusDeadlineMs');
    const forecastLowSec = o.forecastLowSec === undefined ? this.#o.forecastLowSec : posNum(o.forecastLowSec, 'forecastLowSec');
    if (this.#closed) return;
    this.target = target;
    const rearm = statusIntervalMs !== this.#o.statusIntervalMs;
    this.#o.statusIntervalMs = statusIntervalMs;
    this.#o.statusDeadlineMs = statusDeadlineMs;
    if (forecastLowSec !== this.#o.forecastLowSec) {
      this.#o.forecastLowSec = forecastLowSec;
      // A new threshold starts unalarmed; the next status check re-evaluates it.
      this.#alarm = new LowWatermark({ lowBelow: forecastLowSec, okAtOrAbove: forecastLowSec * this.#okFactor });
    }
    if (rearm && this.#started && this.#cancelStatusTimer) this.#armStatusTimer();
    this.#maybeRefill();
  }

  /** Starts the status checks (the first one now) and the prefetch. Idempotent. */
  /**
   * False until the first take() when `prefetchAfterFirstTake`: keys are then fetched ahead
   * only for a pair that has started a handshake, so a gateway whose peer never answers, or
   * agrees on no suite, consumes no QKD key material (scarce on a ~1 kbit/s link; keys held
   * ahead are lost on a restart anyway).
   */
  #armed = true;

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#runStatus();
  }

  /** Keys in the pool now. */
  get stock(): number {
    return this.#keys.length;
  }

  /**
   * One QKD key for the peer, handed out exactly once: the oldest pooled key at once, or
   * (pool empty) the result of the enc_keys in flight or of a new on-demand one, within
   * `deadlineMs` (default: the fetch's own deadline, KeySource getKeyDeadlineMs).
   * The caller owns the key and wipes it after use.
   *
   * Throws the KeySource's errors (KMS_UNAVAILABLE, KMS_EXHAUSTED incl. suppressed, ...),
   * KMS_TIMEOUT when `deadlineMs` passes while waiting for a refill in flight, and
   * INTERNAL after close().
   */
  async take(opts: { deadlineMs?: number } = {}): Promise<QkdKey> {
    this.#armed = true;
    const end = opts.deadlineMs === undefined ? undefined : this.#clock.now() + opts.deadlineMs;
    for (;;) {
      if (this.#closed) throw closedError();
      this.#purgeExpired();
      const e = this.#keys.shift();
      if (e) {
        this.#onTaken();
        return e.k;
      }
      if (this.target > 0) this.#markEmpty();
      const left = end === undefined ? undefined : end - this.#clock.now();
      if (left !== undefined && left <= 0) {
        throw new QkdgwError(ErrorCodes.KMS_TIMEOUT, `no QKD key for ${this.peerSaeId} within ${opts.deadlineMs} ms`, { peerSaeId: this.peerSaeId, retryable: true });
      }
      const p = this.#inflight ?? this.#fetch(this.#batch(this.target - this.#keys.length + 1), left);
      await this.#wait(p, left, opts.deadlineMs);
    }
  }

  /**
   * Resolves once neither a status check nor an enc_keys of this pool is in flight,
   * including the refills they start right away (so after start(), the pool is at
   * target unless a call failed). At once when idle; never rejects. For tests and
   * orderly shutdown.
   */
  async whenIdle(): Promise<void> {
    while (this.#inflight || this.#statusP) {
      await Promise.all([this.#inflight?.catch(() => undefined), this.#statusP]);
    }
  }

  /** A snapshot of counts, estimates and forecasts (see KeyPoolStats). */
  stats(): KeyPoolStats {
    const now = this.#clock.now();
    const f = this.#forecast(now);
    return {
      peerSaeId: this.peerSaeId,
      stock: this.#keys.length,
      target: this.target,
      kmeStoredKeyCount: this.#lastStatus?.stored_key_count ?? null,
      consumptionPerSec: f.consumption,
      supplyPerSec: f.supply,
      forecastPoolDrySec: poolDrySec(this.#keys.length, f.consumption),
      forecastKmeDrySec: f.kmeDry,
      consecutiveGoodChecks: this.#goodChecks,
      lastStatusAt: this.#lastStatusAt,
      lastError: this.#lastError ? { ...this.#lastError } : null,
      forecastLow: this.#alarm.isLow,
      refillInFlight: this.#inflight !== null,
      taken: this.#taken,
      fetched: this.#fetched,
      discarded: this.#discarded,
      consecutiveStatusFailures: this.#statusFailures,
      consecutiveRefillFailures: this.#refillFailures,
    };
  }

  /**
   * Stops the timers, zeroizes every pooled key, makes waiting and later take() calls
   * fail with INTERNAL, and zeroizes keys of a refill that completes afterwards.
   * Does not close the source. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelStatusTimer?.();
    this.#cancelRefillTimer?.();
    this.#cancelStatusTimer = this.#cancelRefillTimer = null;
    const ids: string[] = [];
    for (const e of this.#keys.splice(0)) {
      e.k.key.wipe();
      ids.push(e.k.keyId);
    }
    const n = ids.length;
    for (const reject of [...this.#waiters]) reject(closedError());
    this.#log.info({ event: 'key_pool_closed', zeroized: n, keyIds: ids }, `key pool for ${this.peerSaeId} closed; ${n} unused key(s) zeroized`);
  }

  // ---- internals ----

  #forecast(now: number): { consumption: number; supply: number | null; kmeDry: number | null } {
    const consumption = this.#consumption.perSec(now);
    const supply = this.#supply.perSec();
    return { consumption, supply, kmeDry: kmeDrySec(this.#lastStatus?.stored_key_count ?? null, consumption, supply) };
  }

  /** How many keys the next enc_keys asks for when we want `want`. */
  #batch(want: number): number {
    let n = Math.min(Math.max(1, want), this.#o.maxBatch);
    const s = this.#lastStatus;
    if (s) {
      n = Math.min(n, Math.max(1, s.max_key_per_request));
      n = Math.min(n, Math.max(1, s.stored_key_count - this.#fetchedSinceStatus));
    }
    return this.#singleKeys ? 1 : n;
  }

  /** Waits for `p` (the fetch in flight), the deadline or close(), whichever comes first. */
  async #wait(p: Promise<void>, left: number | undefined, deadlineMs: number | undefined): Promise<void> {
    let cancel: (() => void) | undefined;
    let rejecter: ((e: Error) => void) | undefined;
    const stop = new Promise<void>((_r, reject) => {
      rejecter = reject;
      this.#waiters.add(reject);
      if (left !== undefined) {
        cancel = this.#clock.setTimer(left, () =>
          reject(new QkdgwError(ErrorCodes.KMS_TIMEOUT, `no QKD key for ${this.peerSaeId} within ${deadlineMs} ms`, { peerSaeId: this.peerSaeId, retryable: true })),
        );
      }
    });
    try {
      await Promise.race([p, stop]);
    } finally {
      cancel?.();
      if (rejecter) this.#waiters.delete(rejecter);
    }
  }

  /** Starts THE enc_keys of this pool (callers make sure none is in flight). */
  #fetch(n: number, deadlineMs: number | undefined): Promise<void> {
    const p = (async () => {
      try {
        const keys = await this.#src.getKeys(this.peerSaeId, n, deadlineMs === undefined ? {} : { deadlineMs });
        // An empty success would make the refill loop spin; the KeySource never returns one.
        if (keys.length === 0) throw new QkdgwError(ErrorCodes.KMS_PROTOCOL, 'key source returned no key', { peerSaeId: this.peerSaeId });
        const now = this.#clock.now();
        if (this.#closed) {
          for (const k of keys) k.key.wipe();
          return;
        }
        for (const k of keys) this.#keys.push({ k, at: now });
        this.#fetched += keys.length;
        this.#fetchedSinceStatus += keys.length;
        this.#refillFailures = 0;
        this.#refillNotBefore = 0;
        this.#log.debug({ event: 'key_pool_fetched', keyIds: keys.map((k) => k.keyId), stock: this.#keys.length, target: this.target });
        if (this.#empty && this.#keys.length >= Math.max(1, this.target)) {
          this.#empty = false;
          this.#emit('key_pool_refilled', {});
        }
      } catch (e) {
        const now = this.#clock.now();
        const q = e as QkdgwError;
        this.#refillFailures++;
        this.#lastError = { op: 'enc_keys', code: q.code ?? (e instanceof Error ? e.name : 'unknown'), message: e instanceof Error ? e.message : String(e), at: now };
        if (classifyKmsError(e).kind === 'exhausted' && n > 1) this.#singleKeys = true;
        const hinted = typeof q.details?.retryInMs === 'number' ? q.details.retryInMs : 0;
        const wait = Math.max(hinted, backoffDelay(this.#refillPolicy, this.#refillFailures, this.#o.random()));
        this.#refillNotBefore = now + wait;
        if (!this.#closed) {
          this.#emit('key_pool_refill_failed', { code: this.#lastError.code, consecutiveFailures: this.#refillFailures, retryInMs: Math.round(wait) });
        }
        throw e;
      } finally {
        this.#inflight = null;
      }
    })();
    this.#inflight = p;
    // Background errors are reported by event; takers that joined get the rejection.
    p.then(
      () => this.#maybeRefill(),
      () => this.#maybeRefill(),
    );
    return p;
  }

  /** Starts a background refill when below target and allowed; else arms the retry timer. */
  #maybeRefill(): void {
    if (!this.#armed || this.#closed || this.target === 0 || this.#inflight || this.#keys.length >= this.target) return;
    const wait = this.#refillNotBefore - this.#clock.now();
    if (wait > 0) {
      this.#cancelRefillTimer?.();
      this.#cancelRefillTimer = this.#clock.setTimer(wait, () => {
        this.#cancelRefillTimer = null;
        this.#maybeRefill();
      });
      return;
    }
    this.#fetch(this.#batch(this.target - this.#keys.length), this.#o.refillDeadlineMs).catch(() => undefined);
  }

  #onTaken(): void {
    const now = this.#clock.now();
    this.#taken++;
    this.#consumption.add(now);
    if (this.#keys.length === 0 && this.target > 0) this.#markEmpty();
    this.#evaluate(now);
    this.#maybeRefill();
  }

  #markEmpty(): void {
    if (this.#empty) return;
    this.#empty = true;
    this.#emit('key_pool_empty', {});
  }

  /** Zeroizes pooled keys older than maxKeyAgeMs (they sit at the front: FIFO, non-decreasing times). */
  #purgeExpired(): void {
    const now = this.#clock.now();
    const ids: string[] = [];
    while (this.#keys.length && now - this.#keys[0].at > this.#o.maxKeyAgeMs) {
      const e = this.#keys.shift()!;
      e.k.key.wipe();
      ids.push(e.k.keyId);
    }
    const n = ids.length;
    if (n === 0) return;
    this.#discarded += n;
    this.#emit('key_pool_expired', { discarded: n, keyIds: ids });
    if (this.#keys.length === 0 && this.target > 0) this.#markEmpty();
    this.#maybeRefill();
  }

  async #checkStatus(): Promise<void> {
    if (this.#closed) return;
    this.#armStatusTimer();
    this.#statusInFlight = true;
    try {
      const s = await this.#src.status(this.peerSaeId, { deadlineMs: this.#o.statusDeadlineMs });
      if (this.#closed) return;
      const now = this.#clock.now();
      this.#lastStatus = s;
      this.#lastStatusAt = now;
      this.#fetchedSinceStatus = 0;
      this.#singleKeys = false;
      this.#supply.add({ at: now, stored: s.stored_key_count, fetched: this.#fetched });
      this.#goodChecks = s.stored_key_count >= 1 ? this.#goodChecks + 1 : 0;
      if (this.#statusFailures > 0) {
        const streak = this.#statusFailures;
        this.#statusFailures = 0;
        this.#emit('kme_status_recovered', { consecutiveFailures: streak, totalFailures: this.#statusFailuresTotal });
      }
      this.#emit('kme_status_checked', {});
    } catch (e) {
      if (this.#closed) return;
      const now = this.#clock.now();
      this.#goodChecks = 0;
      this.#statusFailures++;
      this.#statusFailuresTotal++;
      const code = e instanceof QkdgwError ? e.code : e instanceof Error ? e.name : 'unknown';
      this.#lastError = { op: 'status', code, message: e instanceof Error ? e.message : String(e), at: now };
      this.#emit('kme_status_failed', { code, consecutiveFailures: this.#statusFailures, totalFailures: this.#statusFailuresTotal }, { kmeStoredKeyCount: null });
      this.#emit('kme_status_checked', {}, { kmeStoredKeyCount: null });
    } finally {
      this.#statusInFlight = false;
    }
    this.#purgeExpired();
    this.#evaluate(this.#clock.now());
    this.#maybeRefill();
  }

  #armStatusTimer(): void {
    this.#cancelStatusTimer?.();
    this.#cancelStatusTimer = this.#clock.setTimer(this.#o.statusIntervalMs, () => {
      this.#cancelStatusTimer = null;
      this.#runStatus();
    });
  }

  #runStatus(): void {
    if (this.#statusInFlight) {
      this.#armStatusTimer(); // a slow check still running: skip this tick
      return;
    }
    const p = this.#checkStatus()
      .catch((e: unknown) => this.#log.error({ event: 'key_pool_internal_error', err: e instanceof Error ? e.message : String(e) }, 'key pool status tick failed'))
      .finally(() => {
        if (this.#statusP === p) this.#statusP = null;
      });
    this.#statusP = p;
  }

  /** Forecast threshold crossings -> key_forecast_low / key_forecast_ok (needs a status). */
  #evaluate(now: number): void {
    if (this.#lastStatus === null) return;
    const f = this.#forecast(now);
    const c = this.#alarm.update(f.kmeDry);
    if (c === null) return;
    this.#emit(c === 'low' ? 'key_forecast_low' : 'key_forecast_ok', {
      forecastKmeDrySec: f.kmeDry === null ? null : Math.round(f.kmeDry * 10) / 10,
      thresholdSec: this.#o.forecastLowSec,
      consumptionPerSec: f.consumption,
      supplyPerSec: f.supply,
    });
  }

  #emit(
    event: KeyPoolEventName,
    fields: Partial<KeyPoolEvent>,
    over: Partial<KeyPoolEvent> = {},
  ): void {
    const e: KeyPoolEvent = {
      event,
      peerSaeId: this.peerSaeId,
      at: this.#clock.now(),
      stock: this.#keys.length,
      target: this.target,
      kmeStoredKeyCount: this.#lastStatus?.stored_key_count ?? null,
      consecutiveGoodChecks: this.#goodChecks,
      ...fields,
      ...over,
    };
    // peerSaeId is bound on #log already: repeating it would write the key twice in one JSON line.
    const { peerSaeId: _bound, ...line } = e;
    this.#log[LEVEL[event]](line, message(e));
    if (!this.#onEvent) return;
    try {
      this.#onEvent(e);
    } catch (err) {
      this.#log.error({ event: 'key_pool_listener_failed', err: err instanceof Error ? err.message : String(err) }, 'key pool event listener threw; ignored');
    }
  }
}

function closedError(): QkdgwError {
  return new QkdgwError(ErrorCodes.INTERNAL, 'key pool closed');
}

function message(e: KeyPoolEvent): string {
  const p = e.peerSaeId;
  switch (e.event) {
    case 'key_pool_empty':
      return `QKD key pool for ${p} is empty (target ${e.target})`;
    case 'key_pool_refilled':
      return `QKD key pool for ${p} refilled (${e.stock}/${e.target})`;
    case 'key_pool_refill_failed':
      return `QKD key pool refill for ${p} failed (${e.code}); ${e.consecutiveFailures} in a row, next in ${e.retryInMs} ms`;
    case 'key_pool_expired':
      return `${e.discarded} pooled QKD key(s) for ${p} expired and were zeroized`;
    case 'key_forecast_low':
      return `KME key store for ${p} forecast to run dry in ${e.forecastKmeDrySec} s (< ${e.thresholdSec} s); stored ${e.kmeStoredKeyCount}`;
    case 'key_forecast_ok':
      return `KME key store forecast for ${p} is fine again (${e.forecastKmeDrySec === null ? 'not drying' : `${e.forecastKmeDrySec} s`})`;
    case 'kme_status_checked':
      return `KME status for ${p}: stored_key_count ${e.kmeStoredKeyCount}`;
    case 'kme_status_failed':
      return `KME status check for ${p} failed (${e.code}); ${e.consecutiveFailures} in a row, ${e.totalFailures} in total`;
    case 'kme_status_recovered':
      return `KME status checks for ${p} work again after ${e.consecutiveFailures} failure(s)`;
  }
}
