/**
 * Turns what can go wrong on an ETSI GS QKD 014 call into one typed QkdgwError whose code
 * names the cause (checklist C29, field reports BC-03 f, BC-04), plus the retry class
 * the caller needs.
 *
 * HTTP status mapping (etsi014.md s1.6, A5, A6, A15), first match wins:
 *   401, 403                                   -> KMS_AUTH
 *   dec_keys 400, 404                          -> KMS_KEY_UNAVAILABLE
 *   400, 503 + insufficient/remaining/available/exhaust/empty/not enough message -> KMS_EXHAUSTED
 *   enc_keys 400 whose message is about "size"  -> KMS_CONFIG (BC-03 f: names the size)
 *   429                                        -> KMS_UNAVAILABLE (rate limited)
 *   other 4xx                                  -> KMS_REQUEST
 *   5xx                                        -> KMS_UNAVAILABLE
 *   anything else that is not 200              -> KMS_PROTOCOL
 */
import { ErrorCodes, QkdgwError, type ErrorCode } from '../../errors.js';
import type { Etsi014Operation } from './types.js';

/** Longest KME error message kept in error details, in characters. */
export const KME_MESSAGE_MAX = 200;

/** Error code our checkServerIdentity hook gives a KME certificate whose SPKI pin does not match. */
export const PIN_MISMATCH_CODE = 'QKDGW_SPKI_PIN_MISMATCH';

/** Marker set on errors raised while the TCP/TLS connection was being set up. */
export const HANDSHAKE_PHASE = Symbol('qkdgw.etsi014.handshake');

const EXHAUSTION_RE = /\b(insufficient|remaining|available|exhaust\w*|empty|not enough)\b/i;

function clean(s: string): string {
  // Control characters out, whitespace collapsed: the text lands in one log line.
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

function truncate(s: string): string {
  return s.length > KME_MESSAGE_MAX ? `${s.slice(0, KME_MESSAGE_MAX - 1)}…` : s;
}

function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '';
  }
}

/**
 * Best-effort human message from an error body: `{message}`, `{message, details}`,
 * `{detail}` (FastAPI), `{title}` (Falcon), `{error}`, HTML (tags stripped) or plain text.
 * Never throws; returns '' for an empty body. At most KME_MESSAGE_MAX characters.
 */
export function extractKmeMessage(body: Buffer): string {
  if (body.length === 0) return '';
  const text = body.subarray(0, 64 * 1024).toString('utf8');
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    try {
      const j: unknown = JSON.parse(trimmed);
      if (typeof j === 'object' && j !== null && !Array.isArray(j)) {
        const o = j as Record<string, unknown>;
        const main = o.message ?? o.detail ?? o.title ?? o.error ?? o.description;
        let s = main === undefined ? asText(o) : asText(main);
        if (o.details !== undefined) s += ` (details: ${asText(o.details)})`;
        return truncate(clean(s));
      }
    } catch {
      // not JSON after all: fall through to text
    }
  }
  if (/^<(!doctype|html|head|body|\?xml)/i.test(trimmed) || /<\/?[a-z][^>]*>/i.test(trimmed)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(trimmed)?.[1];
    const h1 = /<h1[^>]*>([^<]*)<\/h1>/i.exec(trimmed)?.[1];
    const stripped = trimmed.replace(/<(script|style)[\s\S]*?<\/\1>/gi, ' ').replace(/<[^>]*>/g, ' ');
    return truncate(clean(h1 ?? title ?? stripped));
  }
  return truncate(clean(text));
}

/** Details every KMS error carries: never key bytes, never a request body. */
export interface KmsErrorDetails {
  op: Etsi014Operation;
  /** URL path (prefix + SAE ID + operation); key_IDs travel in the body and are not in it */
  path: string;
  status?: number;
  kmeMessage?: string;
  retryable: boolean;
  /**
   * Transport failures only: true when the request may have reached the KME and no whole
   * response was read (socket closed after sending, a timeout, a body cut short). An
   * enc_keys that failed so may have been served: its keys are lost (KeySource retries
   * such a call at most once). False when the request surely never left (refused
   * connection, TLS failure, connect timeout).
   */
  responseLost?: boolean;
  /** Transport failures only: the BC-05 retry on a new connection was made (and failed too). */
  socketRetried?: boolean;
  [k: string]: unknown;
}

/** Maps a non-200 HTTP answer to a QkdgwError (see the table at the top of this file). */
export function httpStatusError(
  op: Etsi014Operation,
  status: number,
  kmeMessage: string,
  path: string,
  ctx: { sizeBits?: number } = {},
): QkdgwError {
  const said = kmeMessage ? `: ${kmeMessage}` : ' (no message)';
  let code: ErrorCode;
  let what: string;
  if (status === 401 || status === 403) {
    code = ErrorCodes.KMS_AUTH;
    what = `KME refused our SAE identity (HTTP ${status}) on ${op}; check the SAE client certificate and the KME's SAE registration`;
  } else if (op === 'dec_keys' && (status === 400 || status === 404)) {
    code = ErrorCodes.KMS_KEY_UNAVAILABLE;
    what = `KME cannot deliver the requested key_ID(s) yet or at all (HTTP ${status})`;
  } else if ((status === 400 || status === 503) && EXHAUSTION_RE.test(kmeMessage)) {
    code = ErrorCodes.KMS_EXHAUSTED;
    what = `KME key material exhausted (HTTP ${status}); retry later`;
  } else if (op === 'enc_keys' && status === 400 && /\bsize\b/i.test(kmeMessage)) {
    code = ErrorCodes.KMS_CONFIG;
    what = `KME rejected the key size${ctx.sizeBits === undefined ? '' : ` ${ctx.sizeBits} bits`} (HTTP 400); configure a size the KME supports`;
  } else if (status === 429) {
    code = ErrorCodes.KMS_UNAVAILABLE;
    what = `KME is rate limiting (HTTP 429)`;
  } else if (status >= 400 && status < 500) {
    code = ErrorCodes.KMS_REQUEST;
    what = `KME rejected the ${op} request (HTTP ${status})`;
  } else if (status >= 500 && status < 600) {
    code = ErrorCodes.KMS_UNAVAILABLE;
    what = `KME server error (HTTP ${status}) on ${op}`;
  } else {
    code = ErrorCodes.KMS_PROTOCOL;
    what = `KME answered ${op} with unexpected HTTP ${status}`;
  }
  const details: KmsErrorDetails = { op, path, status, kmeMessage, retryable: isRetryableCode(code) };
  return new QkdgwError(code, `${what}${said}`, details);
}

const UNKNOWN_CA = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'CERT_REJECTED',
]);
const CLIENT_CERT_ALERTS = new Set([
  'UNKNOWN_CA',
  'BAD_CERTIFICATE',
  'CERTIFICATE_UNKNOWN',
  'CERTIFICATE_EXPIRED',
  'CERTIFICATE_REVOKED',
  'UNSUPPORTED_CERTIFICATE',
  'ACCESS_DENIED',
  'DECRYPT_ERROR',
]);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ENETDOWN']);
/** Socket failures that BC-05 retries once when they happen before any response. */
export const SOCKET_RETRY_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

function errCode(e: unknown): string {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : '';
}

/**
 * Maps a transport failure (no HTTP status) to KMS_TLS / KMS_CONNECT / KMS_TIMEOUT, with a
 * message that says which certificate check failed (BC-04), never a bare ECONNRESET.
 * `expectedIdentity` is the KME name we verified against.
 */
export function transportError(
  err: unknown,
  ctx: { op: Etsi014Operation; path: string; expectedIdentity: string; retried: boolean; midBody?: boolean },
): QkdgwError {
  if (err instanceof QkdgwError) return err;
  const code = errCode(err);
  const inHandshake = !!(err as Record<symbol, unknown> | null)?.[HANDSHAKE_PHASE];
  const base = { op: ctx.op, path: ctx.path, errno: code || undefined, socketRetried: ctx.retried };
  const reason = (err as { reason?: unknown })?.reason;
  // Conservative: only failures that happen before any request byte can be written count
  // as "not sent" (refused/unreachable, connect timeout, TLS); everything else may have
  // reached the KME.
  const notSent = CONNECT_CODES.has(code) || code === 'UND_ERR_CONNECT_TIMEOUT' || inHandshake;
  const mk = (c: ErrorCode, msg: string): QkdgwError =>
    new QkdgwError(
      c,
      msg,
      { ...base, retryable: isRetryableCode(c), responseLost: !!ctx.midBody || (c !== ErrorCodes.KMS_TLS && !notSent) } satisfies KmsErrorDetails,
      { cause: err },
    );

  if (code === PIN_MISMATCH_CODE) {
    return mk(ErrorCodes.KMS_TLS, `KME certificate SPKI does not match the configured pin (spkiSha256); refusing the KME`);
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return mk(
      ErrorCodes.KMS_TLS,
      `KME certificate does not match the expected KME identity "${ctx.expectedIdentity}"` +
        `${typeof reason === 'string' ? ` (${reason})` : ''}; set serverName to the name in the KME certificate`,
    );
  }
  if (UNKNOWN_CA.has(code)) {
    return mk(ErrorCodes.KMS_TLS, `KME certificate does not chain to the configured CA (${code}); check the KME CA file`);
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return mk(ErrorCodes.KMS_TLS, `KME certificate is not valid now (${code})`);
  }
  const alert = /ALERT_([A-Z0-9_]+)$/.exec(code)?.[1];
  if (alert === 'CERTIFICATE_REQUIRED') {
    return mk(ErrorCodes.KMS_TLS, `KME demanded a client certificate and did not get one (TLS alert ${alert}); check the SAE cert/key settings`);
  }
  if (alert && CLIENT_CERT_ALERTS.has(alert)) {
    return mk(
      ErrorCodes.KMS_TLS,
      `KME rejected our SAE client certificate (TLS alert ${alert}); check that the KME trusts the CA that issued it`,
    );
  }
  if (alert === 'PROTOCOL_VERSION' || code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || code === 'ERR_SSL_NO_PROTOCOLS_AVAILABLE') {
    return mk(ErrorCodes.KMS_TLS, `KME and client share no TLS version (TLS >= 1.2 required; ${code})`);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return mk(ErrorCodes.KMS_TLS, `KME endpoint does not speak TLS (${code}); is the URL an http:// port?`);
  }
  if (alert) return mk(ErrorCodes.KMS_TLS, `TLS alert ${alert} from the KME`);
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return mk(ErrorCodes.KMS_TLS, `TLS failure talking to the KME (${code})`);
  }
  if (CONNECT_CODES.has(code)) {
    return mk(ErrorCodes.KMS_CONNECT, `cannot reach the KME (${code})`);
  }
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return mk(ErrorCodes.KMS_TIMEOUT, `connecting to the KME timed out`);
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return mk(ErrorCodes.KMS_TIMEOUT, `KME ${ctx.op} did not answer in time (${code})`);
  }
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return mk(ErrorCodes.KMS_PROTOCOL, `KME ${ctx.op} response exceeds the size limit`);
  }
  if (SOCKET_RETRY_CODES.has(code)) {
    if (ctx.midBody) {
      return mk(ErrorCodes.KMS_CONNECT, `KME connection broke while sending the ${ctx.op} response (${code}); response discarded`);
    }
    if (inHandshake) {
      return mk(
        ErrorCodes.KMS_TLS,
        `KME closed the connection during the TLS handshake (${code}); it probably rejected our SAE client certificate or TLS settings`,
      );
    }
    return mk(
      ErrorCodes.KMS_CONNECT,
      `KME closed the connection before answering ${ctx.op} (${code})${ctx.retried ? ', also on a retry over a new connection' : ''}`,
    );
  }
  if (code.startsWith('UND_ERR_') && /parser|invalid|response/i.test(code)) {
    return mk(ErrorCodes.KMS_PROTOCOL, `KME sent a malformed HTTP response (${code})`);
  }
  const m = err instanceof Error ? err.message : String(err);
  return mk(ErrorCodes.KMS_CONNECT, `KME ${ctx.op} call failed: ${code || 'error'}: ${truncate(clean(m))}`);
}

/** Retry classes of C29. `transient` and `exhausted` want backoff; the others want a fix or an alarm. */
export type KmsErrorKind =
  | 'transient'
  | 'exhausted'
  | 'key_unavailable'
  | 'auth'
  | 'tls'
  | 'request'
  | 'config'
  | 'protocol'
  | 'reused'
  | 'other';

const KIND: Partial<Record<ErrorCode, KmsErrorKind>> = {
  [ErrorCodes.KMS_CONNECT]: 'transient',
  [ErrorCodes.KMS_TIMEOUT]: 'transient',
  [ErrorCodes.KMS_UNAVAILABLE]: 'transient',
  [ErrorCodes.KMS_EXHAUSTED]: 'exhausted',
  [ErrorCodes.KMS_KEY_UNAVAILABLE]: 'key_unavailable',
  [ErrorCodes.KMS_AUTH]: 'auth',
  [ErrorCodes.KMS_TLS]: 'tls',
  [ErrorCodes.KMS_REQUEST]: 'request',
  [ErrorCodes.KMS_CONFIG]: 'config',
  [ErrorCodes.KMS_PROTOCOL]: 'protocol',
  [ErrorCodes.KMS_KEY_INVALID]: 'protocol',
  [ErrorCodes.KMS_STATUS_INVALID]: 'protocol',
  [ErrorCodes.KMS_KEY_REUSED]: 'reused',
};

function isRetryableCode(code: ErrorCode): boolean {
  const k = KIND[code];
  return k === 'transient' || k === 'exhausted' || k === 'key_unavailable';
}

/**
 * Classifies any error from the ETSI 014 client or KeySource (C29): `kind` and whether
 * trying again later can help (`retryable`: transient, exhausted, key_unavailable).
 * Non-QkdgwError values are `other`, not retryable.
 */
export function classifyKmsError(e: unknown): { kind: KmsErrorKind; retryable: boolean } {
  if (!(e instanceof QkdgwError)) return { kind: 'other', retryable: false };
  const kind = KIND[e.code] ?? 'other';
  return { kind, retryable: isRetryableCode(e.code) };
}

/** True when a later retry of the same KMS call may succeed (C29). */
export function isRetryableKmsError(e: unknown): boolean {
  return classifyKmsError(e).retryable;
}
