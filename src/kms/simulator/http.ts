/**
 * HTTP plumbing of the simulator: reading a bounded body and writing the three kinds of
 * answer ETSI GS QKD 014 T4/T6/T8 allow: 200 with JSON, an Error body (s6.5) for
 * 400/503 (and 404/405 for paths and methods outside the API), and 401 with no body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { htmlErrorPage } from './quirks.js';
import type { ErrorBody } from './validation.js';

export type Reply =
  | { status: 200; body: unknown; /** JSON holds key bytes: zero our Buffer copy once sent. */ secret?: boolean }
  | { status: 400 | 404 | 405 | 503; body: ErrorBody; headers?: Record<string, string> }
  | { status: 401 };

/**
 * Reads the whole body. Past `limit` bytes the rest is read and discarded and the result
 * is null: answering only after the request ended keeps the connection usable and the
 * client able to read the 400 (closing early would reset the socket under its writes).
 * The server's request timeout bounds a client that never stops.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total <= limit) chunks.push(c);
      else chunks.length = 0;
    });
    req.on('end', () => resolve(total <= limit ? Buffer.concat(chunks, total) : null));
    req.on('error', reject);
  });
}

/**
 * Writes `reply`. JSON is sent as `application/json` UTF-8; 401 carries no body at all (T4).
 * With `html` (quirk `htmlErrors`, etsi014.md A15) every non-200 answer carries a
 * `text/html` page instead, 401 included, as Flask's `abort()` does.
 */
export function sendReply(res: ServerResponse, reply: Reply, opts: { html?: boolean } = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (reply.status !== 200 && opts.html) {
    const page = Buffer.from(htmlErrorPage(reply.status, 'body' in reply ? reply.body.message : undefined), 'utf8');
    res.writeHead(reply.status, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(page.length),
      ...('headers' in reply ? reply.headers : {}),
    });
    res.end(page);
    return;
  }
  if (reply.status === 401) {
    res.writeHead(401, { 'content-length': '0' });
    res.end();
    return;
  }
  const body = Buffer.from(JSON.stringify(reply.body), 'utf8');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'cache-control': 'no-store',
  };
  if (reply.status !== 200) Object.assign(headers, reply.headers ?? {});
  res.writeHead(reply.status, headers);
  if (reply.status === 200 && reply.secret) {
    res.end(body, () => body.fill(0));
  } else {
    res.end(body);
  }
}
