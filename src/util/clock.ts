/**
 * Time as an input. Core code never reads the wall clock: it takes `now` (milliseconds,
 * monotonic) from a Clock. Tests drive a ManualClock instead of sleeping.
 */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds; returns a cancel function. */
  setTimer(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref?.();
    return () => clearTimeout(t);
  },
};

/** A clock that moves only when told; timers fire in due order inside advance(). */
export class ManualClock implements Clock {
  #now: number;
  #timers: Array<{ at: number; fn: () => void; seq: number }> = [];
  #seq = 0;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimer(ms: number, fn: () => void): () => void {
    const entry = { at: this.#now + Math.max(0, ms), fn, seq: this.#seq++ };
    this.#timers.push(entry);
    return () => {
      this.#timers = this.#timers.filter((x) => x !== entry);
    };
  }
  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.#now = next.at;
      next.fn();
    }
    this.#now = end;
  }
  get pending(): number {
    return this.#timers.length;
  }
}
