/**
 * A ManualClock that tells the test when code under test arms a timer, so the test can
 * advance virtual time exactly when a backoff or deadline is pending (no sleeps, no polling).
 */
import { ManualClock } from '../../../src/util/clock.js';

export class SteppingClock extends ManualClock {
  #waiters: Array<(ms: number) => void> = [];
  #armed: number[] = [];

  override setTimer(ms: number, fn: () => void): () => void {
    const cancel = super.setTimer(ms, fn);
    const w = this.#waiters.shift();
    if (w) w(ms);
    else this.#armed.push(ms);
    return cancel;
  }

  /** Resolves with the delay (ms) of the next timer armed (or one armed and not yet taken). */
  nextTimer(): Promise<number> {
    const ms = this.#armed.shift();
    if (ms !== undefined) return Promise.resolve(ms);
    return new Promise((r) => this.#waiters.push(r));
  }
}
