/**
 * Quirk modes: behaviours of real KMEs that differ from ETSI GS QKD 014 or from our reading
 * of it (etsi014.md table 1.8, checklist S37). They exist so the client tests of items
 * 17-29 can run against every behaviour seen in the field. All are off by default; with
 * all off the simulator follows the spec and the s1.8 recommendations.
 *
 * Quirks apply to both KMEs of the pair.
 */
import { expectObject, inputError, optBool, rejectUnknown } from './input.js';

/**
 * How the simulator answers when fewer keys are available than requested (etsi014.md
 * A5/S17): `503` (default, `{"message":"insufficient key material"}`), `400` (same
 * body, as py-qkd-kme-sim and CreepPork do) or `partial-200` (as many keys as there are,
 * as thomasarmel does). Not-503 modes exist for client tests only.
 */
export type ExhaustionMode = '503' | '400' | 'partial-200';

export interface KmeQuirks {
  /** A5: answer to exhaustion (see {@link ExhaustionMode}). Default `'503'`. */
  exhaustion: ExhaustionMode;
  /**
   * A6: an unknown, already delivered or foreign key_ID in `dec_keys` answers
   * 404 `{"message":"key not found"}` (thomasarmel, arnika mock) instead of 400 with the
   * spec message. Duplicates within one request stay 400.
   */
  unknownId404: boolean;
  /**
   * A8: `dec_keys` does not remove the key (thomasarmel, arnika mock, a-v-popov); the slave
   * may fetch the same key_ID again and gets the same bytes.
   */
  decKeysNonConsuming: boolean;
  /**
   * Every key size the KME handles is read as BYTES instead of bits (S37 "bits-as-bytes"):
   * the request `size` and the default `key_size`, so `size: 256` yields 256-byte keys. The
   * Status numbers are unchanged (the quirky KME believes they are bytes); the range check
   * compares `size` with `min_key_size`/`max_key_size` as plain numbers, and the
   * multiple-of-8 rule no longer applies.
   */
  sizeAsBytes: boolean;
  /**
   * A1: `dec_keys` expects the calling slave's OWN SAE ID in the path (the QURSA IDQ
   * Cerberis XGR case) and serves keys of any master; the master SAE ID in the path (the
   * spec form) then finds nothing (400, or 404 with `unknownId404`).
   */
  decKeysPathSlave: boolean;
  /**
   * A15: every error answer (400, 401, 404, 405, 503) carries a `text/html` page instead of
   * a JSON Error body or no body (Flask `abort()`, reverse proxies).
   */
  htmlErrors: boolean;
}

/** Any subset of {@link KmeQuirks}; absent members keep their value. */
export type KmeQuirkOptions = Partial<KmeQuirks>;

export const QUIRK_DEFAULTS: Readonly<KmeQuirks> = Object.freeze({
  exhaustion: '503',
  unknownId404: false,
  decKeysNonConsuming: false,
  sizeAsBytes: false,
  decKeysPathSlave: false,
  htmlErrors: false,
});

export const QUIRK_NAMES = Object.keys(QUIRK_DEFAULTS) as ReadonlyArray<keyof KmeQuirks>;

/** Message of the `unknownId404` answer (arnika mock). */
export const MSG_KEY_NOT_FOUND_404 = 'key not found';

/**
 * Checks a quirk setting (control API argument, admin body, or startup option).
 * `exhaustion` also accepts the numbers 503 and 400 (YAML writes them bare).
 * @returns only the members given, checked
 * @throws QkdgwError KMS_CONFIG naming `path.member` for an unknown member or a wrong type
 */
export function checkQuirks(input: unknown, path = 'quirks'): KmeQuirkOptions {
  const o = expectObject(input, path);
  rejectUnknown(o, path, QUIRK_NAMES);
  const out: KmeQuirkOptions = {};
  if (o.exhaustion !== undefined) {
    const ex = typeof o.exhaustion === 'number' ? String(o.exhaustion) : o.exhaustion;
    if (ex !== '503' && ex !== '400' && ex !== 'partial-200') {
      inputError(`${path}.exhaustion`, "must be '503', '400' or 'partial-200'");
    }
    out.exhaustion = ex;
  }
  for (const name of QUIRK_NAMES) {
    if (name === 'exhaustion') continue;
    const b = optBool(o[name], `${path}.${name}`);
    if (b !== undefined) out[name] = b;
  }
  return out;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  503: 'Service Unavailable',
};

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** The `htmlErrors` page, shaped like Werkzeug's (Flask) default error page. */
export function htmlErrorPage(status: number, message: string | undefined): string {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`;
  const p = message === undefined ? '' : `<p>${escapeHtml(message)}</p>\n`;
  return `<!doctype html>\n<html lang=en>\n<title>${title}</title>\n<h1>${STATUS_TEXT[status] ?? 'Error'}</h1>\n${p}`;
}
