/**
 * A tiny scriptable HTTPS "KME" on 127.0.0.1:0 for the client tests: mTLS
 * (requestCert/rejectUnauthorized), records every request, and lets each test answer
 * with odd behaviours (bad bodies, HTML errors, stalls, socket kills).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { EventEmitter, once } from 'node:events';
import { testCerts, type Pem } from './certs.js';
import { ManualClock } from '../../../src/util/clock.js';

export interface SeenRequest {
  method: string;
  /** raw request target as sent (percent-encoding intact) */
  url: string;
  httpVersion: string;
  alpn: string | false | null;
  headers: IncomingMessage['headers'];
  body: string;
  json: unknown;
  /** subject CN of the client certificate the KME saw */
  peerCn: string | undefined;
  /** SAN string of the client certificate */
  peerSan: string | undefined;
  /** how many requests this TCP connection carried before this one */
  seqOnSocket: number;
  socket: TLSSocket;
}

export type Handler = (req: SeenRequest, res: ServerResponse) => void;

export interface MockKmeOptions {
  serverCert?: Pem;
  /** CA the mock uses to verify client certs; default the test CA */
  clientCa?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
  keepAliveTimeout?: number;
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  ALPNProtocols?: string[];
  handler?: Handler;
}

export interface MockKme {
  port: number;
  /** https://127.0.0.1:port/api/v1 */
  url: string;
  server: https.Server;
  requests: SeenRequest[];
  /** 'request' (SeenRequest) events */
  events: EventEmitter;
  handler: Handler;
  /** resolves once `n` requests in total have arrived */
  waitForRequests(n: number): Promise<void>;
  tlsErrors: Error[];
  close(): Promise<void>;
}

/** Writes a JSON answer (content-type application/json unless given). */
export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Starts a mock KME; closed (all sockets destroyed) at test teardown. */
export async function startMockKme(t: Teardown, o: MockKmeOptions = {}): Promise<MockKme> {
  const c = testCerts();
  const cert = o.serverCert ?? c.kme;
  const server = https.createServer({
    cert: cert.cert,
    key: cert.key,
    ca: o.clientCa ?? c.ca,
    requestCert: o.requestCert ?? true,
    rejectUnauthorized: o.rejectUnauthorized ?? true,
    keepAliveTimeout: o.keepAliveTimeout ?? 5000,
    ...(o.minVersion ? { minVersion: o.minVersion } : {}),
    ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
    ...(o.ALPNProtocols ? { ALPNProtocols: o.ALPNProtocols } : {}),
  });
  const events = new EventEmitter();
  const perSocket = new WeakMap<object, number>();
  const kme: MockKme = {
    port: 0,
    url: '',
    server,
    requests: [],
    events,
    handler: o.handler ?? ((_req, res) => sendJson(res, 500, { message: 'no handler' })),
    tlsErrors: [],
    async waitForRequests(n: number) {
      while (kme.requests.length < n) await once(events, 'request');
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('tlsClientError', (e) => kme.tlsErrors.push(e));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const socket = req.socket as TLSSocket;
      const seq = perSocket.get(socket) ?? 0;
      perSocket.set(socket, seq + 1);
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const peer = socket.getPeerCertificate?.();
      const seen: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        alpn: socket.alpnProtocol,
        headers: req.headers,
        body,
        json,
        peerCn: peer && 'subject' in peer && peer.subject ? (peer.subject.CN as string) : undefined,
        peerSan: peer && 'subjectaltname' in peer ? peer.subjectaltname : undefined,
        seqOnSocket: seq,
        socket,
      };
      kme.requests.push(seen);
      try {
        kme.handler(seen, res);
      } finally {
        events.emit('request', seen);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  kme.port = (server.address() as AddressInfo).port;
  kme.url = `https://127.0.0.1:${kme.port}/api/v1`;
  t.teardown(() => kme.close());
  return kme;
}

/** A spec-shaped status body (ETSI GS QKD 014 s6.1) with overrides. */
export function statusBody(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    source_KME_ID: 'KME_A',
    target_KME_ID: 'KME_B',
    master_SAE_ID: 'SAE_A',
    slave_SAE_ID: 'SAE_B',
    key_size: 256,
    stored_key_count: 25000,
    max_key_count: 100000,
    max_key_per_request: 128,
    max_key_size: 1024,
    min_key_size: 64,
    max_SAE_ID_count: 0,
    ...over,
  };
}

let mockKeySeq = 0;

/**
 * A Key container (ETSI GS QKD 014 s6.3) with `n` fresh 32-byte keys and unique key_IDs
 * (`<prefix>-<seq>`). Also returns the IDs so a test can follow them.
 */
export function keyContainer(n = 1, prefix = 'mock'): { body: { keys: Array<{ key_ID: string; key: string }> }; ids: string[] } {
  const keys = Array.from({ length: n }, () => {
    const s = ++mockKeySeq;
    return { key_ID: `${prefix}-${s}`, key: Buffer.alloc(32, s & 0xff).toString('base64') };
  });
  return { body: { keys }, ids: keys.map((k) => k.key_ID) };
}

/** Sends headers and the first part of a Key container, then never finishes (a KME that stalls mid-body). */
export function stallMidBody(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': 500 });
  res.write('{"keys":[{"key_ID":"stalled-1","key":"');
}

/** Sends headers and part of a Key container, then resets the connection (a response lost mid-body). */
export function resetMidBody(req: SeenRequest, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': 500 });
  res.write('{"keys":[{"key_ID":"lost-1","key":"', () => req.socket.destroy());
}

/**
 * A ManualClock for code whose only timers on it are one deadline and its backoff sleeps
 * (the ETSI 014 client itself runs on the system clock in these tests). drive(run) runs
 * `run()` to completion: the first `skip` timers armed (the deadline) are left alone, every
 * later one is a sleep and time jumps by its delay. No real waiting on virtual time.
 */
export class DrivenClock extends ManualClock {
  #armed: number[] = [];
  #waiter: ((ms: number) => void) | null = null;

  override setTimer(ms: number, fn: () => void): () => void {
    const cancel = super.setTimer(ms, fn);
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w(ms);
    } else this.#armed.push(ms);
    return cancel;
  }

  #next(): Promise<number> {
    const ms = this.#armed.shift();
    if (ms !== undefined) return Promise.resolve(ms);
    return new Promise((r) => (this.#waiter = r));
  }

  /** Starts `run()` and runs it to its end; returns its outcome and the sleeps skipped over (ms). */
  async drive<T>(run: () => Promise<T>, skip = 1): Promise<{ value?: T; error?: unknown; sleeps: number[] }> {
    const sleeps: number[] = [];
    this.#armed = []; // timers armed by earlier calls are not this call's deadline
    const done = run().then(
      (value) => ({ end: true as const, value, error: undefined }),
      (error: unknown) => ({ end: true as const, value: undefined, error }),
    );
    for (;;) {
      const r = await Promise.race([done, this.#next().then((ms) => ({ end: false as const, ms }))]);
      if (r.end) {
        this.#waiter = null;
        this.#armed = [];
        return r.error === undefined ? { value: r.value, sleeps } : { error: r.error, sleeps };
      }
      if (skip > 0) skip--;
      else {
        sleeps.push(r.ms);
        this.advance(r.ms);
      }
    }
  }
}
