/**
 * The metrics and health HTTP endpoint (config `metrics.listen`, loopback only; issue 5
 * point 4):
 *
 *   GET /metrics  Prometheus text format (src/daemon/metrics.ts), 500 + one line if collecting fails
 *   GET /healthz  200 `ok` while the process (its event loop) answers
 *   GET /readyz   200 `ready`, or 503 `not ready: <SAE IDs>` naming every peer that is not
 *                 up, or not in QKD mode under `qkd: required` (snapshot.notReady), or
 *                 503 `not ready: stopping` once a stop began
 *
 * HEAD works on each; other methods get 405, other paths 404, a request body 400. The
 * server binds only the given host; the config layer already refused non-loopback ones.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { ErrorCodes, QkdgwError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { GatewayMetrics, type MetricsSource } from './metrics.js';

export type { MetricsSource } from './metrics.js';

export interface MetricsServerOptions {
  source: MetricsSource;
  /** Address to bind (e.g. 127.0.0.1 or ::1); config `metrics.listen`. */
  host: string;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  logger: Logger;
  /** prom-client's default process metrics, prefixed `qkdgw_` (event-loop lag, CPU, memory, GC). Default true. */
  processMetrics?: boolean;
}

export interface MetricsServer {
  /** The bound port. */
  readonly port: number;
  readonly metrics: GatewayMetrics;
  /**
   * Stops listening, closes idle keep-alive connections at once and the rest once their
   * response is out (at the latest after 2 s); stops observing KME calls. Idempotent.
   */
  close(): Promise<void>;
}

const PATHS = new Set(['/metrics', '/healthz', '/readyz']);
/** How long close() lets a response in flight finish before it cuts the connection. */
const CLOSE_GRACE_MS = 2000;

/**
 * Starts the endpoint on host:port. Resolves once listening and logs `metrics_listening`
 * (host, port). Throws QKDGW_E_LISTEN when the address cannot be bound (in use, not local).
 */
export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const log = o.logger.child({ component: 'metrics' });
  const metrics = new GatewayMetrics({ source: o.source, processMetrics: o.processMetrics });
  let closing = false;

  const send = (res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': String(Buffer.byteLength(body)),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      ...(closing ? { Connection: 'close' } : {}),
      ...extra,
    });
    // Node drops the body of a HEAD reply and keeps the headers (Content-Length included).
    res.end(body);
  };
  const text = 'text/plain; charset=utf-8';
  const failed = (res: ServerResponse, what: string, e: unknown): void => {
    const msg = oneLine(e instanceof Error ? e.message : String(e));
    log.warn({ event: 'metrics_collect_failed', path: what, err: msg }, `${what}: collecting failed: ${msg}`);
    send(res, 500, text, `${what}: collecting failed: ${msg}\n`);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (!PATHS.has(path)) return send(res, 404, text, 'not found\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, text, 'method not allowed\n', { Allow: 'GET, HEAD' });
    // A scrape carries no body; one that does is not read but refused, and the connection closed.
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (te !== undefined || (cl !== undefined && cl !== '0')) return send(res, 400, text, 'request body not accepted\n', { Connection: 'close' });
    switch (path) {
      case '/healthz':
        return send(res, 200, text, 'ok\n');
      case '/readyz': {
        let notReady: string[];
        let stopping = false;
        try {
          const snap = o.source.snapshot();
          notReady = snap.notReady;
          stopping = snap.stopping === true;
        } catch (e) {
          return failed(res, path, e);
        }
        if (stopping) return send(res, 503, text, 'not ready: stopping\n');
        return notReady.length === 0 ? send(res, 200, text, 'ready\n') : send(res, 503, text, `not ready: ${notReady.join(' ')}\n`);
      }
      default: // '/metrics'
        metrics.render().then(
          (body) => send(res, 200, metrics.contentType, body),
          (e: unknown) => failed(res, path, e),
        );
    }
  };

  const server = createServer(
    // Node checks headersTimeout/requestTimeout only every connectionsCheckingInterval (30 s by
    // default): 64 silent connections would hold every slot, /healthz included, that long.
    { maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 },
    (req, res) => {
      try {
        handle(req, res);
      } catch (e) {
        failed(res, (req.url ?? '/').split('?', 1)[0], e);
      }
    },
  );
  server.maxConnections = 64;

  await new Promise<void>((resolve, reject) => {
    const onErr = (e: Error): void => {
      metrics.close();
      reject(new QkdgwError(ErrorCodes.LISTEN, `metrics listener ${o.host}:${o.port}: ${e.message}`, undefined, { cause: e }));
    };
    server.once('error', onErr);
    server.listen({ host: o.host, port: o.port, exclusive: true }, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  // After listening a server error (e.g. EMFILE on accept) is logged, never thrown.
  server.on('error', (e) => log.warn({ event: 'metrics_server_error', err: e.message }, `metrics server: ${e.message}`));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
  log.info({ event: 'metrics_listening', host: o.host, port }, `metrics and health on http://${shown}:${port}/metrics, /healthz, /readyz`);

  let closed: Promise<void> | null = null;
  return {
    port,
    metrics,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        metrics.close();
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closed;
    },
  };
}

function oneLine(s: string): string {
  const line = s.replace(/[\r\n]+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}
