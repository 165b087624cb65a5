/**
 * Request routing for one KME: authenticate the caller, parse the path, check the method,
 * read and parse the body, call the handler, write the answer.
 *
 * Order matters: the caller is identified before anything else, so a valid certificate
 * of an SAE this KME does not serve gets 401 without a body on every path and method
 * (etsi014.md S3).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { API_KEYS_PREFIX, MAX_BODY_BYTES } from './constants.js';
import { handleDecKeys, handleEncKeys, handleStatus, type KmeContext } from './handlers.js';
import type { GateResult } from './faults.js';
import { readBody, sendReply, type Reply } from './http.js';
import { callerSaeId } from './identity.js';
import {
  parseJsonObject,
  parseKeyIdsJson,
  parseKeyIdsQuery,
  parseKeyRequestJson,
  parseKeyRequestQuery,
  type Parsed,
} from './validation.js';

export type Operation = 'status' | 'enc_keys' | 'dec_keys';
/** What a request is counted under: its operation, or `other` for paths outside the API. */
export type Endpoint = Operation | 'other';

/** A parsed API path: the SAE ID segment, percent-decoded, and the operation. */
export type Route = { ok: true; saeId: string; op: Operation; query: URLSearchParams } | { ok: false; reply: Reply };

const OPS: readonly Operation[] = ['status', 'enc_keys', 'dec_keys'];

/**
 * Parses `/api/v1/keys/{SAE_ID}/{status|enc_keys|dec_keys}[?query]`. The SAE ID segment
 * is split on the raw `/` and only then percent-decoded, so IDs containing `/`, `%` or
 * spaces round-trip (ETSI GS QKD 014 T3/T5/T7 "URL-encoded"; etsi014.md S5).
 */
export function parseRoute(url: string): Route {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  const notFound: Route = { ok: false, reply: { status: 404, body: { message: 'no such resource' } } };
  if (!path.startsWith(API_KEYS_PREFIX)) return notFound;
  const segs = path.slice(API_KEYS_PREFIX.length).split('/');
  if (segs.length !== 2 || segs[0].length === 0 || !OPS.includes(segs[1] as Operation)) return notFound;
  let saeId: string;
  try {
    saeId = decodeURIComponent(segs[0]);
  } catch {
    return { ok: false, reply: { status: 400, body: { message: 'SAE ID in the path is not valid percent-encoding' } } };
  }
  return { ok: true, saeId, op: segs[1] as Operation, query };
}

const methodNotAllowed = (allow: string): Reply => ({
  status: 405,
  body: { message: `method not allowed; use ${allow}` },
  headers: { allow },
});

function isJsonContentType(v: string | undefined): boolean {
  if (v === undefined) return true;
  return v.split(';')[0].trim().toLowerCase() === 'application/json';
}

/**
 * Everything after authentication, as a pure-ish function of the request. Null when the
 * fault gate already took care of the response (a stall).
 */
async function route(ctx: KmeContext, req: IncomingMessage, res: ServerResponse, caller: string, hooks: RouterHooks): Promise<Reply | null> {
  const r = parseRoute(req.url ?? '/');
  // Drain the body even when the answer is already known, so keep-alive stays in sync.
  const raw = await readBody(req, MAX_BODY_BYTES);
  // Injected faults (faults.ts) act before anything is parsed or consumed.
  const gate = hooks.gate ? await hooks.gate(res, r.ok ? r.op : 'other') : { kind: 'continue' as const };
  if (gate.kind === 'stalled') return null;
  if (gate.kind === 'reply') return gate.reply;
  if (raw === null) return { status: 400, body: { message: `request body exceeds ${MAX_BODY_BYTES} bytes` } };
  if (!r.ok) return r.reply;
  const method = req.method ?? 'GET';
  if (r.op === 'status') {
    // etsi014.md S10: Get status is GET only.
    if (method !== 'GET') return methodNotAllowed('GET');
    return handleStatus(ctx, caller, r.saeId);
  }
  if (method !== 'GET' && method !== 'POST') return methodNotAllowed('GET, POST');
  let body: Record<string, unknown> | null = null;
  if (method === 'POST') {
    if (!isJsonContentType(req.headers['content-type'])) {
      return { status: 400, body: { message: 'Content-Type shall be application/json' } };
    }
    const parsed = parseJsonObject(raw);
    if (!parsed.ok) return { status: 400, body: parsed.error };
    body = parsed.value;
  }
  const link = ctx.config.link;
  if (r.op === 'enc_keys') {
    const unit = ctx.quirks.sizeAsBytes ? 'bytes' : 'bits';
    const kr = body ? parseKeyRequestJson(body, link, unit) : parseKeyRequestQuery(r.query, link, unit);
    return kr.ok ? handleEncKeys(ctx, caller, r.saeId, kr.value) : badRequest(kr);
  }
  const ids = body ? parseKeyIdsJson(body, link) : parseKeyIdsQuery(r.query, link);
  return ids.ok ? handleDecKeys(ctx, caller, r.saeId, ids.value) : badRequest(ids);
}

const badRequest = (p: Parsed<unknown> & { ok: false }): Reply => ({ status: 400, body: p.error });

/** Per-request bookkeeping the server keeps (counts by status) and the fault gate. */
export interface RouterHooks {
  onReply(status: number, endpoint: Endpoint): void;
  /** Applies injected faults to an authenticated request (faults.ts `gateRequest`). */
  gate?(res: ServerResponse, endpoint: Endpoint): Promise<GateResult>;
}

/** The endpoint a request URL is counted under; never fails. */
export function endpointOf(url: string): Endpoint {
  const r = parseRoute(url);
  return r.ok ? r.op : 'other';
}

/**
 * The `request` listener of one KME's HTTPS server. Errors that escape a handler become
 * 503 (T4 "error on server side") and are logged; they never crash the process.
 */
export function createRequestListener(ctx: KmeContext, hooks: RouterHooks): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const caller = callerSaeId(req.socket as TLSSocket, ctx.config.saeIdFrom);
    const endpoint = endpointOf(req.url ?? '/');
    const finish = (reply: Reply | null): void => {
      if (reply === null) return;
      hooks.onReply(reply.status, endpoint);
      if (reply.status !== 200) {
        ctx.logger.debug({
          event: 'kme_request_refused',
          kme: ctx.self.kmeId,
          method: req.method,
          path: (req.url ?? '').split('?')[0],
          caller: caller ?? null,
          status: reply.status,
          message: 'body' in reply ? reply.body.message : undefined,
        });
      }
      sendReply(res, reply, { html: ctx.quirks.htmlErrors });
    };
    if (caller === null || !ctx.selfSaes.has(caller)) {
      // Drain quietly so the connection can carry the next request.
      req.resume();
      finish({ status: 401 });
      return;
    }
    route(ctx, req, res, caller, hooks).then(finish, (e: unknown) => {
      // A client that went away mid-body is not a server fault.
      if (req.destroyed && res.destroyed) return;
      ctx.logger.error({ event: 'kme_internal_error', kme: ctx.self.kmeId, err: e instanceof Error ? e.message : String(e) });
      finish({ status: 503, body: { message: 'internal error' } });
    });
  };
}
