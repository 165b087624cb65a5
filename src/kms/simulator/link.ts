/**
 * The simulated QKD link: a pool of secret bits that fills at the link's key rate.
 *
 * No timers: the pool is brought up to date from `clock.now()` whenever it is read, so a
 * ManualClock drives it exactly. Both KMEs of the pair read the same pool, as two ends
 * of one link hold the same key stream.
 */
import type { Clock } from '../../util/clock.js';
import type { ResolvedLink } from './options.js';

export class KeyPool {
  readonly #link: ResolvedLink;
  readonly #clock: Clock;
  /** Bits available now; fractional bits carry over between reads. */
  #bits: number;
  #last: number;

  constructor(link: ResolvedLink, clock: Clock) {
    this.#link = link;
    this.#clock = clock;
    this.#bits = link.initialKeyCount * link.keySizeBits;
    this.#last = clock.now();
  }

  /** Capacity in bits: `max_key_count` keys of `key_size` bits. */
  get capacityBits(): number {
    return this.#link.maxKeyCount * this.#link.keySizeBits;
  }

  #accrue(): void {
    const now = this.#clock.now();
    const elapsedMs = now - this.#last;
    // A clock that steps back (it should not: Clock is monotonic) adds nothing.
    if (elapsedMs > 0) {
      this.#bits = Math.min(this.capacityBits, this.#bits + (elapsedMs * this.#link.keyRateBps) / 1000);
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
    const n = Math.floor(this.availableBits() / this.#link.keySizeBits);
    return Math.max(0, Math.min(this.#link.maxKeyCount, n));
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
