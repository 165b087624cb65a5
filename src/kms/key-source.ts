/**
 * KeySource: what the daemon hands the tunnel to obtain QKD keys (architecture.md L3;
 * protocol.md s3.1, s3.4). The tunnel never sees HTTP: it asks for fresh 256-bit keys
 * (initiator = ETSI 014 master) or for the key a peer announced by key_ID (responder =
 * slave), and gets SecretBytes plus the key_ID.
 *
 * Etsi014KeySource adds, on top of Etsi014Client:
 * - exactly 32-byte keys (KMS_KEY_INVALID otherwise, key zeroized);
 * - key_ID reuse detection (BC-08, protocol.md s3.4 `key_reused`): the last 65,536
 *   key_IDs this source handed out, lower-cased, across all peers and both roles (a
 *   KME that hands the same key_ID to two pairs is a fault too); a repeat is
 *   KMS_KEY_REUSED and the repeated key is zeroized;
 * - a status read before enc_keys when none is fresh, so requests are clamped (C9, BC-01)
 *   and an invalid status blocks the rotation (KMS_STATUS_INVALID);
 * - master side (getKey/getKeys), one retry budget per call inside ONE deadline (default
 *   8000 ms, below the session's 10 s key-fetch bound) (C29, C30, BC-26):
 *   - transient faults (5xx, 429, connection errors, per-call timeouts) are retried with
 *     jittered exponential backoff (500 ms doubling, capped at 2000 ms), at most
 *     `encKeysAttempts` attempts (default 3), and only while at least
 *     `retryMinAttemptMs` (1000 ms) of the deadline remains after the backoff;
 *   - request bugs, auth, TLS, protocol and config errors (400/401/403/404/405/422,
 *     schema-invalid 200) are never retried;
 *   - exhaustion (KMS_EXHAUSTED: 400/503 "insufficient"...) is not retried within the
 *     call; it closes an exhaustion gate for the peer (1 s doubling to 30 s, jittered,
 *     reset by the next delivered key) so repeated rekey attempts do not hammer an empty
 *     KME;
 *   - LOST RESPONSES: an enc_keys that failed after the request may have reached the KME
 *     (timeout, connection reset after sending, body cut short) may have been served,
 *     and the KME has then removed those keys from its pool (ETSI GS QKD 014 s5.3
 *     post-condition). Such a request is re-sent AT MOST ONCE per call, counting the
 *     transport's BC-05 reconnect retry. The keys the KME may have delivered in the lost
 *     response are simply lost: nobody ever learns their key_IDs, so the slave never
 *     asks for them and they cannot be used twice; the only cost is key material.
 * - slave side (getKeyById): bounded dec_keys retries on KMS_KEY_UNAVAILABLE (C28, BC-02):
 *   default 3 retries (4 attempts) with jittered exponential backoff from 100 ms, plus
 *   transient faults retried at `minSpacingMs` or more, all inside one deadline (default
 *   3000 ms, protocol.md s3.4 "within 3 s of receiving INIT, retries included");
 * - minimum spacing: after a call for a peer failed transiently (or as exhausted), no
 *   call for that peer is sent for `minSpacingMs` (default 500 ms). A call that would
 *   have to wait longer than its deadline allows fails at once, without a KME request,
 *   with the last failure's code and details `{ suppressed: true, retryInMs }`. The
 *   transport's BC-05 reconnect after a stale pooled socket is part of ONE call and is
 *   not spaced.
 * - logging (BC-26): each failed call (after its retries) is ONE line, event
 *   `kme_call_failed`, with the running counts `consecutiveFailures`/`totalFailures`;
 *   retries and suppressed calls add no line; the first success after failures logs
 *   one `kme_recovered` line. Lines carry key_IDs, never key bytes.
 */
import { ErrorCodes, QkdgwError, type ErrorCode } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { backoffDelay, type BackoffPolicy } from './backoff.js';
import type { Etsi014Client } from './etsi014/client.js';
import { classifyKmsError, type KmsErrorKind } from './etsi014/error-map.js';
import { isValidKeyId, normalizeKeyId } from './etsi014/key-id.js';
import type { KmeStatus, QkdKey } from './etsi014/types.js';
import { KmeHealth, type KmeHealthSnapshot } from './kme-health.js';

export type { KmeStatus, QkdKey } from './etsi014/types.js';
export type { KmeHealthSnapshot, KmeLastError } from './kme-health.js';

/** How often a call waiting at a closed gate re-reads it, ms (the gate can open early). */
const GATE_SLICE_MS = 250;

/** QKD key length the tunnel mixes in: 256 bits (protocol.md s3.1). */
export const QKD_KEY_BYTES = 32;

/** Default total deadline of one getKey/getKeys (all retries included), ms. */
export const DEFAULT_GET_KEY_DEADLINE_MS = 8000;
/** Default total deadline of one getKeyById (all retries included), ms (protocol.md s3.4). */
export const DEFAULT_GET_KEY_BY_ID_DEADLINE_MS = 3000;

export interface KeySource {
  /** master side (initiator): one fresh 256-bit key for the slave SAE `peerSaeId` */
  getKey(peerSaeId: string, opts?: { deadlineMs?: number }): Promise<QkdKey>;
  /** master side: 1..`count` fresh 256-bit keys in ONE enc_keys (fewer when the KME's max_key_per_request is lower) */
  getKeys(peerSaeId: string, count: number, opts?: { deadlineMs?: number }): Promise<QkdKey[]>;
  /** slave side (responder): the key `keyId` announced by master `peerSaeId`; bounded retries on
   *  KMS_KEY_UNAVAILABLE (default 3 retries, all within deadlineMs, default 3000 ms) (C28) */
  getKeyById(peerSaeId: string, keyId: string, opts?: { deadlineMs?: number }): Promise<QkdKey>;
  status(peerSaeId: string, opts?: { deadlineMs?: number }): Promise<KmeStatus>;
  close(): Promise<void>;
}

export interface Etsi014KeySourceOptions {
  /** timers for deadlines and backoff; default systemClock */
  clock?: Clock;
  logger?: Logger;
  /** getKey/getKeys deadline when the caller gives none, all retries included, ms; default 8000 */
  getKeyDeadlineMs?: number;
  /** getKeyById deadline when the caller gives none, ms; default 3000 (protocol.md s3.4) */
  getKeyByIdDeadlineMs?: number;
  /** enc_keys attempts per getKey on transient faults (first try included); default 3 */
  encKeysAttempts?: number;
  /** first backoff between transient retries, ms; doubles, jittered x0.75..1.25, never below minSpacingMs; default 500 */
  retryBackoffMs?: number;
  /** cap of the transient retry backoff, ms; default 2000 */
  retryBackoffMaxMs?: number;
  /** a transient retry is made only if at least this much of the deadline remains after its backoff, ms; default 1000 */
  retryMinAttemptMs?: number;
  /** no call for a peer within this long after one failed transiently, ms (BC-26); default 500 */
  minSpacingMs?: number;
  /** first exhaustion backoff (no enc_keys for the peer meanwhile), ms; doubles per consecutive exhaustion; default 1000 */
  exhaustedBackoffMs?: number;
  /** cap of the exhaustion backoff, ms (protocol.md s6: retries every 30 s at most); default 30000 */
  exhaustedBackoffMaxMs?: number;
  /** dec_keys attempts on KMS_KEY_UNAVAILABLE: the first try plus 3 retries (C28: "default 3" retries; BC-02: 404 three times, then 200). Default 4. */
  decKeysAttempts?: number;
  /** first backoff between dec_keys attempts, ms; doubles each time, jittered x0.75..1.25; default 100 (3 retries end within 1 s, C28) */
  decKeysBackoffMs?: number;
  /** re-read status before getKey when the last read is older than this, ms; default 60000 */
  statusMaxAgeMs?: number;
  /** how many key_IDs to remember for reuse detection; default 65536 (protocol.md s3.4) */
  keyIdHistory?: number;
  /** [0,1) source for backoff jitter; default Math.random */
  random?: () => number;
}

interface Deadline {
  signal: AbortSignal;
  /** ms left, at least 1 (for passing on as a timeout) */
  remaining(): number;
  /** ms left, may be <= 0 */
  left(): number;
  cancel(): void;
}

type Op = 'status' | 'enc_keys' | 'dec_keys';

export class Etsi014KeySource implements KeySource {
  readonly #client: Etsi014Client;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #o: Required<Omit<Etsi014KeySourceOptions, 'clock' | 'logger'>>;
  readonly #retry: BackoffPolicy;
  readonly #health: KmeHealth;
  /** insertion-ordered: the oldest key_ID is evicted first */
  readonly #used = new Set<string>();
  readonly #pending = new Set<string>();
  readonly #statusAt = new Map<string, number>();
  readonly #live = new Set<AbortController>();
  #closed = false;

  /** Wraps `client`; throws KMS_CONFIG for non-positive numbers in `opts`. */
  constructor(client: Etsi014Client, opts: Etsi014KeySourceOptions = {}) {
    this.#client = client;
    this.#clock = opts.clock ?? systemClock;
    this.#log = (opts.logger ?? silentLogger).child({ component: 'keysource' });
    this.#o = {
      getKeyDeadlineMs: opts.getKeyDeadlineMs ?? DEFAULT_GET_KEY_DEADLINE_MS,
      getKeyByIdDeadlineMs: opts.getKeyByIdDeadlineMs ?? DEFAULT_GET_KEY_BY_ID_DEADLINE_MS,
      encKeysAttempts: opts.encKeysAttempts ?? 3,
      retryBackoffMs: opts.retryBackoffMs ?? 500,
      retryBackoffMaxMs: opts.retryBackoffMaxMs ?? 2000,
      retryMinAttemptMs: opts.retryMinAttemptMs ?? 1000,
      minSpacingMs: opts.minSpacingMs ?? 500,
      exhaustedBackoffMs: opts.exhaustedBackoffMs ?? 1000,
      exhaustedBackoffMaxMs: opts.exhaustedBackoffMaxMs ?? 30_000,
      decKeysAttempts: opts.decKeysAttempts ?? 4,
      decKeysBackoffMs: opts.decKeysBackoffMs ?? 100,
      statusMaxAgeMs: opts.statusMaxAgeMs ?? 60_000,
      keyIdHistory: opts.keyIdHistory ?? 65_536,
      random: opts.random ?? Math.random,
    };
    for (const k of ['getKeyDeadlineMs', 'getKeyByIdDeadlineMs', 'decKeysAttempts', 'encKeysAttempts', 'keyIdHistory'] as const) {
      if (!(this.#o[k] > 0)) throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeySource ${k} must be > 0, got ${this.#o[k]}`);
    }
    for (const k of ['retryBackoffMs', 'retryBackoffMaxMs', 'retryMinAttemptMs', 'minSpacingMs', 'exhaustedBackoffMs', 'exhaustedBackoffMaxMs', 'decKeysBackoffMs'] as const) {
      if (!(this.#o[k] >= 0) || !Number.isFinite(this.#o[k])) {
        throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeySource ${k} must be a finite number of ms >= 0, got ${this.#o[k]}`);
      }
    }
    this.#retry = { baseMs: this.#o.retryBackoffMs, maxMs: this.#o.retryBackoffMaxMs, floorMs: this.#o.minSpacingMs };
    this.#health = new KmeHealth({
      minSpacingMs: this.#o.minSpacingMs,
      exhausted: { baseMs: this.#o.exhaustedBackoffMs, maxMs: this.#o.exhaustedBackoffMaxMs },
      random: this.#o.random,
    });
  }

  /** True when `keyId` (case-insensitive) is among the remembered key_IDs. */
  wasUsed(keyId: string): boolean {
    return this.#used.has(normalizeKeyId(keyId));
  }

  /** Failure counts, gates and last error for `peerSaeId` (a copy; times are clock ms). */
  health(peerSaeId: string): KmeHealthSnapshot {
    return this.#health.snapshot(peerSaeId);
  }

  /**
   * One fresh 32-byte key for slave `peerSaeId`: getKeys(peerSaeId, 1, opts)[0].
   * Same retries, deadline and errors as getKeys.
   */
  async getKey(peerSaeId: string, opts: { deadlineMs?: number } = {}): Promise<QkdKey> {
    const [k] = await this.getKeys(peerSaeId, 1, opts);
    return k;
  }

  /**
   * 1..`count` fresh 32-byte keys for slave `peerSaeId` from ONE enc_keys (number `count`,
   * size 256 bits; the client lowers `count` to the KME's max_key_per_request), after a
   * status read when the last one is older than statusMaxAgeMs. Retries as described at
   * the top of this file, all within `deadlineMs` (default getKeyDeadlineMs, 8000 ms).
   *
   * Throws (details carry `peerSaeId`, `attempts`, `errors` = codes of every attempt):
   * KMS_UNAVAILABLE / KMS_CONNECT / KMS_TIMEOUT (transient, after the retries),
   * KMS_EXHAUSTED (not retried; also thrown without a request, details.suppressed, while
   * the exhaustion backoff runs), KMS_KEY_REUSED (key_ID seen before), KMS_KEY_INVALID,
   * KMS_PROTOCOL, KMS_STATUS_INVALID, KMS_AUTH, KMS_TLS, KMS_REQUEST, KMS_CONFIG
   * (`count` not a positive integer). On any failure every key of the reply is zeroized.
   */
  async getKeys(peerSaeId: string, count: number, opts: { deadlineMs?: number } = {}): Promise<QkdKey[]> {
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new QkdgwError(ErrorCodes.KMS_CONFIG, `getKeys count must be an integer >= 1, got ${count}`, { peerSaeId });
    }
    const dl = this.#deadline(opts.deadlineMs ?? this.#o.getKeyDeadlineMs);
    const errors: string[] = [];
    let attempt = 0;
    /** re-sends of a possibly-served enc_keys (transport BC-05 retries included): at most 1 */
    let lostResends = 0;
    try {
      await this.#gate(peerSaeId, 'enc_keys', dl);
      for (;;) {
        attempt++;
        let op: Op = 'status';
        try {
          const at = this.#statusAt.get(peerSaeId);
          if (at === undefined || this.#clock.now() - at > this.#o.statusMaxAgeMs) {
            await this.#client.status(peerSaeId, { signal: dl.signal, timeoutMs: dl.remaining() });
            this.#statusAt.set(peerSaeId, this.#clock.now());
          }
          op = 'enc_keys';
          const sr0 = this.#socketRetries();
          let keys: QkdKey[];
          try {
            keys = await this.#client.getKeys(
              peerSaeId,
              { number: count, sizeBits: QKD_KEY_BYTES * 8 },
              { signal: dl.signal, timeoutMs: dl.remaining(), socketRetry: lostResends === 0 },
            );
          } finally {
            // A BC-05 reconnect re-sent a possibly-served enc_keys: that was the one re-send.
            // (The counter is per client: a concurrent call may over-count, never under-count.)
            if (this.#socketRetries() > sr0) lostResends++;
          }
          const out = this.#acceptAll(keys, count, peerSaeId);
          this.#recovered(peerSaeId, 'enc_keys');
          this.#log.info(
            { op: 'enc_keys', peerSaeId, keyIds: out.map((k) => k.keyId), attempts: attempt },
            out.length === 1 ? 'QKD key obtained (master)' : `${out.length} QKD keys obtained (master)`,
          );
          return out;
        } catch (e) {
          const { kind } = classifyKmsError(e);
          errors.push(codeOf(e));
          this.#health.attemptFailed(peerSaeId, kind, codeOf(e), this.#clock.now(), { op, keys: count });
          let retry = kind === 'transient' && attempt < this.#o.encKeysAttempts && !dl.signal.aborted && !this.#closed;
          let resendOfLost = false;
          if (op === 'enc_keys' && (e as QkdgwError).details?.responseLost === true) {
            if (lostResends >= 1) retry = false;
            else resendOfLost = true;
          }
          if (retry) {
            const delay = backoffDelay(this.#retry, attempt, this.#o.random());
            if (dl.left() - delay >= this.#o.retryMinAttemptMs && (await this.#sleep(delay, dl.signal))) {
              if (resendOfLost) lostResends++;
              continue;
            }
          }
          throw this.#failed(peerSaeId, op, e, kind, attempt, errors, { count, lostResends });
        }
      }
    } finally {
      dl.cancel();
    }
  }

  /**
   * The 32-byte key `keyId` that master `peerSaeId` announced, via dec_keys. A key_ID this
   * source already handed out (or is fetching) is KMS_KEY_REUSED without asking the KME.
   * KMS_KEY_UNAVAILABLE is retried up to decKeysAttempts times with backoff, and transient
   * faults at minSpacingMs or more apart, all within deadlineMs (default 3000, protocol.md
   * s3.4); when attempts or time run out it throws KMS_KEY_UNAVAILABLE (details.attempts)
   * or the transient error. A key_ID that is not 1..64 printable ASCII is KMS_REQUEST.
   * Other client errors (KMS_AUTH, KMS_PROTOCOL, ...) are thrown at once; a deadline that
   * passes during a call is KMS_TIMEOUT.
   */
  async getKeyById(peerSaeId: string, keyId: string, opts: { deadlineMs?: number } = {}): Promise<QkdKey> {
    if (!isValidKeyId(keyId)) {
      throw new QkdgwError(ErrorCodes.KMS_REQUEST, 'announced key_ID is not 1..64 printable ASCII characters', { peerSaeId });
    }
    const n = normalizeKeyId(keyId);
    if (this.#used.has(n) || this.#pending.has(n)) {
      throw new QkdgwError(ErrorCodes.KMS_KEY_REUSED, `key_ID ${keyId} was already used; refusing it (BC-08)`, { peerSaeId, keyId });
    }
    this.#pending.add(n);
    const deadlineMs = opts.deadlineMs ?? this.#o.getKeyByIdDeadlineMs;
    const dl = this.#deadline(deadlineMs);
    const errors: string[] = [];
    let attempt = 0;
    try {
      await this.#gate(peerSaeId, 'dec_keys', dl);
      for (;;) {
        attempt++;
        try {
          const keys = await this.#client.getKeysWithIds(peerSaeId, [keyId], {
            sizeBits: QKD_KEY_BYTES * 8,
            signal: dl.signal,
            timeoutMs: dl.remaining(),
          });
          this.#pending.delete(n);
          const k = this.#accept(keys[0], 'dec_keys', peerSaeId);
          this.#recovered(peerSaeId, 'dec_keys');
          this.#log.info({ op: 'dec_keys', peerSaeId, keyId, attempts: attempt }, 'QKD key obtained (slave)');
          return k;
        } catch (e) {
          const { kind } = classifyKmsError(e);
          errors.push(codeOf(e));
          this.#health.attemptFailed(peerSaeId, kind, codeOf(e), this.#clock.now(), { op: 'dec_keys' });
          const go = !dl.signal.aborted && !this.#closed && attempt < this.#o.decKeysAttempts;
          if (kind === 'key_unavailable') {
            const delay = this.#o.decKeysBackoffMs * 2 ** (attempt - 1) * (0.75 + 0.5 * this.#o.random());
            let why = `from master ${peerSaeId} still unavailable after ${attempt} attempt(s) within ${deadlineMs} ms`;
            if (go && dl.left() > delay) {
              if (await this.#sleep(delay, dl.signal)) continue;
              why = `unavailable: deadline of ${deadlineMs} ms passed`;
            }
            const q = new QkdgwError(
              ErrorCodes.KMS_KEY_UNAVAILABLE,
              `key_ID ${keyId} ${why}`,
              { ...((e as QkdgwError).details ?? {}), peerSaeId, keyId, attempts: attempt, retryable: false },
              { cause: e },
            );
            throw this.#failed(peerSaeId, 'dec_keys', q, kind, attempt, errors, { keyId }, true);
          }
          if (kind === 'transient' && go) {
            const delay = backoffDelay(this.#retry, attempt, this.#o.random());
            if (dl.left() - delay >= Math.min(this.#o.retryMinAttemptMs, deadlineMs / 3) && (await this.#sleep(delay, dl.signal))) continue;
          }
          throw this.#failed(peerSaeId, 'dec_keys', e, kind, attempt, errors, { keyId });
        }
      }
    } finally {
      this.#pending.delete(n);
      dl.cancel();
    }
  }

  /**
   * Status for slave `peerSaeId` (client.status), also refreshing the status age used by
   * getKey. Obeys the spacing gate (waits, or throws details.suppressed when the wait
   * does not fit `deadlineMs`, default the client's timeoutMs). A failure closes the
   * spacing gate when transient and is remembered as lastError, but is not logged here
   * (the caller, e.g. KeyPool, logs its status checks) and not counted in the key-call
   * failure counts. Throws every client error (KMS_TIMEOUT, KMS_STATUS_INVALID, ...).
   */
  async status(peerSaeId: string, opts: { deadlineMs?: number } = {}): Promise<KmeStatus> {
    const dl = this.#deadline(opts.deadlineMs ?? this.#client.timeoutMs);
    try {
      await this.#gate(peerSaeId, 'status', dl);
      try {
        const s = await this.#client.status(peerSaeId, { signal: dl.signal, timeoutMs: dl.remaining() });
        this.#statusAt.set(peerSaeId, this.#clock.now());
        if (s.stored_key_count >= 1 && this.#health.keysAvailable(peerSaeId)) {
          this.#log.info({ event: 'kme_exhaustion_cleared', peer: peerSaeId, stored_key_count: s.stored_key_count }, `KME status shows ${s.stored_key_count} stored keys for ${peerSaeId}: enc_keys allowed again`);
        }
        return s;
      } catch (e) {
        const { kind } = classifyKmsError(e);
        this.#health.attemptFailed(peerSaeId, kind, codeOf(e), this.#clock.now(), { op: 'status' });
        this.#health.noteError(peerSaeId, this.#lastError('status', e, kind));
        throw e;
      }
    } finally {
      dl.cancel();
    }
  }

  /** Aborts pending waits and closes the client. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const ac of this.#live) ac.abort();
    await this.#client.close();
  }

  /**
   * Waits for the peer's gate when it opens in time (leaving retryMinAttemptMs, or a third
   * of a shorter deadline, for the call); otherwise throws without calling the KME.
   */
  async #gate(peerSaeId: string, op: Op, dl: Deadline): Promise<void> {
    const w = this.#health.waitMs(peerSaeId, op, this.#clock.now());
    if (w <= 0) return;
    const keep = Math.min(this.#o.retryMinAttemptMs, dl.left() / 3);
    if (w <= dl.left() - keep) {
      // Wait in slices and re-read the gate: a status check that shows keys again opens it
      // early (keysAvailable), and the waiting call must go then, not at the old deadline.
      for (;;) {
        const left = this.#health.waitMs(peerSaeId, op, this.#clock.now());
        if (left <= 0) return;
        if (left > dl.left() - keep) break; // another failure pushed the gate past our deadline
        if (!(await this.#sleep(Math.min(left, GATE_SLICE_MS), dl.signal))) break;
      }
    }
    if (this.#closed) throw new QkdgwError(ErrorCodes.INTERNAL, 'KeySource closed', { op, peerSaeId });
    const s = this.#health.suppressed(peerSaeId);
    const code = (this.#health.gateCode(peerSaeId, op) ?? ErrorCodes.KMS_UNAVAILABLE) as ErrorCode;
    this.#log.debug({ event: 'kme_call_suppressed', op, peerSaeId, code, retryInMs: Math.round(w), suppressed: s.suppressed });
    throw new QkdgwError(
      code,
      `KME ${op} for ${peerSaeId} not sent: backing off ${Math.round(w)} ms more after ${s.consecutiveFailures} consecutive failed call(s) (last: ${code})`,
      { op, peerSaeId, suppressed: true, retryInMs: Math.round(w), retryable: true },
    );
  }

  #socketRetries(): number {
    return (this.#client as { socketRetries?: number }).socketRetries ?? 0;
  }

  #lastError(op: Op, e: unknown, kind: KmsErrorKind) {
    return { op, code: codeOf(e), kind, message: e instanceof Error ? e.message : String(e), at: this.#clock.now() };
  }

  /** Ends a failure streak with one `kme_recovered` line. */
  #recovered(peerSaeId: string, op: 'enc_keys' | 'dec_keys'): void {
    const streak = this.#health.callSucceeded(peerSaeId, op);
    if (streak > 0) {
      this.#log.info(
        { event: 'kme_recovered', op, peerSaeId, failedCalls: streak, totalFailures: this.#health.snapshot(peerSaeId).totalFailures },
        `KME ${op} for ${peerSaeId} works again after ${streak} failed call(s)`,
      );
    }
  }

  /**
   * Counts a failed call, logs its ONE `kme_call_failed` line (BC-26) and returns the
   * error to throw: QkdgwErrors get details `peerSaeId`, `attempts` and `errors` added.
   */
  #failed(
    peerSaeId: string,
    op: Op,
    e: unknown,
    kind: KmsErrorKind,
    attempts: number,
    errors: string[],
    extra: Record<string, unknown>,
    prepared = false,
  ): unknown {
    const s = this.#health.callFailed(peerSaeId, this.#lastError(op, e, kind));
    const retryInMs = Math.round(this.#health.waitMs(peerSaeId, op === 'dec_keys' ? 'dec_keys' : 'enc_keys', this.#clock.now()));
    const code = codeOf(e);
    const level = kind === 'transient' || kind === 'exhausted' || kind === 'key_unavailable' ? 'warn' : 'error';
    const keyId = (e as QkdgwError).details?.keyId ?? extra.keyId;
    this.#log[level](
      {
        event: 'kme_call_failed',
        op,
        peerSaeId,
        code,
        kind,
        attempts,
        errors,
        consecutiveFailures: s.consecutiveFailures,
        totalFailures: s.totalFailures,
        retryInMs,
        ...(keyId === undefined ? {} : { keyId }),
        ...(extra.lostResends ? { lostResends: extra.lostResends } : {}),
      },
      `KME ${op} for ${peerSaeId} failed (${code}, ${attempts} attempt(s)); ${s.consecutiveFailures} failed call(s) in a row, ${s.totalFailures} in total`,
    );
    if (!(e instanceof QkdgwError)) return e;
    if (prepared) return e;
    return new QkdgwError(e.code, e.message, { ...(e.details ?? {}), peerSaeId, attempts, errors }, { cause: e });
  }

  /** Count, length and reuse checks on a whole enc_keys reply; all keys zeroized on any refusal. */
  #acceptAll(keys: QkdKey[], count: number, peerSaeId: string): QkdKey[] {
    if (keys.length < 1 || keys.length > count) {
      for (const k of keys) k.key.wipe();
      throw new QkdgwError(ErrorCodes.KMS_PROTOCOL, `enc_keys returned ${keys.length} keys, 1..${count} expected`, { peerSaeId });
    }
    const out: QkdKey[] = [];
    try {
      for (const k of keys) out.push(this.#accept(k, 'enc_keys', peerSaeId));
      return out;
    } catch (e) {
      // The accepted ones stay recorded as used: burned, never handed out.
      for (const k of keys) k.key.wipe();
      throw e;
    }
  }

  /** Length and reuse checks; records the key_ID. Zeroizes the key on refusal. */
  #accept(k: QkdKey, op: 'enc_keys' | 'dec_keys', peerSaeId: string): QkdKey {
    if (k.key.length !== QKD_KEY_BYTES) {
      k.key.wipe();
      throw new QkdgwError(ErrorCodes.KMS_KEY_INVALID, `${op} key ${k.keyId} is ${k.key.length} bytes, ${QKD_KEY_BYTES} required`, {
        peerSaeId,
        keyId: k.keyId,
      });
    }
    const n = normalizeKeyId(k.keyId);
    if (this.#used.has(n) || this.#pending.has(n)) {
      k.key.wipe();
      throw new QkdgwError(ErrorCodes.KMS_KEY_REUSED, `${op} returned key_ID ${k.keyId}, which was already used; key discarded (BC-08)`, {
        peerSaeId,
        keyId: k.keyId,
      });
    }
    this.#used.add(n);
    if (this.#used.size > this.#o.keyIdHistory) {
      const oldest = this.#used.values().next().value as string;
      this.#used.delete(oldest);
    }
    return k;
  }

  #deadline(ms: number): Deadline {
    const ac = new AbortController();
    const end = this.#clock.now() + ms;
    this.#live.add(ac);
    if (this.#closed) ac.abort();
    const cancel = this.#clock.setTimer(ms, () => ac.abort());
    return {
      signal: ac.signal,
      remaining: () => Math.max(1, end - this.#clock.now()),
      left: () => end - this.#clock.now(),
      cancel: () => {
        cancel();
        this.#live.delete(ac);
      },
    };
  }

  /** Resolves true after `ms`, false at once if `signal` aborts first. */
  #sleep(ms: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => {
        cancel();
        resolve(false);
      };
      const cancel = this.#clock.setTimer(ms, () => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      });
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function codeOf(e: unknown): string {
  return e instanceof QkdgwError ? e.code : e instanceof Error ? e.name : 'unknown';
}
