/**
 * Jittered, capped exponential backoff (etsi014.md C29 "exponential backoff with jitter,
 * capped"; field report BC-26). Pure: the caller supplies the random number.
 */

export interface BackoffPolicy {
  /** delay before the first retry, ms (before jitter) */
  baseMs: number;
  /** upper bound of any delay, ms (applied after jitter, so it is a hard cap) */
  maxMs: number;
  /** lower bound of any delay, ms (applied last: a minimum spacing wins over the cap); default 0 */
  floorMs?: number;
  /** relative jitter j in [0, 1): the delay is scaled by a factor in [1-j, 1+j); default 0.25 */
  jitter?: number;
}

/**
 * Delay before retry number `n` (n >= 1: the first retry), ms:
 * `max(floorMs, min(maxMs, baseMs * 2^(n-1) * (1 - j + 2j*r)))`.
 * `r` is uniform in [0, 1) (Math.random in production; 0.5 gives exactly baseMs * 2^(n-1)).
 * Never negative, never NaN; exponents beyond 2^52 saturate at maxMs.
 */
export function backoffDelay(p: BackoffPolicy, n: number, r: number): number {
  const j = p.jitter ?? 0.25;
  const k = Math.max(0, Math.min(52, Math.floor(n) - 1));
  const raw = p.baseMs * 2 ** k * (1 - j + 2 * j * Math.min(Math.max(r, 0), 1));
  const capped = Math.min(p.maxMs, raw);
  return Math.max(p.floorMs ?? 0, Number.isFinite(capped) ? capped : p.maxMs, 0);
}
