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
