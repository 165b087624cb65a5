/**
 * KeySource: what the daemon hands the tunnel to obtain QKD keys (architecture.md L3;
 * protocol.md s3.1, s3.4). The tunnel never sees HTTP: it asks for one fresh 256-bit key
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
 * - bounded dec_keys retries on KMS_KEY_UNAVAILABLE (C28, BC-02): default 3 retries (4 attempts), all
 *   inside one deadline (default 3000 ms) and within 1 s, jittered exponential backoff from 100 ms.
 */
import { ErrorCodes, QkdgwError, isQkdgwError } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { Etsi014Client } from './etsi014/client.js';
import { isValidKeyId, normalizeKeyId } from './etsi014/key-id.js';
import type { KmeStatus, QkdKey } from './etsi014/types.js';

export type { KmeStatus, QkdKey } from './etsi014/types.js';

/** QKD key length the tunnel mixes in: 256 bits (protocol.md s3.1). */
export const QKD_KEY_BYTES = 32;

export interface KeySource {
  /** master side (initiator): one fresh 256-bit key for the slave SAE `peerSaeId` */
  getKey(peerSaeId: string, opts?: { deadlineMs?: number }): Promise<QkdKey>;
  /** slave side (responder): the key `keyId` announced by master `peerSaeId`; bounded retries on
   *  KMS_KEY_UNAVAILABLE (default 3 retries, all within deadlineMs, default 3000 ms) (C28) */
  getKeyById(peerSaeId: string, keyId: string, opts?: { deadlineMs?: number }): Promise<QkdKey>;
  status(peerSaeId: string): Promise<KmeStatus>;
  close(): Promise<void>;
}

export interface Etsi014KeySourceOptions {
  /** timers for deadlines and backoff; default systemClock */
  clock?: Clock;
  logger?: Logger;
  /** getKey deadline when the caller gives none, ms; default the client's timeoutMs */
  getKeyDeadlineMs?: number;
  /** getKeyById deadline when the caller gives none, ms; default 3000 (protocol.md s3.4) */
  getKeyByIdDeadlineMs?: number;
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
  remaining(): number;
  cancel(): void;
}

export class Etsi014KeySource implements KeySource {
  readonly #client: Etsi014Client;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #o: Required<Omit<Etsi014KeySourceOptions, 'clock' | 'logger'>>;
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
      getKeyDeadlineMs: opts.getKeyDeadlineMs ?? client.timeoutMs,
      getKeyByIdDeadlineMs: opts.getKeyByIdDeadlineMs ?? 3000,
      decKeysAttempts: opts.decKeysAttempts ?? 4,
      decKeysBackoffMs: opts.decKeysBackoffMs ?? 100,
      statusMaxAgeMs: opts.statusMaxAgeMs ?? 60_000,
      keyIdHistory: opts.keyIdHistory ?? 65_536,
      random: opts.random ?? Math.random,
    };
    for (const k of ['getKeyDeadlineMs', 'getKeyByIdDeadlineMs', 'decKeysAttempts', 'keyIdHistory'] as const) {
      if (!(this.#o[k] > 0)) throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KeySource ${k} must be > 0, got ${this.#o[k]}`);
    }
  }

  /** True when `keyId` (case-insensitive) is among the remembered key_IDs. */
  wasUsed(keyId: string): boolean {
    return this.#used.has(normalizeKeyId(keyId));
  }

  /**
   * One fresh 32-byte key for slave `peerSaeId` via enc_keys (number 1, size 256), after
   * a status read when the last one is older than statusMaxAgeMs. All within deadlineMs.
   * Throws KMS_KEY_REUSED (key_ID seen before; key zeroized), KMS_KEY_INVALID, KMS_TIMEOUT,
   * KMS_STATUS_INVALID, KMS_CONFIG and every client error.
   */
  async getKey(peerSaeId: string, opts: { deadlineMs?: number } = {}): Promise<QkdKey> {
    const dl = this.#deadline(opts.deadlineMs ?? this.#o.getKeyDeadlineMs);
    try {
      const at = this.#statusAt.get(peerSaeId);
      if (at === undefined || this.#clock.now() - at > this.#o.statusMaxAgeMs) {
        await this.#readStatus(peerSaeId, dl);
      }
      const keys = await this.#client.getKeys(
        peerSaeId,
        { number: 1, sizeBits: QKD_KEY_BYTES * 8 },
        { signal: dl.signal, timeoutMs: dl.remaining() },
      );
      if (keys.length !== 1) {
        for (const k of keys) k.key.wipe();
        throw new QkdgwError(ErrorCodes.KMS_PROTOCOL, `enc_keys returned ${keys.length} keys, 1 expected`, { peerSaeId });
      }
      const k = this.#accept(keys[0], 'enc_keys', peerSaeId);
      this.#log.info({ op: 'enc_keys', peerSaeId, keyId: k.keyId }, 'QKD key obtained (master)');
      return k;
    } finally {
      dl.cancel();
    }
  }

  /**
   * The 32-byte key `keyId` that master `peerSaeId` announced, via dec_keys. A key_ID this
   * source already handed out (or is fetching) is KMS_KEY_REUSED without asking the KME.
   * KMS_KEY_UNAVAILABLE is retried up to decKeysAttempts times with backoff, all within
   * deadlineMs (default 3000); when attempts or time run out it throws KMS_KEY_UNAVAILABLE
   * (details.attempts). A key_ID that is not 1..64 printable ASCII is KMS_REQUEST.
   * Other client errors (KMS_TIMEOUT, KMS_AUTH, ...) are thrown at once.
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
    let attempt = 0;
    try {
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
          this.#log.info({ op: 'dec_keys', peerSaeId, keyId, attempts: attempt }, 'QKD key obtained (slave)');
          return k;
        } catch (e) {
          if (!isQkdgwError(e, ErrorCodes.KMS_KEY_UNAVAILABLE)) throw e;
          const delay = this.#o.decKeysBackoffMs * 2 ** (attempt - 1) * (0.75 + 0.5 * this.#o.random());
          if (attempt >= this.#o.decKeysAttempts || dl.remaining() <= delay || this.#closed) {
            throw new QkdgwError(
              ErrorCodes.KMS_KEY_UNAVAILABLE,
              `key_ID ${keyId} from master ${peerSaeId} still unavailable after ${attempt} attempt(s) within ${deadlineMs} ms`,
              { ...(e.details ?? {}), peerSaeId, keyId, attempts: attempt, retryable: false },
              { cause: e },
            );
          }
          this.#log.debug({ op: 'dec_keys', peerSaeId, keyId, attempt, delayMs: Math.round(delay) }, 'key_ID not yet available; retrying');
          if (!(await this.#sleep(delay, dl.signal))) {
            throw new QkdgwError(ErrorCodes.KMS_KEY_UNAVAILABLE, `key_ID ${keyId} unavailable: deadline of ${deadlineMs} ms passed`, {
              peerSaeId,
              keyId,
              attempts: attempt,
              retryable: false,
            }, { cause: e });
          }
        }
      }
    } finally {
      this.#pending.delete(n);
      dl.cancel();
    }
  }

  /** Status for slave `peerSaeId` (client.status), also refreshing the status age used by getKey. */
  async status(peerSaeId: string): Promise<KmeStatus> {
    const s = await this.#client.status(peerSaeId);
    this.#statusAt.set(peerSaeId, this.#clock.now());
    return s;
  }

  /** Aborts pending waits and closes the client. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const ac of this.#live) ac.abort();
    await this.#client.close();
  }

  async #readStatus(peerSaeId: string, dl: Deadline): Promise<void> {
    await this.#client.status(peerSaeId, { signal: dl.signal, timeoutMs: dl.remaining() });
    this.#statusAt.set(peerSaeId, this.#clock.now());
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
      this.#log.error({ op, peerSaeId, keyId: k.keyId }, 'KME returned a key_ID already used; key discarded (BC-08)');
      throw new QkdgwError(ErrorCodes.KMS_KEY_REUSED, `${op} returned key_ID ${k.keyId}, which was already used; key discarded`, {
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
    const cancel = this.#clock.setTimer(ms, () => ac.abort());
    return {
      signal: ac.signal,
      remaining: () => Math.max(1, end - this.#clock.now()),
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
