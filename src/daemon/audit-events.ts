/**
 * From the gateway's structured log events to key audit events (issue 5). The sources:
 * src/tunnel/core/session.ts (SessionAction `log`: handshake_started, epoch_next,
 * epoch_switch, epoch_discarded, handshake_failed, qkd_key_discarded, qkd_degraded,
 * qkd_restored, qkd_step_down, epoch_hard_limit), src/tunnel/io/peer.ts (epochs_zeroized,
 * when a runtime closes: stop, peer removed or rebuilt) and src/kms/key-pool.ts
 * (key_pool_fetched, key_pool_expired, key_pool_closed). Every other event maps to nothing.
 *
 * One audit record per key_ID: an event naming two key_IDs gives two records, one naming
 * none gives one record without key_ID. Only key_IDs, epochs, modes and short reasons are
 * copied, field by field; nothing else of `fields` reaches the trail.
 */
import { isValidKeyId } from '../kms/etsi014/key-id.js';
import type { AuditEvent, AuditMode, RecordableEventName } from './audit-format.js';

/** protocol.md s3.1 mode bit 1: no QKD key in this epoch. */
const MODE_DEGRADED = 0x02;

/** How many epochs' key_IDs the mapper remembers per peer (slots hold at most 3). */
const REMEMBER_PER_PEER = 8;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** key_IDs from a `key_IDs`/`keyIds` array or one `key_ID`; invalid entries are left out. */
function keyIds(v: unknown): string[] {
  if (typeof v === 'string') return isValidKeyId(v) ? [v] : [];
  return Array.isArray(v) ? v.filter((x): x is string => isValidKeyId(x)) : [];
}

/** The session's mode: 'qkd' | 'degraded', or the INIT mode bits (number). */
function mode(v: unknown): AuditMode | undefined {
  if (v === 'qkd' || v === 'degraded') return v;
  if (typeof v === 'number') return (v & MODE_DEGRADED) !== 0 ? 'degraded' : 'qkd';
  return undefined;
}

interface Base {
  event: RecordableEventName;
  epoch?: number;
  mode?: AuditMode;
  reason?: string;
}

/** One event per key_ID (or one without key_ID), undefined fields left out. */
function perKey(peer: string, b: Base, ids: readonly string[]): AuditEvent[] {
  const one = (key_ID: string | undefined): AuditEvent => {
    const e: AuditEvent = { event: b.event, peer };
    if (key_ID !== undefined) e.key_ID = key_ID;
    if (b.epoch !== undefined) e.epoch = b.epoch;
    if (b.mode !== undefined) e.mode = b.mode;
    if (b.reason !== undefined) e.reason = b.reason;
    return e;
  };
  return ids.length ? ids.map(one) : [one(undefined)];
}

/**
 * The audit events one log event means, without memory: `epoch_zeroized` records carry
 * no key_ID here (use {@link AuditLogMapper}, which remembers each epoch's key_IDs).
 * `event` is the log line's `event`, `fields` the rest of it, `peer` the peer gateway's
 * identity (the `peer` binding of PeerRuntime's logger). Returns [] for events that are
 * not key lifecycle events. Never throws.
 */
export function auditFromLogEvent(event: string, fields: Record<string, unknown>, peer: string): AuditEvent[] {
  return new AuditLogMapper().map(event, fields, peer);
}

/**
 * auditFromLogEvent with memory: it keeps the key_IDs of the epochs it saw derived or
 * installed (epoch_next, epoch_switch; at most 8 per peer), so the `epoch_zeroized`
 * records of an eviction (`epoch_switch` field `evicted`) or a discard (`epoch_discarded`)
 * name the key_IDs whose epoch secrets were wiped.
 */
export class AuditLogMapper {
  readonly #epochKeys = new Map<string, Map<number, string[]>>();

  /** Copies what `other` remembers (epochs and their key_IDs), e.g. when a reload opens a new trail file. */
  adopt(other: AuditLogMapper): void {
    for (const [peer, m] of other.#epochKeys) this.#epochKeys.set(peer, new Map(m));
  }

  /** See {@link auditFromLogEvent}. Never throws. */
  map(event: string, fields: Record<string, unknown>, peer: string): AuditEvent[] {
    const f = fields;
    const epoch = num(f.epoch);
    switch (event) {
      case 'key_pool_fetched':
        return keyIds(f.keyIds).map((key_ID) => ({ event: 'key_fetched', peer, key_ID, reason: 'enc_keys (key pool)' }));
      case 'handshake_started':
        return perKey(peer, { event: 'handshake_started', epoch, mode: mode(f.mode), reason: str(f.reason) }, []);
      case 'epoch_next': {
        const ids = keyIds(f.key_IDs);
        this.#remember(peer, epoch, ids);
        return perKey(peer, { event: 'epoch_next', epoch, mode: mode(f.mode), reason: 'derived by the responder; key confirmation pending' }, ids);
      }
      case 'epoch_switch': {
        const ids = keyIds(f.key_IDs);
        this.#remember(peer, epoch, ids);
        const m = f.degraded === true ? 'degraded' : mode(f.mode);
        const why = [str(f.role), str(f.why)].filter(Boolean).join(': ');
        const out = perKey(peer, { event: 'epoch_switch', epoch, mode: m, reason: why || undefined }, ids);
        const ev = num(f.evicted);
        if (ev !== undefined) {
          const reason = `evicted when epoch ${epoch ?? '?'} was installed (a carrier still pinning it keeps its receive secret until it ends or hard limit + carrier_hold)`;
          out.push(...perKey(peer, { event: 'epoch_zeroized', epoch: ev, reason }, this.#forget(peer, ev)));
        }
        return out;
      }
      case 'epochs_zeroized': {
        // The runtime closed (stop, peer removed or rebuilt): every epoch it held, and any the
        // trail still remembers for this peer, ends here.
        const named = Array.isArray(f.epochs) ? f.epochs.filter((n): n is number => typeof n === 'number') : [];
        const all = [...new Set([...named, ...this.#remembered(peer)])].sort((a, b) => a - b);
        const reason = `runtime closed: ${str(f.reason) ?? 'shutdown'}`;
        return all.flatMap((n) => perKey(peer, { event: 'epoch_zeroized', epoch: n, reason }, this.#forget(peer, n)));
      }
      case 'epoch_discarded':
        return perKey(peer, { event: 'epoch_zeroized', epoch, reason: `discarded before use: ${str(f.reason) ?? 'no reason given'}` }, this.#forget(peer, epoch));
      case 'handshake_failed': {
        const ids = keyIds(f.key_IDs);
        if (!ids.length) return [];
        if (epoch !== undefined) this.#forget(peer, epoch);
        return perKey(peer, { event: 'key_discarded', epoch, reason: `handshake failed: ${str(f.reason) ?? 'no reason given'}` }, ids);
      }
      case 'qkd_key_discarded': {
        const ids = keyIds(f.key_ID);
        return ids.length ? perKey(peer, { event: 'key_discarded', reason: str(f.reason) }, ids) : [];
      }
      // One record per key_ID, so every key_fetched has its disposal on record.
      case 'key_pool_expired': {
        const ids = keyIds(f.keyIds);
        const reason = 'pooled key older than the maximum key age';
        return ids.length ? perKey(peer, { event: 'pool_keys_zeroized', reason }, ids) : [{ event: 'pool_keys_zeroized', peer, reason: `${num(f.discarded) ?? 'some'} ${reason}s` }];
      }
      case 'key_pool_closed': {
        const ids = keyIds(f.keyIds);
        const n = num(f.zeroized);
        if (ids.length) return perKey(peer, { event: 'pool_keys_zeroized', reason: 'key pool closed: unused key' }, ids);
        return n ? [{ event: 'pool_keys_zeroized', peer, reason: `key pool closed: ${n} unused key(s)` }] : [];
      }
      case 'qkd_degraded': {
        const lifetime = num(f.lifetime_ms);
        const reason = `no QKD key: ML-KEM-768 + X25519 only (policy qkd ${str(f.qkd) ?? '?'}${lifetime !== undefined ? `, rekey within ${lifetime} ms` : ''})`;
        return perKey(peer, { event: 'qkd_degraded', epoch, mode: 'degraded', reason }, []);
      }
      case 'qkd_restored':
        return perKey(peer, { event: 'qkd_restored', epoch, mode: 'qkd' }, keyIds(f.key_IDs));
      case 'qkd_step_down': {
        const why = str(f.reason);
        const cause = str(f.cause);
        return perKey(peer, { event: 'qkd_step_down', mode: 'degraded', reason: [why, cause && `cause: ${cause}`].filter(Boolean).join('; ') || undefined }, []);
      }
      case 'epoch_hard_limit':
        return perKey(peer, { event: 'epoch_hard_limit', epoch, reason: `hard limit (${str(f.limit) ?? '?'}) reached with no successor; policy qkd ${str(f.qkd) ?? '?'}` }, []);
      default:
        return [];
    }
  }

  #remember(peer: string, epoch: number | undefined, ids: string[]): void {
    if (epoch === undefined || ids.length === 0) return;
    let m = this.#epochKeys.get(peer);
    if (!m) this.#epochKeys.set(peer, (m = new Map()));
    m.delete(epoch);
    m.set(epoch, ids);
    while (m.size > REMEMBER_PER_PEER) m.delete(m.keys().next().value as number);
  }

  /** Epoch numbers remembered for `peer` (with their key_IDs). */
  #remembered(peer: string): number[] {
    return [...(this.#epochKeys.get(peer)?.keys() ?? [])];
  }

  #forget(peer: string, epoch: number | undefined): string[] {
    const m = this.#epochKeys.get(peer);
    if (!m || epoch === undefined) return [];
    const ids = m.get(epoch) ?? [];
    m.delete(epoch);
    return ids;
  }
}
