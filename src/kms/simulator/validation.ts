/**
 * Parsing and checking of the two request formats of ETSI GS QKD 014 (s6.2 Key request,
 * s6.4 Key IDs), in their JSON (POST) and query-string (GET) forms.
 *
 * Unknown members are ignored (etsi014.md A14, S20, S27); anything malformed is a 400
 * and never turns into a default request (S20).
 */
import {
  MAX_KEY_ID_LENGTH,
  MSG_EXT_MANDATORY_UNSUPPORTED,
  MSG_KEYS_NOT_FOUND,
  MSG_SIZE_MULTIPLE_OF_8,
} from './constants.js';
import type { ResolvedLink } from './options.js';

/** The Error data format (s6.5, T13). */
export interface ErrorBody {
  message: string;
  details?: Array<Record<string, unknown>>;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: ErrorBody };

/** A checked Get key request: `number` keys of `sizeBits` bits each. */
export interface KeyRequest {
  number: number;
  sizeBits: number;
}

const bad = (message: string, details?: Array<Record<string, unknown>>): { ok: false; error: ErrorBody } => ({
  ok: false,
  error: details ? { message, details } : { message },
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a request body as JSON (RFC 8259). The body must be valid UTF-8 JSON (a BOM is
 * refused, which RFC 8259 s8.1 permits) whose top
 * level is an object.
 */
export function parseJsonObject(raw: Buffer): Parsed<Record<string, unknown>> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return bad('request body is not valid UTF-8');
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return bad('request body is not valid JSON');
  }
  if (!isObject(v)) return bad('request body shall be a JSON object');
  return { ok: true, value: v };
}

/**
 * The unit the KME reads `size` (and its own `key_size`) in: `bits` per spec (s6.2, T10),
 * `bytes` under the `sizeAsBytes` quirk (quirks.ts).
 */
export type SizeUnit = 'bits' | 'bytes';

/**
 * Checks `number` and `size` against the link's limits (s6.2; etsi014.md A11, A12, S13,
 * S14). In `bytes` the limits are compared as plain numbers and any whole size passes the
 * multiple-of-8 rule.
 */
function checkNumberAndSize(number: number, size: number, link: ResolvedLink, unit: SizeUnit): Parsed<KeyRequest> {
  if (!Number.isSafeInteger(number) || number < 1 || number > link.maxKeyPerRequest) {
    return bad(`number shall be an integer from 1 to ${link.maxKeyPerRequest}`);
  }
  if (!Number.isSafeInteger(size)) return bad('size shall be an integer');
  if (unit === 'bits' && size % 8 !== 0) return bad(MSG_SIZE_MULTIPLE_OF_8);
  if (size < link.minKeySizeBits || size > link.maxKeySizeBits) {
    return bad(`size shall be from ${link.minKeySizeBits} to ${link.maxKeySizeBits} ${unit}`);
  }
  return { ok: true, value: { number, sizeBits: unit === 'bits' ? size : size * 8 } };
}

function checkExtensionArray(v: unknown, name: string): Parsed<Array<Record<string, unknown>>> {
  if (v === undefined) return { ok: true, value: [] };
  if (!Array.isArray(v) || !v.every(isObject)) return bad(`${name} shall be an array of objects`);
  return { ok: true, value: v };
}

/**
 * Checks a Key request body (POST enc_keys). Defaults: number 1, size = `key_size`.
 * The simulator supports no extensions and no multicast (`max_SAE_ID_count` = 0).
 */
export function parseKeyRequestJson(body: Record<string, unknown>, link: ResolvedLink, unit: SizeUnit = 'bits'): Parsed<KeyRequest> {
  const number = body.number === undefined ? 1 : body.number;
  const size = body.size === undefined ? link.keySizeBits : body.size;
  if (typeof number !== 'number') return bad('number shall be an integer');
  if (typeof size !== 'number') return bad('size shall be an integer');

  const extra = body.additional_slave_SAE_IDs;
  if (extra !== undefined) {
    if (!Array.isArray(extra) || !extra.every((s) => typeof s === 'string')) {
      return bad('additional_slave_SAE_IDs shall be an array of strings');
    }
    // etsi014.md S16: max_SAE_ID_count is 0, so any additional slave is refused.
    if (extra.length > 0) return bad('additional_slave_SAE_IDs is not supported (max_SAE_ID_count is 0)');
  }
  const mandatory = checkExtensionArray(body.extension_mandatory, 'extension_mandatory');
  if (!mandatory.ok) return mandatory;
  const optional = checkExtensionArray(body.extension_optional, 'extension_optional');
  if (!optional.ok) return optional;
  const unsupported = mandatory.value.flatMap((e) => Object.keys(e));
  if (unsupported.length > 0) {
    return bad(
      MSG_EXT_MANDATORY_UNSUPPORTED,
      unsupported.map((name) => ({ extension_mandatory_unsupported: name })),
    );
  }
  return checkNumberAndSize(number, size, link, unit);
}

const DECIMAL_RE = /^[0-9]{1,15}$/;

/** Checks the simple GET form of Get key: `?number=N&size=S` (s6.2), both optional. */
export function parseKeyRequestQuery(q: URLSearchParams, link: ResolvedLink, unit: SizeUnit = 'bits'): Parsed<KeyRequest> {
  const read = (name: string, dflt: number): Parsed<number> => {
    const all = q.getAll(name);
    if (all.length === 0) return { ok: true, value: dflt };
    if (all.length > 1) return bad(`${name} given more than once`);
    if (!DECIMAL_RE.test(all[0])) return bad(`${name} shall be an integer`);
    return { ok: true, value: Number(all[0]) };
  };
  const number = read('number', 1);
  if (!number.ok) return number;
  const size = read('size', link.keySizeBits);
  if (!size.ok) return size;
  return checkNumberAndSize(number.value, size.value, link, unit);
}

function checkKeyIdList(ids: string[], link: ResolvedLink): Parsed<string[]> {
  if (ids.length > link.maxKeyPerRequest) return bad(`at most ${link.maxKeyPerRequest} key_IDs per request`);
  const seen = new Set<string>();
  const dups: string[] = [];
  for (const id of ids) {
    if (seen.has(id) && !dups.includes(id)) dups.push(id);
    seen.add(id);
  }
  // etsi014.md A9/S23: a duplicate cannot be returned twice, so the spec's 400 applies.
  if (dups.length > 0) return bad(MSG_KEYS_NOT_FOUND, dups.map((id) => ({ duplicate_key_ID: id })));
  return { ok: true, value: ids };
}

const validKeyId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_KEY_ID_LENGTH;

/** Checks a Key IDs body (POST dec_keys, s6.4 T12): a non-empty array of `{key_ID}` objects. */
export function parseKeyIdsJson(body: Record<string, unknown>, link: ResolvedLink): Parsed<string[]> {
  const list = body.key_IDs;
  if (!Array.isArray(list)) return bad('key_IDs shall be an array');
  if (list.length === 0) return bad('key_IDs shall not be empty');
  const ids: string[] = [];
  for (const entry of list) {
    // T12: each entry is an object; bare strings are refused (S26). Other members are ignored (S27).
    if (!isObject(entry) || !validKeyId(entry.key_ID)) {
      return bad(`key_IDs entries shall be objects with a key_ID string of 1 to ${MAX_KEY_ID_LENGTH} characters`);
    }
    ids.push(entry.key_ID);
  }
  return checkKeyIdList(ids, link);
}

/** Checks the GET form of Get key with key IDs: exactly one `?key_ID=` (s6.4; S26). */
export function parseKeyIdsQuery(q: URLSearchParams, link: ResolvedLink): Parsed<string[]> {
  const all = q.getAll('key_ID');
  if (all.length === 0) return bad('key_ID query parameter is required');
  if (all.length > 1) return bad('GET dec_keys takes exactly one key_ID; use POST for two or more');
  if (!validKeyId(all[0])) return bad(`key_ID shall be 1 to ${MAX_KEY_ID_LENGTH} characters`);
  return checkKeyIdList(all, link);
}
