/**
 * The responder side of control connections (protocol.md s2): one TLS 1.3 listener for
 * every peer whose responder we are. A connection is routed by the identity its client
 * certificate proves, checked in full (chain or pin, single SAN URI, clientAuth EKU)
 * before a single frame is read; anything else is closed, counted and logged.
 */
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { ControlConn } from './control-conn.js';
import { CONTROL_TLS_BASE, type ControlTlsMaterial } from './control-tls.js';
import { checkPeerCertificate, claimedIdentity, EKU_CLIENT_AUTH } from './tls-identity.js';
import type { PeerRuntime } from './peer.js';

export interface ControlServerPeer {
  runtime: PeerRuntime;
  pin?: string;
  /** PING after / dead after, ms (protocol.md s2 defaults 10 s / 30 s). */
  liveness?: { pingAfterMs: number; deadAfterMs: number };
}

export interface ControlServerOptions {
  host: string;
  port: number;
  /** Replaced by setTls() on reload. */
  tls: ControlTlsMaterial;
  /** Peers for which we are the responder, by identity. Replaceable (reload). */
  peers: Map<string, ControlServerPeer>;
  clock: Clock;
  logger: Logger;
  /** A connection must finish TLS within this, ms (default 10 000). */
  handshakeTimeoutMs?: number;
  /** New TCP connections per second and source address (default 20). */
  maxNewConnectionsPerSource?: number;
  /** Connections still in their TLS handshake, all sources together (default 256). */
  maxPendingHandshakes?: number;
}

export class ControlServer {
  readonly #o: ControlServerOptions;
  #server: Server | null = null;
  readonly rejected = new Map<string, number>();
  readonly #rate = new Map<string, { second: number; count: number }>();
  #pending = 0;
  /** The bound port (0 until listen() resolved). */
  port = 0;
  readonly #handshakeDone = new WeakMap<object, () => void>();

  constructor(o: ControlServerOptions) {
    this.#o = o;
  }

  /** Listens; resolves with the bound port. Throws LISTEN when the address is taken. */
  async listen(): Promise<number> {
    const server = createServer({
      ...CONTROL_TLS_BASE,
      cert: this.#o.tls.cert,
      key: this.#o.tls.key,
      ca: this.#o.tls.ca,
      requestCert: true,
      // #accept decides per peer: a pinned peer is checked against its pin, any other must
      // chain to control.ca (socket.authorized). Not OpenSSL's all-or-nothing switch, which
      // is fixed at listen time while a reload may add or remove pinned peers.
      rejectUnauthorized: false,
      // A peer that never completes TLS must not hold a socket (Node's default is 120 s).
      handshakeTimeout: this.#o.handshakeTimeoutMs ?? 10_000,
    });
    // Before TLS: bound what one source can make us hold (a flood must not exhaust descriptors).
    server.on('connection', (raw: import('node:net').Socket) => {
      const addr = raw.remoteAddress ?? '?';
      const second = Math.floor(this.#o.clock.now() / 1000);
      const r = this.#rate.get(addr);
      if (!r || r.second !== second) {
        if (this.#rate.size > 10_000) this.#rate.clear();
        this.#rate.set(addr, { second, count: 1 });
      } else if (++r.count > (this.#o.maxNewConnectionsPerSource ?? 20)) {
        this.rejected.set('rate_limited', (this.rejected.get('rate_limited') ?? 0) + 1);
        raw.destroy();
        return;
      }
      if (this.#pending >= (this.#o.maxPendingHandshakes ?? 256)) {
        this.rejected.set('too_many_handshakes', (this.rejected.get('too_many_handshakes') ?? 0) + 1);
        raw.destroy();
        return;
      }
      this.#pending++;
      let counted = true;
      const done = (): void => {
        if (counted) this.#pending--;
        counted = false;
      };
      raw.once('close', done);
      // secureConnection fires on the TLSSocket wrapping this one; the handshake is over then.
      this.#handshakeDone.set(raw, done);
    });
    server.on('secureConnection', (s) => {
      const raw = (s as unknown as { _parent?: object })._parent;
      if (raw) this.#handshakeDone.get(raw)?.();
      this.#accept(s);
    });
    // Node emits this on a handshake timeout without closing the socket: #reject closes it.
    server.on('tlsClientError', (e, socket) => this.#reject('tls', `TLS handshake failed: ${e.message}`, socket));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new QkdgwError(ErrorCodes.LISTEN, `control listener ${this.#o.host}:${this.#o.port}: ${e.message}`, undefined, { cause: e })));
      server.listen(this.#o.port, this.#o.host, () => resolve());
    });
    server.on('error', (e) => this.#o.logger.error({ event: 'control_listener_error', err: e.message }));
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.#o.port;
    return this.port;
  }

  #reject(kind: string, message: string, socket?: TLSSocket): void {
    this.rejected.set(kind, (this.rejected.get(kind) ?? 0) + 1);
    this.#o.logger.warn({ event: 'control_rejected', kind, remote: remoteOf(socket) }, message);
    socket?.destroy();
  }

  #accept(socket: TLSSocket): void {
    socket.on('error', () => undefined);
    if (socket.isSessionReused()) return this.#reject('resumption', 'session resumption is not allowed', socket);
    const id = claimedIdentity(socket.getPeerCertificate());
    const peer = id ? this.#o.peers.get(id) : undefined;
    if (!id || !peer) return this.#reject('unknown_peer', `certificate names no peer we respond to (${id ?? 'no urn:qkdgw identity'})`, socket);
    if (peer.pin === undefined && !socket.authorized) return this.#reject('chain', `peer ${id}: certificate not issued by the control CA: ${String(socket.authorizationError)}`, socket);
    const why = checkPeerCertificate(socket.getPeerCertificate().raw, { expected: id, eku: EKU_CLIENT_AUTH, pin: peer.pin });
    if (why) return this.#reject('identity', `peer ${id}: ${why}`, socket);
    const conn = new ControlConn(socket, { clock: this.#o.clock, logger: this.#o.logger, ...peer.liveness });
    this.#o.logger.debug({ event: 'control_accepted', peer: id, conn: conn.id, remote: conn.remote });
    peer.runtime.attach(conn);
  }

  /** New control certificate/key/CA for connections accepted from now on (reload); open ones keep theirs. */
  setTls(tls: ControlTlsMaterial): void {
    this.#o.tls = tls;
    this.#server?.setSecureContext({ ...CONTROL_TLS_BASE, cert: tls.cert, key: tls.key, ca: tls.ca });
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (!s) return;
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/**
 * `address:port` of a control connection's peer, or undefined when no longer known: a TLS
 * socket that failed its handshake may already be detached, so its raw parent is asked too.
 */
function remoteOf(socket: TLSSocket | undefined): string | undefined {
  if (!socket) return undefined;
  const raw = (socket as unknown as { _parent?: { remoteAddress?: string; remotePort?: number } })._parent;
  const addr = socket.remoteAddress ?? raw?.remoteAddress;
  const port = socket.remotePort ?? raw?.remotePort;
  return addr === undefined ? undefined : `${addr}:${port ?? '?'}`;
}
