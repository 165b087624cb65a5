/**
 * The three ETSI GS QKD 014 methods on one KME of the pair: Get status (s5.2),
 * Get key (s5.3, `enc_keys`) and Get key with key IDs (s5.4, `dec_keys`).
 *
 * Inputs are already authenticated (caller SAE ID from the client certificate) and
 * parsed. Each handler runs synchronously from check to consumption, which is what
 * serialises consumption in Node's single thread (etsi014.md S31).
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { SecretBytes } from '../../util/secret.js';
import { MSG_INSUFFICIENT, MSG_KEYS_NOT_FOUND } from './constants.js';
import type { Reply } from './http.js';
import type { KeyPool } from './link.js';
import type { ResolvedEndpoint, ResolvedKmeSimConfig } from './options.js';
import { MSG_KEY_NOT_FOUND_404, type KmeQuirks } from './quirks.js';
import type { PendingKey, PendingKeyStore } from './store.js';
import type { KeyRequest } from './validation.js';

export type DeliverySide = 'enc' | 'dec';

/** Everything one KME's handlers need. `self`/`peer` are this KME and the other end. */
export interface KmeContext {
  self: ResolvedEndpoint;
  peer: ResolvedEndpoint;
  selfSaes: ReadonlySet<string>;
  peerSaes: ReadonlySet<string>;
  config: ResolvedKmeSimConfig;
  /** The quirk modes now (live: the control API changes them between requests). */
  quirks: Readonly<KmeQuirks>;
  /**
   * True (and counts one down) when the next key this KME hands out must reach the slave
   * with other bytes (faults.ts `mismatchNext`, counted on the peer KME, which delivers it).
   */
  takeMismatch(): boolean;
  pool: KeyPool;
  store: PendingKeyStore;
  clock: Clock;
  logger: Logger;
  /** Called after keys were handed out (never with bytes in any log). */
  delivered(side: DeliverySide, master: string, slave: string, keys: readonly PendingKey[]): void;
  /** Test-only key ledger (key-ledger.ts): sees the bytes of each key once, as issued. */
  issued?(key: Buffer): void;
}

const unknownSlave = (slave: string): Reply => ({
  status: 400,
  body: { message: 'unknown slave_SAE_ID: not attached to the peer KME of this link', details: [{ slave_SAE_ID: slave }] },
});

/**
 * Status (s6.1, T9) for master `caller` and slave `slave` (etsi014.md S7, S8, S10).
 * 400 when `slave` is not attached to the other KME of the link.
 */
export function handleStatus(ctx: KmeContext, caller: string, slave: string): Reply {
  if (!ctx.peerSaes.has(slave)) return unknownSlave(slave);
  const l = ctx.config.link;
  return {
    status: 200,
    body: {
      source_KME_ID: ctx.self.kmeId,
      target_KME_ID: ctx.peer.kmeId,
      master_SAE_ID: caller,
      slave_SAE_ID: slave,
      key_size: l.keySizeBits,
      stored_key_count: ctx.pool.storedKeyCount(),
      max_key_count: ctx.pool.maxKeyCount,
      max_key_per_request: l.maxKeyPerRequest,
      max_key_size: l.maxKeySizeBits,
      min_key_size: l.minKeySizeBits,
      max_SAE_ID_count: 0,
    },
  };
}

function freshKeyId(store: PendingKeyStore): string {
  // UUIDv4 (etsi014.md A13). A collision is astronomically unlikely; still never reuse one.
  for (;;) {
    const id = randomUUID();
    if (!store.has(id)) return id;
  }
}

/**
 * Get key for master `caller` and slave `slave`: takes `req.number` keys of
 * `req.sizeBits` from the link pool and registers each at the slave's KME for exactly
 * (caller, slave) (etsi014.md S11, S12, S17, S19). Exhaustion answers per
 * `quirks.exhaustion` (default 503 `insufficient key material`) and takes nothing.
 */
export function handleEncKeys(ctx: KmeContext, caller: string, slave: string, req: KeyRequest): Reply {
  if (!ctx.peerSaes.has(slave)) return unknownSlave(slave);
  let count = req.number;
  const mode = ctx.quirks.exhaustion;
  if (mode === 'partial-200') count = Math.min(count, ctx.pool.keysAvailable(req.sizeBits));
  if (!ctx.pool.take(count, req.sizeBits)) {
    return { status: mode === '400' ? 400 : 503, body: { message: MSG_INSUFFICIENT } };
  }
  const now = ctx.clock.now();
  const keys: PendingKey[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = SecretBytes.adopt(randomFillSync(Buffer.allocUnsafeSlow(req.sizeBits / 8)));
    ctx.issued?.(bytes.expose());
    keys.push({ key_ID: freshKeyId(ctx.store), master: caller, slave, sizeBits: req.sizeBits, bytes, createdAt: now });
  }
  // Serialise before the store may drop (and wipe) old entries.
  const body = { keys: keys.map((k) => ({ key_ID: k.key_ID, key: k.bytes.expose().toString('base64') })) };
  misKey(ctx, keys);
  const dropped = ctx.store.add(keys);
  if (dropped.length > 0) {
    ctx.logger.warn(
      { event: 'kme_pending_dropped', kme: ctx.self.kmeId, key_IDs: dropped.map((k) => k.key_ID) },
      'oldest undelivered keys dropped: pending limit reached',
    );
  }
  ctx.delivered('enc', caller, slave, keys);
  return { status: 200, body, secret: true };
}

/**
 * Fault `mismatchNext` (faults.ts): the slave's copy of the next keys gets other random
 * bytes, after the master's answer was serialised from the true ones.
 */
function misKey(ctx: KmeContext, keys: PendingKey[]): void {
  for (const k of keys) {
    if (!ctx.takeMismatch()) return;
    const other = randomFillSync(Buffer.allocUnsafeSlow(k.bytes.length));
    // Equal by chance only with probability 2^-(8*length); make even that impossible.
    if (other.equals(k.bytes.expose())) other[0] ^= 1;
    ctx.issued?.(other);
    k.bytes.wipe();
    k.bytes = SecretBytes.adopt(other);
    ctx.logger.info({ event: 'kme_fault_injected', kme: ctx.peer.kmeId, master_kme: ctx.self.kmeId, fault: 'mismatch', key_ID: k.key_ID });
  }
}

/** The answer for key_IDs that cannot be returned: spec 400, or the `unknownId404` quirk. */
function notFound(ctx: KmeContext, keyIds: string[]): Reply {
  if (ctx.quirks.unknownId404) return { status: 404, body: { message: MSG_KEY_NOT_FOUND_404 } };
  return { status: 400, body: { message: MSG_KEYS_NOT_FOUND, details: keyIds.map((id) => ({ key_ID_not_found: id })) } };
}

/**
 * Get key with key IDs for slave `caller`, `pathSae` being the SAE ID in the URL (the
 * master's, per spec): returns and removes every named key, or none (etsi014.md S21-S24,
 * A8-A10). 401 without body when the caller is not the slave of a named key (T7); 400
 * with the spec message when any is unknown, already delivered or under another master.
 * Quirks `decKeysPathSlave`, `decKeysNonConsuming` and `unknownId404` change this as
 * described in quirks.ts.
 */
export function handleDecKeys(ctx: KmeContext, caller: string, pathSae: string, keyIds: string[]): Reply {
  let master: string | null = pathSae;
  if (ctx.quirks.decKeysPathSlave) {
    // The IDQ form: the path names the slave itself, and any master's key is served.
    if (pathSae !== caller) return notFound(ctx, keyIds);
    master = null;
  }
  const consume = !ctx.quirks.decKeysNonConsuming;
  const r = ctx.store.claim(keyIds, caller, master, { consume });
  if (r.kind === 'unauthorized') return { status: 401 };
  if (r.kind === 'not_found') return notFound(ctx, r.key_IDs);
  const body = { keys: r.keys.map((k) => ({ key_ID: k.key_ID, key: k.bytes.expose().toString('base64') })) };
  const masters = [...new Set(r.keys.map((k) => k.master))];
  for (const m of masters) ctx.delivered('dec', m, caller, r.keys.filter((k) => k.master === m));
  // Non-consumed keys stay in the store and keep their bytes for the next fetch.
  if (consume) for (const k of r.keys) k.bytes.wipe();
  return { status: 200, body, secret: true };
}
