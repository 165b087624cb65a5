/**
 * Fault injection for one KME (etsi014.md S37; used by the client tests of items 28-30 and
 * the gateway tests of items 34 and 36): added latency, a response that stalls mid-body,
 * injected 503s and keys whose slave copy differs from the master copy.
 *
 * Faults hit every request of an authenticated SAE (any path), after its body was read and
 * before anything is parsed or consumed; a request refused with 401 is never delayed.
 * Latency uses real timers (not the simulator's injected clock), because it delays real
 * sockets.
 */
import type { ServerResponse } from 'node:http';
import { expectObject, inputError, optBool, optInt, rejectUnknown, describe } from './input.js';
import type { Reply } from './http.js';

export interface KmeFaults {
  /** Added delay before the request is handled, ms (real time). 0 = none. */
  latencyMs: number;
  /**
   * Every request gets status 200, its headers and a first part of a JSON body, then
   * nothing more until the client closes the connection. Nothing is consumed.
   */
  stallMidBody: boolean;
  /**
   * The next N requests answer 503 `{"message":"injected fault: KME temporarily out of
   * service"}` and consume nothing; `'always'` = every request until changed; 0 = off.
   */
  status503: number | 'always';
  /**
   * This KME delivers DIFFERENT random bytes (same length, same key_ID) to its slave SAEs
   * for the next N keys that masters at the other KME get by `enc_keys`: the master's
   * copy is right, this KME's `dec_keys` copy is not (a mis-keying KME, checklist S34).
   * The keys are picked when the master gets them, so a key already pending is not
   * affected. Counted per key, not per request.
   */
  mismatchNext: number;
}

/** Argument of `setFaults`: any subset of {@link KmeFaults}, plus which KME it is for. */
export interface KmeFaultOptions extends Partial<KmeFaults> {
  /** KME ID the settings apply to; absent = both KMEs (each gets its own counters). */
  kme?: string;
}

export const FAULT_DEFAULTS: Readonly<KmeFaults> = Object.freeze({
  latencyMs: 0,
  stallMidBody: false,
  status503: 0,
  mismatchNext: 0,
});

/** Upper bound of `latencyMs`, ms: 10 minutes is beyond any client timeout worth testing. */
export const MAX_LATENCY_MS = 600_000;
const MAX_COUNT = 1_000_000_000;

/** Message of an injected 503; deliberately free of exhaustion words (C29 maps those to "back off"). */
export const MSG_INJECTED_503 = 'injected fault: KME temporarily out of service';

const FAULT_MEMBERS = ['kme', ...Object.keys(FAULT_DEFAULTS)];

/**
 * Checks a fault setting (control API argument or admin body).
 * @param kmeIds the two KME IDs of the pair
 * @returns the KMEs to change and the members given
 * @throws QkdgwError KMS_CONFIG naming `path.member` for an unknown member, a wrong type or
 *   an unknown KME ID
 */
export function checkFaults(input: unknown, kmeIds: readonly string[], path = 'faults'): { kmes: string[]; set: Partial<KmeFaults> } {
  const o = expectObject(input, path);
  rejectUnknown(o, path, FAULT_MEMBERS);
  let kmes = [...kmeIds];
  if (o.kme !== undefined) {
    if (typeof o.kme !== 'string' || !kmeIds.includes(o.kme)) {
      inputError(`${path}.kme`, `must be one of the KME IDs ${kmeIds.map((k) => JSON.stringify(k)).join(', ')} (absent = both), got ${describe(o.kme)}`);
    }
    kmes = [o.kme];
  }
  const set: Partial<KmeFaults> = {};
  const latency = optInt(o.latencyMs, `${path}.latencyMs`, 0, MAX_LATENCY_MS);
  if (latency !== undefined) set.latencyMs = latency;
  const stall = optBool(o.stallMidBody, `${path}.stallMidBody`);
  if (stall !== undefined) set.stallMidBody = stall;
  if (o.status503 !== undefined) {
    if (o.status503 !== 'always') {
      if (typeof o.status503 !== 'number' || !Number.isSafeInteger(o.status503) || o.status503 < 0 || o.status503 > MAX_COUNT) {
        inputError(`${path}.status503`, `must be an integer from 0 to ${MAX_COUNT} or "always", got ${describe(o.status503)}`);
      }
    }
    set.status503 = o.status503;
  }
  const mismatch = optInt(o.mismatchNext, `${path}.mismatchNext`, 0, MAX_COUNT);
  if (mismatch !== undefined) set.mismatchNext = mismatch;
  return { kmes, set };
}

/** Real-time waits that `cancelAll` ends early (on simulator close), so no timer outlives it. */
export class Delays {
  readonly #pending = new Map<NodeJS.Timeout, () => void>();

  /**
   * Resolves true after at least `ms` ms of real time, or false when cancelled first.
   * libuv timers may fire up to 1 ms early (millisecond loop clock), so the rest is waited
   * out: the latency fault promises a minimum.
   */
  wait(ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    return new Promise((resolve) => {
      const arm = (delay: number): void => {
        const t = setTimeout(() => {
          this.#pending.delete(t);
          const left = end - performance.now();
          if (left > 0) arm(Math.ceil(left));
          else resolve(true);
        }, delay);
        this.#pending.set(t, () => resolve(false));
      };
      arm(ms);
    });
  }

  cancelAll(): void {
    for (const [t, cancel] of this.#pending) {
      clearTimeout(t);
      cancel();
    }
    this.#pending.clear();
  }
}

/** What the fault gate decided for one request. */
export type GateResult =
  | { kind: 'continue' }
  /** The response was left hanging (or the simulator closed during the delay): write nothing more. */
  | { kind: 'stalled' }
  | { kind: 'reply'; reply: Reply };

/** The first part of a stalled body: it promises a key container that never completes. */
const STALL_PREFIX = '{"keys":[{"key_ID":"';
/** The Content-Length a stalled answer announces, bytes; more than is ever sent. */
export const STALL_CONTENT_LENGTH = 4096;

/**
 * Applies the KME's faults to one request, in this order: latency, stall, injected 503.
 * `faults` is read live, so a change made during the delay applies to the rest.
 * @param onInjected called with the fault's name each time one acts (for counters and logs)
 */
export async function gateRequest(
  faults: KmeFaults,
  res: ServerResponse,
  delays: Delays,
  onInjected: (fault: 'latency' | 'stall' | 'status503') => void,
): Promise<GateResult> {
  if (faults.latencyMs > 0) {
    onInjected('latency');
    if (!(await delays.wait(faults.latencyMs))) return { kind: 'stalled' };
  }
  if (faults.stallMidBody) {
    onInjected('stall');
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': String(STALL_CONTENT_LENGTH),
      'cache-control': 'no-store',
    });
    // Sends the headers and the first bytes now; the rest never comes.
    res.write(STALL_PREFIX);
    return { kind: 'stalled' };
  }
  if (faults.status503 === 'always' || faults.status503 > 0) {
    if (faults.status503 !== 'always') faults.status503--;
    onInjected('status503');
    return { kind: 'reply', reply: { status: 503, body: { message: MSG_INJECTED_503 } } };
  }
  return { kind: 'continue' };
}
