/**
 * Strict validation of the two 200 bodies of ETSI GS QKD 014: Status (s6.1) and Key
 * container (s6.3). Checklist items C9, C12, C18 and field reports BC-01, BC-03 in
 * etsi014.md / field-reports.md.
 *
 * Policy (documented choice for BC-03 e): a container whose `keys` array is not exactly
 * the requested length is rejected as a whole, never trimmed. A KME that sends more
 * keys than asked has already removed them from its pool, so using "the first one" would
 * hide a KME fault and leave the peer's KME holding keys nobody will fetch.
 */
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { fromB64Strict, fromB64uStrict } from '../../util/bytes.js';
import { SecretBytes } from '../../util/secret.js';
import { isValidKeyId, normalizeKeyId } from './key-id.js';
import type { Etsi014Operation, KmeStatus, QkdKey } from './types.js';

const STATUS_STRINGS = ['source_KME_ID', 'target_KME_ID', 'master_SAE_ID', 'slave_SAE_ID'] as const;
const STATUS_INTEGERS = [
  'key_size',
  'stored_key_count',
  'max_key_count',
  'max_key_per_request',
  'max_key_size',
  'min_key_size',
  'max_SAE_ID_count',
] as const;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function own(o: Record<string, unknown>, k: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

/**
 * Checks a Status body (ETSI GS QKD 014 s6.1, T9): all 11 required members at their JSON
 * types (strings for the 4 IDs, integers for the rest), `slave_SAE_ID` equal to the slave in
 * the URL and, when given, `master_SAE_ID` equal to our own SAE ID. Unknown members are
 * ignored; `status_extension` must be an object when present.
 *
 * Throws QkdgwError KMS_STATUS_INVALID naming the first bad field (BC-01). Value
 * inconsistencies (stored > max, min > max, ...) are NOT errors here: see statusInconsistencies().
 */
export function parseStatus(body: unknown, expectedSlave: string, expectedMaster?: string): KmeStatus {
  const bad = (why: string): never => {
    throw new QkdgwError(ErrorCodes.KMS_STATUS_INVALID, `KME status response invalid: ${why}`, { slaveSaeId: expectedSlave });
  };
  if (!isPlainObject(body)) return bad('body is not a JSON object');
  for (const f of STATUS_STRINGS) {
    const v = own(body, f);
    if (typeof v !== 'string') bad(`${f} is ${v === undefined ? 'missing' : 'not a string'}`);
  }
  for (const f of STATUS_INTEGERS) {
    const v = own(body, f);
    if (v === undefined) bad(`${f} is missing`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) bad(`${f} is not an integer (got ${JSON.stringify(v)?.slice(0, 40)})`);
  }
  const ext = own(body, 'status_extension');
  if (ext !== undefined && ext !== null && !isPlainObject(ext)) bad('status_extension is not an object');
  if (body.slave_SAE_ID !== expectedSlave) {
    bad(`slave_SAE_ID ${JSON.stringify(body.slave_SAE_ID)} is not the requested slave ${JSON.stringify(expectedSlave)}`);
  }
  if (expectedMaster !== undefined && body.master_SAE_ID !== expectedMaster) {
    bad(`master_SAE_ID ${JSON.stringify(body.master_SAE_ID)} is not our SAE ID ${JSON.stringify(expectedMaster)}`);
  }
  const s: KmeStatus = {
    source_KME_ID: body.source_KME_ID as string,
    target_KME_ID: body.target_KME_ID as string,
    master_SAE_ID: body.master_SAE_ID as string,
    slave_SAE_ID: body.slave_SAE_ID as string,
    key_size: body.key_size as number,
    stored_key_count: body.stored_key_count as number,
    max_key_count: body.max_key_count as number,
    max_key_per_request: body.max_key_per_request as number,
    max_key_size: body.max_key_size as number,
    min_key_size: body.min_key_size as number,
    max_SAE_ID_count: body.max_SAE_ID_count as number,
  };
  if (isPlainObject(ext)) s.status_extension = ext;
  return s;
}

/**
 * Lists the value relations a well-formed Status breaks (etsi014.md C8/A17, BC-01), e.g.
 * `stored_key_count>max_key_count`. Empty when consistent. Advisory only: the client logs
 * them and clamps its requests, it never fails on them.
 */
export function statusInconsistencies(s: KmeStatus): string[] {
  const out: string[] = [];
  for (const f of STATUS_INTEGERS) if (s[f] < 0) out.push(`${f}<0`);
  if (s.stored_key_count > s.max_key_count) out.push('stored_key_count>max_key_count');
  if (s.min_key_size > s.max_key_size) out.push('min_key_size>max_key_size');
  if (s.key_size < s.min_key_size || s.key_size > s.max_key_size) out.push('key_size outside [min_key_size,max_key_size]');
  if (s.max_key_per_request < 1) out.push('max_key_per_request<1');
  if (s.key_size % 8 !== 0) out.push('key_size not a multiple of 8');
  return out;
}

export interface ContainerExpectation {
  op: Etsi014Operation;
  /** exact number of keys the KME must return */
  count: number;
  /** when set, every key must decode to exactly sizeBits/8 bytes */
  sizeBits?: number;
  /** dec_keys: the key_IDs asked for; the reply must carry exactly these (case-insensitive) */
  keyIds?: readonly string[];
  /** BC-03 b: accept unpadded base64url as well (off unless configured) */
  allowBase64Url?: boolean;
}

/**
 * Validates a Key container (ETSI GS QKD 014 s6.3, T11; checklist C12, C18; BC-03, A2).
 * Reads `keys` (or `Keys`, A2, when `keys` is absent). Requires: exactly `count` entries,
 * each an object with an opaque key_ID (1..64 printable ASCII) unique case-insensitively,
 * and a `key` in strict canonical RFC 4648 s4 base64 with padding decoding to sizeBits/8
 * bytes (non-empty when no size is known). For dec_keys the key_IDs must equal the ones
 * requested. Returns keys in request order for dec_keys, in KME order for enc_keys; a
 * dec_keys key carries the key_ID string exactly as requested.
 *
 * Any violation discards the whole container: every key already decoded is zeroized,
 * then it throws KMS_PROTOCOL (structure, count, key_IDs) or KMS_KEY_INVALID (key
 * encoding or length). Messages name key_IDs and lengths, never key bytes (C32).
 */
export function parseKeyContainer(body: unknown, exp: ContainerExpectation): QkdKey[] {
  const proto = (why: string): never => {
    throw new QkdgwError(ErrorCodes.KMS_PROTOCOL, `KME ${exp.op} response rejected: ${why}`, { op: exp.op });
  };
  if (!isPlainObject(body)) return proto('body is not a JSON object');
  let arr = own(body, 'keys');
  if (arr === undefined) arr = own(body, 'Keys');
  if (!Array.isArray(arr)) return proto('no "keys" array');
  if (arr.length === 0) return proto('"keys" is empty');
  if (arr.length !== exp.count) return proto(`"keys" has ${arr.length} entries, ${exp.count} requested (whole response discarded)`);

  const seen = new Set<string>();
  const entries: Array<{ keyId: string; key: string }> = [];
  for (const [i, e] of arr.entries()) {
    if (!isPlainObject(e)) return proto(`keys[${i}] is not an object`);
    const keyId = own(e, 'key_ID');
    if (!isValidKeyId(keyId)) return proto(`keys[${i}].key_ID is not 1..64 printable ASCII characters`);
    const norm = normalizeKeyId(keyId);
    if (seen.has(norm)) return proto(`duplicate key_ID ${keyId}`);
    seen.add(norm);
    const key = own(e, 'key');
    if (typeof key !== 'string') {
      throw new QkdgwError(ErrorCodes.KMS_KEY_INVALID, `KME ${exp.op} key for key_ID ${keyId} is not a string`, { op: exp.op, keyId });
    }
    for (const x of ['key_ID_extension', 'key_extension'] as const) {
      const v = own(e, x);
      if (v !== undefined && v !== null && !isPlainObject(v)) return proto(`keys[${i}].${x} is not an object`);
    }
    entries.push({ keyId, key });
  }

  let order: number[] = entries.map((_, i) => i);
  let ids: string[] = entries.map((e) => e.keyId);
  if (exp.keyIds) {
    const byId = new Map(entries.map((e, i) => [normalizeKeyId(e.keyId), i] as const));
    const missing = exp.keyIds.filter((k) => !byId.has(normalizeKeyId(k)));
    if (missing.length || byId.size !== exp.keyIds.length) {
      return proto(`returned key_IDs [${entries.map((e) => e.keyId).join(', ')}] are not the requested [${exp.keyIds.join(', ')}]`);
    }
    order = exp.keyIds.map((k) => byId.get(normalizeKeyId(k)) as number);
    ids = [...exp.keyIds];
  }

  const wantBytes = exp.sizeBits === undefined ? undefined : exp.sizeBits / 8;
  const decoded: Buffer[] = [];
  try {
    for (const idx of order) {
      const { keyId, key } = entries[idx];
      let b = fromB64Strict(key);
      if (b === null && exp.allowBase64Url) b = fromB64uStrict(key);
      if (b === null) {
        throw new QkdgwError(
          ErrorCodes.KMS_KEY_INVALID,
          `KME ${exp.op} key for key_ID ${keyId} is not canonical RFC 4648 base64 with padding`,
          { op: exp.op, keyId },
        );
      }
      decoded.push(b);
      if (b.length === 0 || (wantBytes !== undefined && b.length !== wantBytes)) {
        throw new QkdgwError(
          ErrorCodes.KMS_KEY_INVALID,
          `KME ${exp.op} key for key_ID ${keyId} is ${b.length} bytes, expected ${wantBytes ?? 'at least 1'}`,
          { op: exp.op, keyId, gotBytes: b.length, wantBytes },
        );
      }
    }
  } catch (e) {
    for (const b of decoded) b.fill(0);
    throw e;
  }
  // Copy into unpooled SecretBytes, then wipe the (possibly pooled) decode buffers.
  const out = decoded.map((b, i) => ({ keyId: ids[i], key: SecretBytes.from(b) }));
  for (const b of decoded) b.fill(0);
  return out;
}
