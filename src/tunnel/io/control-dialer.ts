/**
 * The initiator side of a control connection (protocol.md s2): connect, verify the
 * responder (chain or pin, single SAN URI, serverAuth EKU) before reading a frame, hand
 * the connection to the PeerRuntime, and reconnect with jittered exponential backoff
 * (0.5 s .. 30 s) whenever it drops.
 */
import { connect, type TLSSocket } from 'node:tls';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { Spec } from '../core/constants.js';
import { ControlConn } from './control-conn.js';
import { CONTROL_TLS_BASE, type ControlTlsMaterial } from './control-tls.js';
import { checkPeerCertificate, EKU_SERVER_AUTH } from './tls-identity.js';
import type { PeerRuntime } from './peer.js';

/** A control connection up this long counts as healthy for the backoff. */
const STABLE_AFTER_MS = 10_000;

export interface ControlDialerOptions {
  runtime: PeerRuntime;
  host: string;
  port: number;
  tls: ControlTlsMaterial;
  pin?: string;
  /** PING after / dead after, ms (protocol.md s2 defaults 10 s / 30 s). */
  liveness?: { pingAfterMs: number; deadAfterMs: number };
  clock: Clock;
  logger: Logger;
  random?: () => number;
  /** TLS handshake deadline, ms. */
  connectTimeoutMs?: number;
}

export class ControlDialer {
  #o: ControlDialerOptions;
  #stopped = false;
  #failures = 0;
  #cancel: (() => void) | null = null;
  #socket: TLSSocket | null = null;
  #conn: ControlConn | null = null;
  #lastError: string | null = null;

  constructor(o: ControlDialerOptions) {
    this.#o = o;
  }

  start(): void {
    this.#dial();
  }

  /** New control certificate/key/CA for the next connection (reload); the open one keeps its own. */
  setTls(tls: ControlTlsMaterial): void {
    this.#o = { ...this.#o, tls };
  }

  /** New PING/dead timers (a policy reload) for the next connection; the open one keeps its own. */
  setLiveness(liveness: ControlDialerOptions['liveness']): void {
    this.#o = { ...this.#o, liveness };
  }

  #dial(): void {
    if (this.#stopped) return;
    const o = this.#o;
    const peerId = o.runtime.peerId;
    const socket = connect({
      ...CONTROL_TLS_BASE,
      host: o.host,
      port: o.port,
      cert: o.tls.cert,
      key: o.tls.key,
      ca: o.tls.ca,
      rejectUnauthorized: o.pin === undefined,
      // The default checks DNS names; identities live in one SAN URI (protocol.md s2).
      checkServerIdentity: (_host, cert) => {
        const why = checkPeerCertificate(cert.raw, { expected: peerId, eku: EKU_SERVER_AUTH, pin: o.pin });
        return why ? Object.assign(new Error(why), { code: 'ERR_QKDGW_PEER_IDENTITY' }) : undefined;
      },
    });
    this.#socket = socket;
    socket.setTimeout(o.connectTimeoutMs ?? 10_000, () => socket.destroy(new Error('TLS handshake timed out')));
    let settled = false;
    socket.once('secureConnect', () => {
      settled = true;
      socket.setTimeout(0);
      const why = checkPeerCertificate(socket.getPeerCertificate().raw, { expected: peerId, eku: EKU_SERVER_AUTH, pin: o.pin });
      if (why || (o.pin === undefined && !socket.authorized)) {
        socket.destroy();
        return this.#retry(why ?? `responder certificate not trusted: ${String(socket.authorizationError)}`);
      }
      if (this.#lastError) o.logger.info({ event: 'control_connected', after: this.#lastError });
      this.#lastError = null;
      const conn = new ControlConn(socket, { clock: o.clock, logger: o.logger, ...o.liveness });
      this.#conn = conn;
      const upAt = o.clock.now();
      socket.once('close', () => {
        this.#conn = null;
        // Backoff resets only after a connection that lasted: a peer that accepts TLS and then
        // closes at once (a fatal ALERT, a duplicate gateway) must not get a reconnect loop.
        if (o.clock.now() - upAt >= STABLE_AFTER_MS) this.#failures = 0;
        this.#retry('control connection closed');
      });
      o.runtime.attach(conn);
    });
    socket.once('error', (e: Error) => {
      if (!settled) {
        settled = true;
        this.#retry(describe(e));
      }
    });
  }

  #retry(reason: string): void {
    this.#socket = null;
    if (this.#stopped) return;
    this.#failures++;
    const base = Math.min(Spec.BACKOFF_MAX_MS, Spec.BACKOFF_MIN_MS * 2 ** Math.min(16, this.#failures - 1));
    const delay = Math.max(Spec.BACKOFF_MIN_MS, Math.round(base * (0.5 + 0.5 * (this.#o.random ?? Math.random)())));
    // One warn per distinct reason; repeats are debug so a dead peer does not flood the log.
    const level = reason === this.#lastError ? 'debug' : 'warn';
    this.#o.logger[level]({ event: 'control_connect_failed', reason, attempt: this.#failures, retry_in_ms: delay });
    this.#lastError = reason;
    this.#cancel?.();
    this.#cancel = this.#o.clock.setTimer(delay, () => this.#dial());
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#conn?.close('shutdown');
    this.#socket?.destroy();
  }
}

function describe(e: Error & { code?: string }): string {
  const code = e.code ?? '';
  if (code === 'ECONNREFUSED') return `connection refused (${e.message})`;
  if (code === 'ERR_QKDGW_PEER_IDENTITY') return `responder identity rejected: ${e.message}`;
  if (code.startsWith('ERR_SSL') || code.includes('CERT') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') return `TLS failure: ${code}: ${e.message}`;
  if (code === 'ECONNRESET') return 'connection reset during the TLS handshake (the responder may have refused our certificate)';
  return `${code || 'error'}: ${e.message}`;
}
