/**
 * Key-supply estimators and dry-out forecasts for the QKD key pool (KeyPool, key-pool.ts).
 * Pure: every function takes the time (clock ms) it should answer for.
 *
 * Estimators (documented here because operators read their numbers):
 * - consumption: keys taken from the pool per second = takes in the last `windowMs`
 *   divided by the span actually observed, `max(minSpanMs, min(windowMs, now - since))`.
 *   The floor `minSpanMs` keeps the first take after start from reading as a burst
 *   (one take 2 s after start is not 0.5 keys/s).
 * - supply: the KME's key generation rate for this master->slave pair, from the status
 *   samples of the last `windowMs`: what the KME had plus what we took out of it grew by
 *   `((stored_last + fetched_last) - (stored_first + fetched_first)) / (t_last - t_first)`,
 *   where `fetched` counts keys enc_keys delivered to us (the pool's prefetches; equal to
 *   our takes in the long run). Needs two samples at different times, else unknown (null).
 *   Clamped at >= 0 (a KME that expires keys shows negative growth; that is not supply).
 *   While the KME store is full (stored_key_count = max_key_count) it cannot grow, so the
 *   estimate is then a lower bound; a full store is not drying out anyway.
 * - forecasts: pool dry = stock / consumption; KME dry = stored / (consumption - supply)
 *   when consumption > supply, else null (never). An unknown supply counts as 0
 *   (pessimistic: an alarm early rather than late).
 */

/** Sliding-window event rate (events per second). */
export class EventRate {
  readonly #windowMs: number;
  readonly #minSpanMs: number;
  readonly #since: number;
  /** [at, n], oldest first */
  readonly #events: Array<[number, number]> = [];

  /**
   * `windowMs`: how far back events count, ms (> 0). `minSpanMs`: smallest divisor, ms
   * (> 0, <= windowMs). `since`: clock ms when observation began.
   */
  constructor(o: { windowMs: number; minSpanMs: number; since: number }) {
    if (!(o.windowMs > 0) || !(o.minSpanMs > 0)) throw new RangeError('EventRate windowMs and minSpanMs must be > 0');
    this.#windowMs = o.windowMs;
    this.#minSpanMs = Math.min(o.minSpanMs, o.windowMs);
    this.#since = o.since;
  }

  /** Records `n` events at clock ms `at` (non-decreasing). */
  add(at: number, n = 1): void {
    this.#events.push([at, n]);
  }

  #prune(now: number): void {
    while (this.#events.length && this.#events[0][0] <= now - this.#windowMs) this.#events.shift();
  }

  /** Events in (now - windowMs, now]. */
  count(now: number): number {
    this.#prune(now);
    let c = 0;
    for (const [at, n] of this.#events) if (at <= now) c += n;
    return c;
  }

  /** Events per second over the window (see the file comment); 0 when none. */
  perSec(now: number): number {
    const c = this.count(now);
    if (c === 0) return 0;
    const span = Math.max(this.#minSpanMs, Math.min(this.#windowMs, now - this.#since));
    return (c * 1000) / span;
  }
}

/** One KME status reading for the supply estimate. */
export interface StockSample {
  /** clock ms of the reading */
  at: number;
  /** status stored_key_count */
  stored: number;
  /** keys enc_keys delivered to us since start (cumulative), at the time of the reading */
  fetched: number;
}

/** KME key supply rate (keys per second) from status readings; see the file comment. */
export class SupplyEstimator {
  readonly #windowMs: number;
  readonly #samples: StockSample[] = [];

  /** `windowMs`: how far back samples count, ms (> 0). */
  constructor(o: { windowMs: number }) {
    if (!(o.windowMs > 0)) throw new RangeError('SupplyEstimator windowMs must be > 0');
    this.#windowMs = o.windowMs;
  }

  /** Adds a reading (readings arrive in time order). */
  add(s: StockSample): void {
    this.#samples.push({ ...s });
    // Keep the window, but never fewer than the last two readings: after a long status
    // outage the latest pair still says something.
    const last = s.at;
    while (this.#samples.length > 2 && this.#samples[0].at < last - this.#windowMs) this.#samples.shift();
  }

  /** Keys per second, >= 0; null until two readings at different times exist. */
  perSec(): number | null {
    const n = this.#samples.length;
    if (n < 2) return null;
    const a = this.#samples[0];
    const b = this.#samples[n - 1];
    const dt = b.at - a.at;
    if (!(dt > 0)) return null;
    const grew = b.stored + b.fetched - (a.stored + a.fetched);
    return Math.max(0, (grew * 1000) / dt);
  }
}

/** Seconds until `stock` keys are used up at `consumptionPerSec` with no refill; null if consumption is 0. */
export function poolDrySec(stock: number, consumptionPerSec: number): number | null {
  if (!(consumptionPerSec > 0)) return null;
  return Math.max(0, stock) / consumptionPerSec;
}

/**
 * Seconds until the KME store (`stored` keys) runs dry: stored / (consumption - supply)
 * when consumption > supply; null (never) otherwise or when `stored` is unknown (null).
 * An unknown supply (null) counts as 0.
 */
export function kmeDrySec(stored: number | null, consumptionPerSec: number, supplyPerSec: number | null): number | null {
  if (stored === null) return null;
  const net = consumptionPerSec - (supplyPerSec ?? 0);
  if (!(net > 0)) return null;
  return Math.max(0, stored) / net;
}
