/**
 * The gateway's ETSI GS QKD 014 V1.1.1 client (the SAE side of the key delivery API).
 *
 * Methods and forms (etsi014.md s1.3): `status` is GET (the only form the spec has),
 * `enc_keys` and `dec_keys` are always POST with `Content-Type: application/json`: one
 * code path, no query-string numbers, and the form every KME must accept (the GET forms
 * are optional shortcuts). SAE IDs are percent-encoded path segments (C5).
 *
 * Every 200 is validated strictly (validate.ts); every failure is a QkdgwError with a
 * code naming the cause (error-map.ts). Key bytes only ever live in SecretBytes or in
 * buffers that are zeroized on every path (C32); logs carry key_IDs, never keys.
 */
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import { classifyKmsError, extractKmeMessage, httpStatusError, type KmsErrorKind } from './error-map.js';
import { isValidKeyId, normalizeKeyId } from './key-id.js';
import { bareHost, loadTlsMaterial, parseSpkiPin } from './tls.js';
import { DEFAULT_KEEPALIVE_MS, DEFAULT_TIMEOUT_MS, Etsi014Transport, type Exchange, type HttpResult } from './transport.js';
import type { CallOptions, Etsi014Operation, KeyRequest, KmeStatus, QkdKey } from './types.js';
import { parseKeyContainer, parseStatus, statusInconsistencies } from './validate.js';

export interface Etsi014ClientOptions {
  /** KME base URL including the API prefix, e.g. `https://127.0.0.1:8443/api/v1` (A18). https only. */
  baseUrl: string;
  /** PEM: CA bundle that verifies the KME server certificate */
  ca: string;
  /** PEM: our SAE client certificate (leaf first, chain may follow) */
  cert: string;
  /** PEM: unencrypted private key of `cert` */
  key: string;
  /** expected KME identity (DNS name or IP in its certificate) when it differs from the URL host */
  serverName?: string;
  /** optional pin: base64 SHA-256 of the KME certificate's DER SPKI (a `sha256:` prefix is accepted) */
  spkiSha256?: string;
  /** our SAE ID at the KME */
  selfSaeId: string;
  /** TOTAL deadline per call (connect + TLS + headers + body), ms. Default 5000. */
  timeoutMs?: number;
  /** A1 quirk: SAE ID in the dec_keys path, `master` (spec) or `self` (IDQ Cerberis XGR). Default master. */
  decKeysPathSae?: 'master' | 'self';
  /** idle keep-alive of pooled connections, ms; keep it below the KME's idle timeout (BC-05). Default 4000. */
  keepAliveTimeoutMs?: number;
  /** BC-03 b: accept unpadded base64url keys. Default false (strict RFC 4648 s4 only). */
  allowBase64Url?: boolean;
  /** timer source for the per-call deadline; default systemClock */
  clock?: Clock;
  logger?: Logger;
  /** Told about every finished call (metrics: latency histogram, errors by class and HTTP status). Must not throw. */
  onCall?: (c: KmeCallObservation) => void;
}

/** One finished ETSI 014 call, for metrics. */
export interface KmeCallObservation {
  op: Etsi014Operation;
  /** Wall time from the call to its result or error, seconds (performance.now). */
  durationSec: number;
  /** HTTP status of the reply (200 when it succeeded), null when none arrived (TLS, connect, timeout). */
  httpStatus: number | null;
  /** null on success, else the error class (error-map.ts classifyKmsError). */
  errorKind: KmsErrorKind | null;
}

interface CachedStatus {
  status: KmeStatus;
  /** clock ms when it was read */
  at: number;
}

function encodeSegment(id: string): string {
  // encodeURIComponent leaves "." alone; a segment that is "." or ".." would be
  // normalised away by some servers, so those dots are escaped too (C5).
  const e = encodeURIComponent(id);
  return e === '.' || e === '..' ? e.replace(/\./g, '%2E') : e;
}

function isJsonContentType(ct: string | undefined): boolean {
  if (ct === undefined) return true; // absent: the JSON parse decides
  const [type, ...params] = ct.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) return false;
  const charset = params.find((p) => p.startsWith('charset='))?.slice(8).replace(/"/g, '');
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class Etsi014Client {
  readonly selfSaeId: string;
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly decKeysPathSae: 'master' | 'self';
  readonly #prefix: string;
  readonly #transport: Etsi014Transport;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #allowB64u: boolean;
  readonly #status = new Map<string, CachedStatus>();
  readonly #warned = new Map<string, string>();
  readonly #onCall: ((c: KmeCallObservation) => void) | undefined;

  /**
   * Validates the options and loads the TLS material. Throws KMS_CONFIG for a non-https or
   * malformed baseUrl, an empty selfSaeId, a bad timeout/pin, an unparseable CA/cert/key,
   * or a key that does not match the client certificate (BC-04: named at load).
   * No network I/O happens here.
   */
  constructor(opts: Etsi014ClientOptions) {
    const cfg = (m: string) => new QkdgwError(ErrorCodes.KMS_CONFIG, m);
    this.#log = (opts.logger ?? silentLogger).child({ component: 'etsi014' });
    this.#clock = opts.clock ?? systemClock;
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw cfg(`KME baseUrl is not a URL: ${JSON.stringify(opts.baseUrl)}`);
    }
    if (url.protocol !== 'https:') throw cfg(`KME baseUrl must be https:// (ETSI GS QKD 014 s5.1), got ${url.protocol}`);
    if (url.username || url.password || url.search || url.hash) throw cfg('KME baseUrl must not carry credentials, a query or a fragment');
    if (typeof opts.selfSaeId !== 'string' || opts.selfSaeId.length === 0) throw cfg('selfSaeId (our SAE ID) is required');
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw cfg(`timeoutMs must be a positive number of ms, got ${timeoutMs}`);
    const keepAlive = opts.keepAliveTimeoutMs ?? DEFAULT_KEEPALIVE_MS;
    if (!Number.isFinite(keepAlive) || keepAlive <= 0) throw cfg(`keepAliveTimeoutMs must be a positive number of ms, got ${keepAlive}`);
    const decPath = opts.decKeysPathSae ?? 'master';
    if (decPath !== 'master' && decPath !== 'self') throw cfg(`decKeysPathSae must be "master" or "self", got ${JSON.stringify(decPath)}`);
    const pin = opts.spkiSha256 === undefined ? undefined : parseSpkiPin(opts.spkiSha256);
    const material = loadTlsMaterial(opts, this.#log);

    this.selfSaeId = opts.selfSaeId;
    this.#onCall = opts.onCall;
    this.timeoutMs = timeoutMs;
    this.keepAliveTimeoutMs = keepAlive;
    this.decKeysPathSae = decPath;
    this.#allowB64u = opts.allowBase64Url === true;
    this.#prefix = url.pathname.replace(/\/+$/, '');
    this.baseUrl = `${url.origin}${this.#prefix}`;
    this.#transport = new Etsi014Transport({
      origin: url.origin,
      expectedIdentity: opts.serverName ?? bareHost(url.hostname),
      material,
      pin,
      timeoutMs,
      keepAliveTimeoutMs: keepAlive,
      clock: this.#clock,
      logger: this.#log,
    });
  }

  /** Count of BC-05 retries (socket closed before any response, retried on a new connection). */
  get socketRetries(): number {
    return this.#transport.socketRetries;
  }

  /**
   * Get status (ETSI GS QKD 014 s5.2, GET .../keys/{slave_SAE_ID}/status).
   * Checks all 11 fields and their JSON types, slave_SAE_ID == `slaveSaeId` and
   * master_SAE_ID == selfSaeId (KMS_STATUS_INVALID otherwise, BC-01). Value
   * inconsistencies are logged once (warn, naming the fields) and the status is cached
   * to clamp later getKeys() calls (C9). Also throws the transport/HTTP errors of
   * error-map.ts (KMS_TLS, KMS_CONNECT, KMS_TIMEOUT, KMS_AUTH, KMS_REQUEST, KMS_UNAVAILABLE...).
   */
  async status(slaveSaeId: string, call?: CallOptions): Promise<KmeStatus> {
    return this.#observe('status', () => this.#statusCall(slaveSaeId, call));
  }

  async #statusCall(slaveSaeId: string, call?: CallOptions): Promise<KmeStatus> {
    const path = `${this.#prefix}/keys/${encodeSegment(slaveSaeId)}/status`;
    const body = await this.#call({ op: 'status', method: 'GET', path }, call);
    let s: KmeStatus;
    try {
      s = parseStatus(body, slaveSaeId, this.selfSaeId);
    } catch (e) {
      this.#log.error({ op: 'status', slaveSaeId, err: (e as Error).message }, 'KME status rejected');
      throw e;
    }
    const bad = statusInconsistencies(s);
    const sig = bad.join(',');
    if (bad.length && this.#warned.get(slaveSaeId) !== sig) {
      this.#log.warn(
        { op: 'status', slaveSaeId, inconsistent: bad, status: s },
        `KME status is inconsistent (${sig}); treating it as advisory and clamping requests`,
      );
    }
    this.#warned.set(slaveSaeId, sig);
    this.#status.set(slaveSaeId, { status: s, at: this.#clock.now() });
    return s;
  }

  /** The last valid status read for `slaveSaeId` and when (clock ms), if any. */
  lastStatus(slaveSaeId: string): { status: KmeStatus; at: number } | undefined {
    return this.#status.get(slaveSaeId);
  }

  /**
   * Get key (ETSI GS QKD 014 s5.3, POST .../keys/{slave_SAE_ID}/enc_keys with
   * `{"number":n,"size":bits}`). `req.number` defaults to 1; `req.sizeBits` (bits, a
   * positive multiple of 8) defaults to the status key_size (read first if none is cached).
   *
   * Clamping (C9, BC-01): with a cached status, `number` is lowered to max_key_per_request
   * (so fewer keys than asked may come back; the result length is what was sent), and a
   * size outside [min_key_size, max_key_size] or max_key_per_request < 1 refuses the call
   * with KMS_CONFIG before any request. The reply must hold exactly the number sent, unique
   * key_IDs and keys of exactly sizeBits/8 bytes (C12, C18, BC-03), else the whole reply
   * is zeroized and KMS_PROTOCOL / KMS_KEY_INVALID is thrown.
   */
  async getKeys(slaveSaeId: string, req: KeyRequest = {}, call?: CallOptions): Promise<QkdKey[]> {
    const number = req.number ?? 1;
    if (!Number.isSafeInteger(number) || number < 1) {
      throw new QkdgwError(ErrorCodes.KMS_CONFIG, `enc_keys number must be an integer >= 1, got ${number}`);
    }
    let cached = this.#status.get(slaveSaeId)?.status;
    let size = req.sizeBits;
    if (size === undefined) {
      cached ??= await this.status(slaveSaeId, call);
      size = cached.key_size;
    }
    if (!Number.isSafeInteger(size) || size <= 0 || size % 8 !== 0) {
      throw new QkdgwError(ErrorCodes.KMS_CONFIG, `enc_keys size must be a positive multiple of 8 bits (A12), got ${size}`);
    }
    let n = number;
    if (cached) {
      if (cached.max_key_per_request < 1) {
        throw new QkdgwError(
          ErrorCodes.KMS_CONFIG,
          `KME status for slave ${slaveSaeId} advertises max_key_per_request=${cached.max_key_per_request}; no key can be requested`,
          { slaveSaeId },
        );
      }
      if (size < cached.min_key_size || size > cached.max_key_size) {
        throw new QkdgwError(
          ErrorCodes.KMS_CONFIG,
          `key size ${size} bits is outside the KME's advertised [min_key_size=${cached.min_key_size}, max_key_size=${cached.max_key_size}] for slave ${slaveSaeId}`,
          { slaveSaeId, sizeBits: size },
        );
      }
      if (n > cached.max_key_per_request) {
        this.#log.debug({ slaveSaeId, asked: n, max: cached.max_key_per_request }, 'enc_keys number clamped to max_key_per_request');
        n = cached.max_key_per_request;
      }
    }
    const path = `${this.#prefix}/keys/${encodeSegment(slaveSaeId)}/enc_keys`;
    const keys = await this.#observe('enc_keys', async () => {
      const body = await this.#call({ op: 'enc_keys', method: 'POST', path, json: { number: n, size } }, call, size);
      return this.#container(body, { op: 'enc_keys', count: n, sizeBits: size });
    });
    this.#log.debug({ op: 'enc_keys', slaveSaeId, keyIds: keys.map((k) => k.keyId), sizeBits: size }, 'keys received');
    return keys;
  }

  /**
   * Get key with key IDs (ETSI GS QKD 014 s5.4, POST .../keys/{master_SAE_ID}/dec_keys with
   * `{"key_IDs":[{"key_ID":...}]}`). The path carries `masterSaeId`, or selfSaeId when
   * decKeysPathSae is `self` (A1). Duplicate IDs are dropped before sending (A9, case-
   * insensitive). Each ID must be 1..64 printable ASCII (KMS_REQUEST otherwise, no call).
   * The reply must carry exactly the requested key_IDs (case-insensitive) with non-empty
   * keys of exactly `sizeBits`/8 bytes when given; keys come back in request order under
   * the key_ID strings as requested. 400/404 -> KMS_KEY_UNAVAILABLE (A6).
   */
  async getKeysWithIds(masterSaeId: string, keyIds: string[], opts: CallOptions & { sizeBits?: number } = {}): Promise<QkdKey[]> {
    const ids: string[] = [];
    const seen = new Set<string>();
    for (const id of keyIds) {
      if (!isValidKeyId(id)) {
        throw new QkdgwError(ErrorCodes.KMS_REQUEST, `dec_keys key_ID is not 1..64 printable ASCII characters: ${JSON.stringify(String(id).slice(0, 70))}`);
      }
      const n = normalizeKeyId(id);
      if (!seen.has(n)) {
        seen.add(n);
        ids.push(id);
      }
    }
    if (ids.length === 0) throw new QkdgwError(ErrorCodes.KMS_REQUEST, 'dec_keys needs at least one key_ID');
    if (opts.sizeBits !== undefined && (!Number.isSafeInteger(opts.sizeBits) || opts.sizeBits <= 0 || opts.sizeBits % 8 !== 0)) {
      throw new QkdgwError(ErrorCodes.KMS_CONFIG, `dec_keys sizeBits must be a positive multiple of 8, got ${opts.sizeBits}`);
    }
    const pathSae = this.decKeysPathSae === 'self' ? this.selfSaeId : masterSaeId;
    const path = `${this.#prefix}/keys/${encodeSegment(pathSae)}/dec_keys`;
    const json = { key_IDs: ids.map((key_ID) => ({ key_ID })) };
    const keys = await this.#observe('dec_keys', async () => {
      const body = await this.#call({ op: 'dec_keys', method: 'POST', path, json }, opts, opts.sizeBits);
      return this.#container(body, { op: 'dec_keys', count: ids.length, sizeBits: opts.sizeBits, keyIds: ids });
    });
    this.#log.debug({ op: 'dec_keys', masterSaeId, keyIds: ids }, 'keys received');
    return keys;
  }

  /** Closes pooled connections; in-flight calls fail with INTERNAL; later calls throw INTERNAL. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  #container(body: unknown, exp: Parameters<typeof parseKeyContainer>[1]): QkdKey[] {
    try {
      return parseKeyContainer(body, { ...exp, allowBase64Url: this.#allowB64u });
    } catch (e) {
      // An alarm, not a retry: the KME broke the protocol (C29). No key bytes in the line.
      this.#log.error({ op: exp.op, code: (e as QkdgwError).code, err: (e as Error).message }, 'KME key container rejected and zeroized');
      throw e;
    }
  }

  /** Runs one call and reports it to onCall (never lets the observer break the call). */
  async #observe<T>(op: Etsi014Operation, fn: () => Promise<T>): Promise<T> {
    if (!this.#onCall) return fn();
    const t0 = performance.now();
    const report = (httpStatus: number | null, errorKind: KmsErrorKind | null): void => {
      try {
        this.#onCall!({ op, durationSec: (performance.now() - t0) / 1000, httpStatus, errorKind });
      } catch {
        // metrics are never worth a failed key request
      }
    };
    try {
      const r = await fn();
      report(200, null);
      return r;
    } catch (e) {
      const st = e instanceof QkdgwError ? e.details?.status : undefined;
      report(typeof st === 'number' ? st : null, classifyKmsError(e).kind);
      throw e;
    }
  }

  /** One exchange: non-200 -> mapped error; 200 -> parsed JSON (raw bytes zeroized). */
  async #call(x: Exchange, call: CallOptions | undefined, sizeBits?: number): Promise<unknown> {
    const res: HttpResult = await this.#transport.exchange(x, call);
    try {
      if (res.status !== 200) throw httpStatusError(x.op, res.status, extractKmeMessage(res.body), x.path, { sizeBits });
      return this.#parseJson(x.op, x.path, res);
    } finally {
      res.body.fill(0);
    }
  }

  #parseJson(op: Etsi014Operation, path: string, res: HttpResult): unknown {
    const proto = (why: string) => new QkdgwError(ErrorCodes.KMS_PROTOCOL, `KME ${op} response rejected: ${why}`, { op, path, status: 200, retryable: false });
    if (!isJsonContentType(res.contentType)) throw proto(`content-type ${JSON.stringify(res.contentType)} is not application/json (UTF-8)`);
    let text: string;
    try {
      text = utf8.decode(res.body);
    } catch {
      throw proto('body is not valid UTF-8');
    }
    try {
      return JSON.parse(text);
    } catch {
      throw proto('body is not valid JSON');
    }
  }
}
