/**
 * The simulator's test-only admin endpoint (etsi014.md S37): plain HTTP on a loopback
 * address, on its own port, outside `/api/v1`. Each route maps 1:1 onto a method of the
 * control API (control.ts); bodies use the same member names (camelCase).
 *
 * | Route                | Body (JSON object; may be empty on POST unless noted)          | Control call       |
 * |----------------------|----------------------------------------------------------------|--------------------|
 * | `GET /admin/state`   | none                                                           | `state()`          |
 * | `POST /admin/link`   | `{keyRateBps?, maxKeyCount?, paused?}`                         | `setLink(body)`    |
 * | `POST /admin/faults` | `{kme?, latencyMs?, stallMidBody?, status503?, mismatchNext?}` | `setFaults(body)`  |
 * | `POST /admin/quirks` | `{exhaustion?, unknownId404?, decKeysNonConsuming?, sizeAsBytes?, decKeysPathSlave?, htmlErrors?}` | `setQuirks(body)` |
 * | `POST /admin/drain`  | `{pending?}`                                                   | `drain(body)`      |
 * | `POST /admin/add_keys` | `{count}` (required)                                         | `addKeys(count)`   |
 * | `POST /admin/reset`  | `{keys?}`                                                      | `reset(body)`      |
 *
 * Every success is 200 with the state snapshot (`KmeSimState`) as JSON. Errors are JSON
 * `{"message": "..."}`: 400 for a body that is not a JSON object, an unknown member or a
 * wrong type or a member written twice (nothing is changed then); 403 for a request with
 * an `Origin` header or a `Host` that is not a loopback name or address (a web page, also
 * through DNS rebinding, must not drive it); 404 unknown path; 405 wrong method (with `Allow`); 413 body
 * over 64 KiB; 415 a POST body whose Content-Type is not application/json.
 */
import { once } from 'node:events';
import { isScalar, parseDocument, visit } from 'yaml';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, QkdgwError, isQkdgwError } from '../../errors.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import type { KmeSimControl } from './control.js';
import { expectObject, rejectUnknown } from './input.js';
import { isLoopbackHost } from '../../util/loopback.js';

/** Path prefix of every admin route. */
export const ADMIN_PREFIX = '/admin/';
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export interface KmeAdminServer {
  /** The address the server is bound to. */
  host: string;
  port: number;
  /** `http://host:port` (IPv6 in brackets); routes are `${url}/admin/...`. */
  url: string;
  close(): Promise<void>;
}

export interface KmeAdminServerOptions {
  /** Loopback address (default 127.0.0.1). */
  host?: string;
  /** Port (default 0 = any free port). */
  port?: number;
  /** Receives `kme_sim_admin_listening` and per-request debug lines (default silent). */
  logger?: Logger;
}

type Route = (body: unknown) => unknown;

function routes(control: KmeSimControl): Record<string, { method: 'GET' | 'POST'; run: Route }> {
  return {
    state: { method: 'GET', run: () => control.state() },
    link: { method: 'POST', run: (b) => control.setLink(b as never) },
    faults: { method: 'POST', run: (b) => control.setFaults(b as never) },
    quirks: { method: 'POST', run: (b) => control.setQuirks(b as never) },
    drain: { method: 'POST', run: (b) => control.drain(b as never) },
    reset: { method: 'POST', run: (b) => control.reset(b as never) },
    add_keys: {
      method: 'POST',
      run: (b) => {
        const o = expectObject(b, 'add_keys');
        rejectUnknown(o, 'add_keys', ['count']);
        return control.addKeys(o.count as number);
      },
    },
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(text.length), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

/** Reads the body; null when over the limit (the rest is drained so the answer can be read). */
function readAll(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total <= MAX_ADMIN_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => resolve(total <= MAX_ADMIN_BODY_BYTES ? Buffer.concat(chunks) : null));
    req.on('error', reject);
  });
}

async function handle(table: ReturnType<typeof routes>, req: IncomingMessage): Promise<unknown> {
  const raw = await readAll(req);
  if (req.headers.origin !== undefined) throw new HttpError(403, 'requests from web pages (with an Origin header) are refused');
  // DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 sends no
  // Origin on a same-origin GET, but its Host still names evil.example.
  if (!isLoopbackHost(hostOf(req.headers.host))) throw new HttpError(403, `Host ${JSON.stringify(req.headers.host ?? '')} is not a loopback name or address`);
  const path = (req.url ?? '/').split('?')[0];
  const name = path.startsWith(ADMIN_PREFIX) ? path.slice(ADMIN_PREFIX.length) : '';
  const route = Object.hasOwn(table, name) ? table[name] : undefined;
  if (!route) throw new HttpError(404, `no such admin resource ${JSON.stringify(path)}; routes: ${Object.keys(table).map((n) => ADMIN_PREFIX + n).join(', ')}`);
  if (req.method !== route.method) throw new HttpError(405, `method not allowed; use ${route.method}`, { allow: route.method });
  if (raw === null) throw new HttpError(413, `body exceeds ${MAX_ADMIN_BODY_BYTES} bytes`);
  let body: unknown;
  if (route.method === 'POST' && raw.length > 0) {
    const ct = req.headers['content-type'];
    if (ct === undefined || ct.split(';')[0].trim().toLowerCase() !== 'application/json') {
      throw new HttpError(415, 'Content-Type shall be application/json');
    }
    const text = raw.toString('utf8');
    try {
      body = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'body shall be a JSON object');
    const dup = duplicateMember(text);
    if (dup !== null) throw new HttpError(400, `member ${JSON.stringify(dup)} appears twice; each may appear once (nothing was changed)`);
  }
  try {
    return route.run(body);
  } catch (e) {
    if (isQkdgwError(e, ErrorCodes.KMS_CONFIG)) throw new HttpError(400, e.message);
    throw e;
  }
}

/** The host part of a Host header (`127.0.0.1:8080`, `[::1]:8080`, `localhost`), or ''. */
function hostOf(header: string | undefined): string {
  if (!header) return '';
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(header);
  if (v6) return v6[1];
  return header.replace(/:\d+$/, '');
}

/**
 * The first member name that appears twice in one object of a JSON text, or null. JSON.parse
 * keeps the last silently; `{"status503":0,"status503":5}` must not mean whichever came last.
 * The text is valid JSON (parsed before), which YAML 1.2 reads identically.
 */
function duplicateMember(text: string): string | null {
  let dup: string | null = null;
  visit(parseDocument(text, { uniqueKeys: false }), {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const k = String(isScalar(pair.key) ? pair.key.value : pair.key);
        if (seen.has(k)) {
          dup = k;
          return visit.BREAK;
        }
        seen.add(k);
      }
      return undefined;
    },
  });
  return dup;
}

const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * Starts the admin endpoint for `control` (usually `sim.control`; `startKmeSimulator`
 * does it itself when given `admin` options). Routes and bodies: see the file header.
 * @throws QkdgwError KMS_CONFIG when `host` is not a loopback address or binds to a
 *   non-loopback one (then nothing keeps listening); LISTEN when the port cannot be bound
 */
export async function startKmeSimAdmin(control: KmeSimControl, opts: KmeAdminServerOptions = {}): Promise<KmeAdminServer> {
  const host = opts.host ?? '127.0.0.1';
  const logger = opts.logger ?? silentLogger;
  const notLoopback = (h: string): never => {
    throw new QkdgwError(ErrorCodes.KMS_CONFIG, `kme simulator admin endpoint: ${JSON.stringify(h)} is not a loopback address; it has no authentication, so it listens on 127.0.0.1, ::1 or localhost only`, { host: h });
  };
  if (!isLoopbackHost(host)) notLoopback(host);
  const table = routes(control);
  const server = http.createServer((req, res) => {
    handle(table, req).then(
      (state) => {
        logger.debug({ event: 'kme_sim_admin_request', method: req.method, path: req.url, status: 200 });
        send(res, 200, state);
      },
      (e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        const message = e instanceof Error ? e.message : String(e);
        logger.debug({ event: 'kme_sim_admin_request', method: req.method, path: req.url, status, message });
        if (!res.headersSent && !res.destroyed) send(res, status, { message }, e instanceof HttpError ? e.headers : {});
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.listen(opts.port ?? 0, host);
  try {
    await once(server, 'listening');
  } catch (e) {
    throw new QkdgwError(ErrorCodes.LISTEN, `kme simulator admin endpoint: cannot listen on ${host}:${opts.port ?? 0}`, { host }, { cause: e });
  }
  const addr = server.address() as AddressInfo;
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  };
  // `localhost` is resolved by the OS: make sure it really meant loopback.
  if (!isLoopbackHost(addr.address)) {
    await close();
    notLoopback(addr.address);
  }
  const url = `http://${urlHost(addr.address)}:${addr.port}`;
  logger.info({ event: 'kme_sim_admin_listening', url });
  return { host: addr.address, port: addr.port, url, close };
}
