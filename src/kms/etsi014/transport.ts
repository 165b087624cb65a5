/**
 * One HTTPS exchange with the KME over undici (HTTP/1.1 only, mTLS), under ONE total
 * deadline that covers queueing, connect, TLS, headers and the body read (C30: a KME
 * that stalls mid-body cannot hang the call).
 *
 * BC-05: the pool's keep-alive is kept below a typical KME idle timeout (default 4 s,
 * also capping any server `Keep-Alive: timeout=` hint), and a request that dies with a
 * socket error before any response arrives is retried ONCE on a brand-new connection
 * (a one-shot undici Client, so it cannot pick another stale pooled socket). The retry
 * is counted; the cap of one keeps a flapping link from draining the KME pool when the
 * lost request was an enc_keys the KME already served.
 */
import { Agent, Client, type Dispatcher } from 'undici';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { systemClock, type Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { SOCKET_RETRY_CODES, HANDSHAKE_PHASE, transportError } from './error-map.js';
import type { TLSSocket } from 'node:tls';
import { makeConnector, type TlsMaterial } from './tls.js';
import type { CallOptions, Etsi014Operation } from './types.js';

/** Default total deadline per call, ms (etsi014.md C30). */
export const DEFAULT_TIMEOUT_MS = 5000;
/** Default idle keep-alive of pooled KME connections, ms: below the common 5 s server idle timeout (BC-05). */
export const DEFAULT_KEEPALIVE_MS = 4000;
/** Largest response body we read, bytes. 128 keys of 1024 bits fit in well under 64 KiB. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

export interface TransportOptions {
  origin: string;
  expectedIdentity: string;
  material: TlsMaterial;
  pin?: Buffer;
  timeoutMs: number;
  keepAliveTimeoutMs: number;
  clock: Clock;
  logger: Logger;
}

export interface HttpResult {
  status: number;
  contentType: string | undefined;
  /** raw body; the caller zeroizes it after parsing (it may hold key material) */
  body: Buffer;
}

export interface Exchange {
  op: Etsi014Operation;
  method: 'GET' | 'POST';
  path: string;
  json?: unknown;
}

export class Etsi014Transport {
  readonly #o: TransportOptions;
  readonly #connector: ReturnType<typeof makeConnector>;
  readonly #agent: Agent;
  readonly #inflight = new Set<AbortController>();
  readonly #sockets = new Map<number, SocketState>();
  #closed = false;
  #socketRetries = 0;

  constructor(o: TransportOptions) {
    this.#o = { ...o, clock: o.clock ?? systemClock };
    this.#connector = makeConnector({
      onSecure: (sock) => this.#track(sock),
      material: o.material,
      expectedIdentity: o.expectedIdentity,
      pin: o.pin,
      connectTimeoutMs: o.timeoutMs,
    });
    this.#agent = new Agent(this.#clientOptions());
  }

  /**
   * Keeps, per connection, what tells a stale pooled socket from a rejected new one.
   * A TLS 1.3 KME checks our client certificate only after our side of the handshake is
   * done, and a Node-based KME that rejects it just closes, with no alert. A Node KME
   * also flushes its session tickets only with its first response. So a connection that
   * closes before delivering anything (no ticket, no byte) is a new connection the KME
   * refused (BC-04), while a stale pooled socket has delivered a response before (BC-05).
   */
  #track(sock: TLSSocket): void {
    const st: SocketState = { sock, tls13: sock.getProtocol() === 'TLSv1.3', ticket: false };
    sock.on('session', () => {
      st.ticket = true;
    });
    sock.on('error', (err: unknown) => {
      if (err && typeof err === 'object') {
        try {
          Object.defineProperty(err, SOCKET_STATE, { value: st });
        } catch {
          // frozen error: the local-port lookup still works for undici's SocketError
        }
      }
    });
    const port = sock.localPort;
    if (port === undefined) return;
    this.#sockets.delete(port);
    this.#sockets.set(port, st);
    if (this.#sockets.size > 256) this.#sockets.delete(this.#sockets.keys().next().value as number);
  }

  /** State of the connection a socket error came from, when known. */
  #stateOf(e: unknown): SocketState | undefined {
    const tagged = (e as Record<symbol, unknown> | null)?.[SOCKET_STATE] as SocketState | undefined;
    if (tagged) return tagged;
    const port = (e as { socket?: { localPort?: unknown } } | null)?.socket?.localPort;
    return typeof port === 'number' ? this.#sockets.get(port) : undefined;
  }

  #clientOptions(): Agent.Options {
    return {
      connect: this.#connector,
      allowH2: false,
      pipelining: 1,
      keepAliveTimeout: this.#o.keepAliveTimeoutMs,
      keepAliveMaxTimeout: this.#o.keepAliveTimeoutMs,
      headersTimeout: this.#o.timeoutMs,
      bodyTimeout: this.#o.timeoutMs,
      maxResponseSize: MAX_RESPONSE_BYTES,
    };
  }

  /** How many BC-05 retries-on-a-new-connection this transport has made. */
  get socketRetries(): number {
    return this.#socketRetries;
  }

  /**
   * Sends one request and reads the whole response under one deadline of
   * min(timeoutMs, call.timeoutMs) ms. Returns any HTTP status; throws only transport
   * failures: KMS_TIMEOUT (deadline or call.signal), KMS_TLS, KMS_CONNECT, KMS_PROTOCOL
   * (oversized or malformed HTTP), INTERNAL after close(). Their details carry
   * `responseLost` and `socketRetried` (KmsErrorDetails). `call.socketRetry === false`
   * turns the BC-05 retry off (the KeySource does so once it has retried a lost enc_keys).
   */
  async exchange(x: Exchange, call: CallOptions = {}): Promise<HttpResult> {
    if (this.#closed) throw new QkdgwError(ErrorCodes.INTERNAL, 'ETSI 014 client used after close()');
    const deadline = Math.min(this.#o.timeoutMs, call.timeoutMs ?? Infinity);
    const ac = new AbortController();
    let why: 'deadline' | 'caller' | 'closed' | undefined;
    const abort = (w: typeof why) => {
      if (why) return;
      why = w;
      ac.abort(new Error(`aborted: ${w}`));
    };
    const cancelTimer = this.#o.clock.setTimer(deadline, () => abort('deadline'));
    const onCaller = () => abort('caller');
    if (call.signal?.aborted) abort('caller');
    call.signal?.addEventListener('abort', onCaller, { once: true });
    const closer = Object.assign(ac, { closeAbort: () => abort('closed') });
    this.#inflight.add(closer);
    const ctx = { op: x.op, path: x.path, expectedIdentity: this.#o.expectedIdentity, retried: false, midBody: false };
    try {
      try {
        return await this.#once(this.#agent, x, ac.signal, deadline);
      } catch (e) {
        if (why || call.socketRetry === false || !isRetryableSocketError(e)) throw e;
        const st = this.#stateOf(e);
        if (st && !delivered(st)) throw closedFreshConnection(x, st, e);
        this.#socketRetries++;
        ctx.retried = true;
        this.#o.logger.debug(
          { op: x.op, path: x.path, errno: (e as { code?: string }).code, socketRetries: this.#socketRetries },
          'KME connection closed before any response; retrying once on a new connection',
        );
        const fresh = new Client(this.#o.origin, this.#clientOptions());
        try {
          return await this.#once(fresh, x, ac.signal, deadline);
        } finally {
          fresh.destroy().catch(() => undefined);
        }
      }
    } catch (e) {
      if (why === 'deadline' || why === 'caller') {
        throw new QkdgwError(
          ErrorCodes.KMS_TIMEOUT,
          why === 'deadline' ? `KME ${x.op} did not complete within ${deadline} ms` : `KME ${x.op} abandoned: caller deadline passed`,
          // The request may have been sent: an enc_keys cut off here may have been served.
          { op: x.op, path: x.path, timeoutMs: deadline, retryable: true, responseLost: true, socketRetried: ctx.retried },
          { cause: e },
        );
      }
      if (why === 'closed') throw new QkdgwError(ErrorCodes.INTERNAL, 'ETSI 014 client closed during the call', { op: x.op });
      if (e instanceof ResponseBodyError) throw transportError(e.cause, { ...ctx, midBody: true });
      throw transportError(e, ctx);
    } finally {
      cancelTimer();
      call.signal?.removeEventListener('abort', onCaller);
      this.#inflight.delete(closer);
    }
  }

  async #once(d: Dispatcher, x: Exchange, signal: AbortSignal, deadline: number): Promise<HttpResult> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (x.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(x.json);
    }
    const res = await d.request({
      origin: this.#o.origin,
      path: x.path,
      method: x.method,
      headers,
      body,
      signal,
      headersTimeout: deadline,
      bodyTimeout: deadline,
    });
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const c of res.body) {
        const b = c as Buffer;
        total += b.length;
        chunks.push(b);
        if (total > MAX_RESPONSE_BYTES) {
          throw new QkdgwError(ErrorCodes.KMS_PROTOCOL, `KME ${x.op} response exceeds ${MAX_RESPONSE_BYTES} bytes`, {
            op: x.op,
            path: x.path,
            retryable: false,
          });
        }
      }
    } catch (e) {
      for (const c of chunks) c.fill(0);
      res.body.destroy();
      throw new ResponseBodyError(e);
    }
    const out = Buffer.concat(chunks, total);
    for (const c of chunks) c.fill(0);
    const ct = res.headers['content-type'];
    return { status: res.statusCode, contentType: Array.isArray(ct) ? ct[0] : ct, body: out };
  }

  /** Aborts in-flight calls (they fail with INTERNAL) and closes every pooled connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#inflight) (c as AbortController & { closeAbort(): void }).closeAbort();
    await this.#agent.destroy().catch(() => undefined);
  }
}

interface SocketState {
  sock: TLSSocket;
  tls13: boolean;
  ticket: boolean;
}

const SOCKET_STATE = Symbol('qkdgw.etsi014.socketState');

/**
 * True once the connection delivered anything after the handshake: a response byte, or
 * on TLS 1.3 a session ticket (TLS 1.2 sends its ticket inside the handshake).
 */
function delivered(st: SocketState): boolean {
  return st.sock.bytesRead > 0 || (st.tls13 && st.ticket);
}

/** A new connection the KME closed before delivering anything (see #track). Never retried. */
function closedFreshConnection(x: Exchange, st: SocketState, cause: unknown): QkdgwError {
  if (st.tls13) {
    return new QkdgwError(
      ErrorCodes.KMS_TLS,
      `KME closed a new TLS 1.3 connection right after the handshake without answering ${x.op}: ` +
        `it most likely rejected our SAE client certificate (check that the KME trusts the CA that issued it)`,
      { op: x.op, path: x.path, retryable: false, responseLost: false, socketRetried: false },
      { cause },
    );
  }
  return new QkdgwError(
    ErrorCodes.KMS_CONNECT,
    `KME closed a new connection without answering ${x.op}`,
    { op: x.op, path: x.path, retryable: true, responseLost: true, socketRetried: false },
    { cause },
  );
}

/** A failure after the response headers arrived: never retried (the KME has answered). */
class ResponseBodyError extends Error {
  constructor(cause: unknown) {
    super('response body read failed', { cause });
  }
}

function isRetryableSocketError(e: unknown): boolean {
  if (e instanceof QkdgwError || e instanceof ResponseBodyError) return false;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !SOCKET_RETRY_CODES.has(code)) return false;
  // A reset during the TLS handshake is a rejection, not a stale pooled socket.
  return !(e as Record<symbol, unknown>)[HANDSHAKE_PHASE];
}
