/**
 * Keys handed to a master SAE by `enc_keys` and waiting for its slave's `dec_keys`.
 *
 * Each key is deliverable exactly once, only to its slave SAE, only under its master SAE
 * (ETSI GS QKD 014 s5.4 / T7: "removed from key pool" on both sides; etsi014.md A8,
 * S21-S24). Claims are all-or-nothing (A10). Everything here is synchronous, so in
 * Node's single thread a check and its removal can never interleave with another
 * request (S31).
 */
import { SecretBytes } from '../../util/secret.js';

export interface PendingKey {
  key_ID: string;
  master: string;
  slave: string;
  sizeBits: number;
  /** The key bytes (sizeBits / 8); wiped when delivered or dropped. */
  bytes: SecretBytes;
  /** clock.now() at enc_keys, ms. */
  createdAt: number;
}

export type ClaimResult =
  | { kind: 'ok'; keys: PendingKey[] }
  /** The caller is not the slave of at least one named key (T7: 401). */
  | { kind: 'unauthorized' }
  /** Unknown, already delivered, or registered under another master. */
  | { kind: 'not_found'; key_IDs: string[] };

export class PendingKeyStore {
  readonly #keys = new Map<string, PendingKey>();
  readonly #max: number;

  constructor(maxPending: number) {
    this.#max = maxPending;
  }

  get size(): number {
    return this.#keys.size;
  }

  has(keyId: string): boolean {
    return this.#keys.has(keyId);
  }

  /**
   * Registers freshly delivered master-side keys for their slave.
   * @returns the pending keys dropped (oldest first) to stay within the limit; their
   *   bytes are already wiped
   */
  add(keys: PendingKey[]): PendingKey[] {
    for (const k of keys) this.#keys.set(k.key_ID, k);
    const dropped: PendingKey[] = [];
    // Map iteration is insertion order, so the first entries are the oldest.
    for (const [id, k] of this.#keys) {
      if (this.#keys.size <= this.#max) break;
      this.#keys.delete(id);
      k.bytes.wipe();
      dropped.push(k);
    }
    return dropped;
  }

  /**
   * Removes and returns the keys named by `keyIds` for slave `caller` under master
   * `master`, or nothing at all. `keyIds` must be free of duplicates (the caller checks).
   * The caller owns the returned bytes and must wipe them.
   *
   * Quirk forms (quirks.ts): `master` null accepts keys of any master (`decKeysPathSlave`);
   * `consume: false` leaves the keys in the store (`decKeysNonConsuming`), and then the
   * caller must NOT wipe the returned bytes.
   */
  claim(keyIds: string[], caller: string, master: string | null, opts: { consume?: boolean } = {}): ClaimResult {
    const found: PendingKey[] = [];
    const missing: string[] = [];
    let unauthorized = false;
    for (const id of keyIds) {
      const k = this.#keys.get(id);
      if (!k) missing.push(id);
      else if (k.slave !== caller) unauthorized = true;
      else if (master !== null && k.master !== master) missing.push(id);
      else found.push(k);
    }
    if (unauthorized) return { kind: 'unauthorized' };
    if (missing.length > 0) return { kind: 'not_found', key_IDs: missing };
    if (opts.consume !== false) for (const k of found) this.#keys.delete(k.key_ID);
    return { kind: 'ok', keys: found };
  }

  /** Number of pending keys per `group(key)` value, e.g. per direction of the link. */
  countBy(group: (k: PendingKey) => string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of this.#keys.values()) {
      const g = group(k);
      out[g] = (out[g] ?? 0) + 1;
    }
    return out;
  }

  /** Wipes and forgets every pending key. @returns how many there were */
  clear(): number {
    const n = this.#keys.size;
    for (const k of this.#keys.values()) k.bytes.wipe();
    this.#keys.clear();
    return n;
  }
}
