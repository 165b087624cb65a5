/**
 * A low-water alarm with hysteresis for the key forecasts (KeyPool `key_forecast_low` /
 * `key_forecast_ok`): it reports only crossings, so a value that hovers around the
 * threshold does not produce an event per sample. Pure.
 */

export type Crossing = 'low' | 'ok' | null;

export class LowWatermark {
  readonly lowBelow: number;
  readonly okAtOrAbove: number;
  #low = false;

  /**
   * Enters `low` when a value < `lowBelow` arrives; leaves it when a value >=
   * `okAtOrAbove` (>= lowBelow) or null ("never runs out") arrives. Throws RangeError
   * if okAtOrAbove < lowBelow or either is not a number.
   */
  constructor(o: { lowBelow: number; okAtOrAbove: number }) {
    if (Number.isNaN(o.lowBelow) || Number.isNaN(o.okAtOrAbove) || o.okAtOrAbove < o.lowBelow) {
      throw new RangeError(`LowWatermark needs okAtOrAbove (${o.okAtOrAbove}) >= lowBelow (${o.lowBelow})`);
    }
    this.lowBelow = o.lowBelow;
    this.okAtOrAbove = o.okAtOrAbove;
  }

  get isLow(): boolean {
    return this.#low;
  }

  /** Feeds one value (null = infinite); returns the crossing it caused, or null. */
  update(v: number | null): Crossing {
    if (!this.#low && v !== null && v < this.lowBelow) {
      this.#low = true;
      return 'low';
    }
    if (this.#low && (v === null || v >= this.okAtOrAbove)) {
      this.#low = false;
      return 'ok';
    }
    return null;
  }
}
