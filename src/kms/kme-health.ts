/**
 * Per-peer KME failure bookkeeping for the KeySource (etsi014.md C29, C30; field report
 * BC-26): running failure counts for the one-line-per-failure log, and the two gates that
 * keep a failing KME from being hammered:
 *
 * - spacing gate: after any call that failed transiently (or with exhaustion), no call for
 *   that peer is made for `minSpacingMs`;
 * - exhaustion gate: after an enc_keys for ONE key was refused for lack of key material,
 *   no enc_keys for that peer is made for a jittered exponential backoff
 *   (`exhausted` policy, e.g. 1 s doubling to 30 s), reset by the next delivered key.
 *
 * Pure bookkeeping: times are clock milliseconds passed in by the caller.
 */
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { KmsErrorKind } from './etsi014/error-map.js';

/** The last failure seen for a peer. Never key bytes. */
export interface KmeLastError {
  op: string;
  code: string;
  kind: KmsErrorKind;
  message: string;
  /** clock ms */
  at: number;
}

/** A copy of one peer's state (KeySource.health()). Times are clock ms. */
export interface KmeHealthSnapshot {
  /** failed key calls (getKey/getKeys/getKeyById, after their retries) since the last success */
  consecutiveFailures: number;
  /** failed key calls since start */
  totalFailures: number;
  /** consecutive single-key enc_keys refused as exhausted (drives the exhaustion backoff) */
  consecutiveExhausted: number;
  /** calls not sent to the KME because a gate was closed longer than the caller could wait */
  suppressed: number;
  /** no call before this clock ms (spacing gate); 0 = open */
  notBefore: number;
  /** no enc_keys before this clock ms (exhaustion gate); 0 = open */
  encNotBefore: number;
  lastError: KmeLastError | null;
}

export interface KmeHealthPolicy {
  /** ms between a transient failure and the next call for the same peer */
  minSpacingMs: number;
  /** backoff of the exhaustion gate (its floorMs is raised to minSpacingMs) */
  exhausted: BackoffPolicy;
  /** [0,1) jitter source */
  random: () => number;
}

interface State extends KmeHealthSnapshot {
  /** code of the failure that closed the spacing gate / the exhaustion gate */
  gateCode: string | null;
  encGateCode: string | null;
}

const fresh = (): State => ({
  gateCode: null,
  encGateCode: null,
  consecutiveFailures: 0,
  totalFailures: 0,
  consecutiveExhausted: 0,
  suppressed: 0,
  notBefore: 0,
  encNotBefore: 0,
  lastError: null,
});

export class KmeHealth {
  readonly #p: KmeHealthPolicy;
  readonly #peers = new Map<string, State>();

  constructor(p: KmeHealthPolicy) {
    this.#p = { ...p, exhausted: { ...p.exhausted, floorMs: Math.max(p.exhausted.floorMs ?? 0, p.minSpacingMs) } };
  }

  #get(peer: string): State {
    let s = this.#peers.get(peer);
    if (!s) this.#peers.set(peer, (s = fresh()));
    return s;
  }

  /** ms the caller must wait before a call of kind `op` for `peer` (0 = go now). */
  waitMs(peer: string, op: 'enc_keys' | 'dec_keys' | 'status', now: number): number {
    const s = this.#peers.get(peer);
    if (!s) return 0;
    const until = op === 'enc_keys' ? Math.max(s.notBefore, s.encNotBefore) : s.notBefore;
    return Math.max(0, until - now);
  }

  /**
   * One KME call attempt failed with `kind`. Closes the spacing gate for transient and
   * exhausted failures; an exhausted single-key enc_keys also advances the exhaustion
   * backoff. Returns the wait it imposed on the next enc_keys, ms.
   */
  attemptFailed(peer: string, kind: KmsErrorKind, code: string, now: number, o: { op: string; keys?: number }): number {
    if (kind !== 'transient' && kind !== 'exhausted') return this.waitMs(peer, 'enc_keys', now);
    const s = this.#get(peer);
    s.notBefore = Math.max(s.notBefore, now + this.#p.minSpacingMs);
    s.gateCode = code;
    if (kind === 'exhausted' && o.op === 'enc_keys' && (o.keys ?? 1) === 1) {
      s.consecutiveExhausted++;
      s.encNotBefore = now + backoffDelay(this.#p.exhausted, s.consecutiveExhausted, this.#p.random());
      s.encGateCode = code;
    }
    return Math.max(0, Math.max(s.notBefore, s.encNotBefore) - now);
  }

  /** The error code a call suppressed by the gate now closed for `op` should carry, if any. */
  gateCode(peer: string, op: 'enc_keys' | 'dec_keys' | 'status'): string | null {
    const s = this.#peers.get(peer);
    if (!s) return null;
    return op === 'enc_keys' && s.encNotBefore >= s.notBefore ? s.encGateCode ?? s.gateCode : s.gateCode;
  }

  /** Remembers `err` as the peer's last error without counting a failed key call (status checks). */
  noteError(peer: string, err: KmeLastError): void {
    this.#get(peer).lastError = err;
  }

  /** A key call failed for good (after its retries): bumps the running counts. Returns the new state. */
  callFailed(peer: string, err: KmeLastError): Readonly<KmeHealthSnapshot> {
    const s = this.#get(peer);
    s.consecutiveFailures++;
    s.totalFailures++;
    s.lastError = err;
    return s;
  }

  /** A call was not sent because a gate was closed. */
  suppressed(peer: string): Readonly<KmeHealthSnapshot> {
    const s = this.#get(peer);
    s.suppressed++;
    return s;
  }

  /**
   * A key call succeeded: the failure streak ends (returned: its length, for the one
   * recovery log line); a delivered enc_keys also opens the exhaustion gate.
   */
  callSucceeded(peer: string, op: 'enc_keys' | 'dec_keys'): number {
    const s = this.#peers.get(peer);
    if (!s) return 0;
    const streak = s.consecutiveFailures;
    s.consecutiveFailures = 0;
    if (op === 'enc_keys') {
      s.consecutiveExhausted = 0;
      s.encNotBefore = 0;
    }
    return streak;
  }

  /**
   * A status check says the KME holds keys for the pair again: the exhaustion gate opens at
   * once (an outage must not outlive the keys' return by the gate's 30 s backoff).
   * Returns true when the gate was closed.
   */
  keysAvailable(peer: string): boolean {
    const s = this.#peers.get(peer);
    if (!s || (s.encNotBefore === 0 && s.consecutiveExhausted === 0)) return false;
    s.consecutiveExhausted = 0;
    s.encNotBefore = 0;
    return true;
  }

  /** A copy of `peer`'s state (all zero for a peer never seen). */
  snapshot(peer: string): KmeHealthSnapshot {
    const s = this.#peers.get(peer) ?? fresh();
    return {
      consecutiveFailures: s.consecutiveFailures,
      totalFailures: s.totalFailures,
      consecutiveExhausted: s.consecutiveExhausted,
      suppressed: s.suppressed,
      notBefore: s.notBefore,
      encNotBefore: s.encNotBefore,
      lastError: s.lastError ? { ...s.lastError } : null,
    };
  }
}
