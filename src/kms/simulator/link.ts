/**
 * The simulated QKD link: a pool of secret bits that fills at the link's key rate.
 *
 * No timers: the pool is brought up to date from `clock.now()` whenever it is read, so a
 * ManualClock drives it exactly. Both KMEs of the pair read the same pool, as two ends
 * of one link hold the same key stream.
 *
 * Rate, capacity and pause can change at run time (control API, etsi014.md S37); a change
 * first brings the pool up to date under the old settings, so it acts from that instant on.
 */
import type { Clock } from '../../util/clock.js';
import type { ResolvedLink } from './options.js';

/** The link settings that can change at run time. */
export interface LinkSettings {
  /** Secret key rate, bit/s. */
  keyRateBps: number;
  /** Capacity in keys of `key_size` bits = Status `max_key_count`. */
  maxKeyCount: number;
  /** No accrual while paused; time spent paused is not made up afterwards. */
  paused: boolean;
}

export class KeyPool {
  readonly #keySizeBits: number;
  readonly #clock: Clock;
  #rate: number;
  #max: number;
  #paused: boolean;
  /** Bits available now; fractional bits carry over between reads. */
  #bits: number;
  #last: number;

  constructor(link: ResolvedLink, clock: Clock, paused = false) {
    this.#keySizeBits = link.keySizeBits;
    this.#clock = clock;
    this.#rate = link.keyRateBps;
    this.#max = link.maxKeyCount;
    this.#paused = paused;
    this.#bits = link.initialKeyCount * link.keySizeBits;
    this.#last = clock.now();
  }

  /** Capacity in bits: `max_key_count` keys of `key_size` bits. */
  get capacityBits(): number {
    return this.#max * this.#keySizeBits;
  }

  /** Status `max_key_count` now. */
  get maxKeyCount(): number {
    return this.#max;
  }

  settings(): LinkSettings {
    return { keyRateBps: this.#rate, maxKeyCount: this.#max, paused: this.#paused };
  }

  /** Applies the given settings from now on (bits accrued so far under the old ones are kept). */
  configure(s: Partial<LinkSettings>): void {
    this.#accrue();
    if (s.keyRateBps !== undefined) this.#rate = s.keyRateBps;
    if (s.paused !== undefined) this.#paused = s.paused;
    if (s.maxKeyCount !== undefined) {
      this.#max = s.maxKeyCount;
      // etsi014.md S8: stored_key_count never exceeds max_key_count, also after shrinking.
      this.#bits = Math.min(this.#bits, this.capacityBits);
    }
  }

  /** Empties the pool. @returns whole keys of `key_size` that were in it */
  drain(): number {
    const n = this.storedKeyCount();
    this.#bits = 0;
    return n;
  }

  /**
   * Adds `count` keys of `key_size` bits, up to the capacity.
   * @returns how many were added (fewer when the pool filled up)
   */
  addKeys(count: number): number {
    const before = this.storedKeyCount();
    this.#bits = Math.min(this.capacityBits, this.#bits + count * this.#keySizeBits);
    return this.storedKeyCount() - before;
  }

  /** Sets the pool to exactly `count` keys (capped at the capacity), discarding fractions. */
  refill(count: number): void {
    this.#accrue();
    this.#bits = Math.min(this.capacityBits, count * this.#keySizeBits);
  }

  #accrue(): void {
    const now = this.#clock.now();
    const elapsedMs = now - this.#last;
    // A clock that steps back (it should not: Clock is monotonic) adds nothing.
    if (elapsedMs > 0 && !this.#paused) {
      this.#bits = Math.min(this.capacityBits, this.#bits + (elapsedMs * this.#rate) / 1000);
    }
    this.#last = now;
  }

  /** Whole bits available now. */
  availableBits(): number {
    this.#accrue();
    return Math.floor(this.#bits);
  }

  /**
   * Status `stored_key_count`: whole keys of `key_size` bits available now.
   * Always 0 <= n <= max_key_count (etsi014.md S8, field report BC-01).
   */
  storedKeyCount(): number {
    const n = Math.floor(this.availableBits() / this.#keySizeBits);
    return Math.max(0, Math.min(this.#max, n));
  }

  /** How many keys of `sizeBits` bits could be taken now. */
  keysAvailable(sizeBits: number): number {
    return Math.floor(this.availableBits() / sizeBits);
  }

  /**
   * Takes `count` keys of `sizeBits` bits from the pool if all are there.
   * @returns false (and takes nothing) when fewer are available
   */
  take(count: number, sizeBits: number): boolean {
    const need = count * sizeBits;
    if (this.availableBits() < need) return false;
    this.#bits -= need;
    return true;
  }
}
