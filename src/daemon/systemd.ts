/**
 * The systemd notifier (sd_notify(3), Type=notify): READY=1, RELOADING=1, STOPPING=1,
 * STATUS= and WATCHDOG=1 sent through the native addon's sdNotify (Node has no AF_UNIX
 * datagram socket, field report BC-38), plus the one-line STATUS and the health check
 * the watchdog (src/daemon/watchdog.ts) feeds on.
 *
 * NOTIFY_SOCKET unset (not under systemd, or Type=simple): every call is a no-op and the
 * addon is not even loaded. NOTIFY_SOCKET set but no addon: one warning, then no-ops.
 */
import type { CryptoBackend } from '../crypto/backend.js';
import type { NativeStatus } from '../crypto/native/loader.js';
import type { Logger } from '../util/logger.js';
import { nativeFromEnv } from './crypto-backend.js';

export interface SystemdNotifierOptions {
  /** Read for NOTIFY_SOCKET, QKDGW_NATIVE, QKDGW_NATIVE_ADDON (default process.env). */
  env?: NodeJS.ProcessEnv;
  logger: Logger;
  /** Loads the addon (default: as the environment says, src/daemon/crypto-backend.ts). */
  load?: (env: NodeJS.ProcessEnv) => NativeStatus;
}

/** One STATUS= value: a single line (newlines would start new assignments), at most 512 bytes. */
export function statusValue(s: string): string {
  const line = s.replace(/[\r\n\0]+/g, ' ').trim();
  return Buffer.byteLength(line) <= 512 ? line : `${Buffer.from(line).subarray(0, 509).toString('utf8').replace(/\uFFFD+$/, '')}...`;
}

export class SystemdNotifier {
  /** NOTIFY_SOCKET as found at construction; null when unset or empty. */
  readonly socket: string | null;
  readonly #log: Logger;
  #send: ((state: string) => boolean) | null = null;
  /** Send failures already logged at warn (by message), so a dead socket warns once per cause. */
  readonly #failures = new Set<string>();

  constructor(o: SystemdNotifierOptions) {
    const env = o.env ?? process.env;
    this.#log = o.logger;
    this.socket = env.NOTIFY_SOCKET ? env.NOTIFY_SOCKET : null;
    if (this.socket === null) return;
    let st: NativeStatus;
    try {
      st = (o.load ?? nativeFromEnv)(env);
    } catch (e) {
      st = { available: false, reason: e instanceof Error ? e.message : String(e), path: '' };
    }
    if (st.available) {
      const b = st.binding;
      this.#send = (state) => b.sdNotify(state);
      return;
    }
    this.#log.warn(
      { event: 'sd_notify_unavailable', notify_socket: this.socket, reason: st.reason },
      `NOTIFY_SOCKET is set but sd_notify needs the native addon, which is unavailable (${st.reason}): no READY=1, STATUS= or WATCHDOG=1 will be sent, so a Type=notify unit times out at start; rebuild the addon (npm run build:native) or run with Type=simple and no WatchdogSec=`,
    );
  }

  /** True when notifications actually go out (NOTIFY_SOCKET set and the addon loaded). */
  get enabled(): boolean {
    return this.#send !== null;
  }

  /**
   * Sends `fields` as one datagram (`KEY=VALUE` lines, in order). Returns true when sent;
   * false when disabled or when sending failed (logged at warn once per cause, then debug:
   * a notification is never worth stopping the gateway for).
   */
  notify(fields: ReadonlyArray<readonly [string, string | number]>): boolean {
    if (!this.#send) return false;
    const state = fields.map(([k, v]) => `${k}=${k === 'STATUS' ? statusValue(String(v)) : String(v)}`).join('\n');
    try {
      return this.#send(state);
    } catch (e) {
      const err = e instanceof Error ? e.message : String(e);
      const first = !this.#failures.has(err);
      if (first) this.#failures.add(err);
      this.#log[first ? 'warn' : 'debug']({ event: 'sd_notify_failed', notify_socket: this.socket, state: fields.map(([k]) => k).join(','), err });
      return false;
    }
  }

  /** READY=1 (start-up complete, or a reload finished) with a STATUS= line. */
  ready(status: string): boolean {
    return this.notify([
      ['READY', 1],
      ['STATUS', status],
    ]);
  }

  /**
   * RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC in microseconds, which is what
   * process.hrtime reads on Linux; systemd >= 253 wants it). READY=1 must follow.
   */
  reloading(status = 'reloading configuration'): boolean {
    return this.notify([
      ['RELOADING', 1],
      ['MONOTONIC_USEC', (process.hrtime.bigint() / 1000n).toString()],
      ['STATUS', status],
    ]);
  }

  /** STOPPING=1: shutdown has begun (systemd stops expecting watchdog pings). */
  stopping(status = 'stopping: draining flows, zeroizing keys'): boolean {
    return this.notify([
      ['STOPPING', 1],
      ['STATUS', status],
    ]);
  }

  status(line: string): boolean {
    return this.notify([['STATUS', line]]);
  }

  watchdog(): boolean {
    return this.notify([['WATCHDOG', 1]]);
  }
}

/** The parts of a Gateway the status line and the health check read (src/daemon/gateway.ts). */
export interface GatewayView {
  readonly peers: ReadonlyMap<
    string,
    {
      readonly controlUp: boolean;
      readonly closed: boolean;
      readonly session: { readonly slots: { readonly current: object | null }; readonly ladder: { readonly mode: 'qkd' | 'degraded' } };
    }
  >;
  readonly pools: ReadonlyMap<string, { stats(): { stock: number } }>;
  readonly crypto: { readonly backend: CryptoBackend } | null;
}

/**
 * STATUS= for `systemctl status`: `peers up U/N, degraded D, key stock K`. A peer is up
 * when its control channel completed HELLO and it has a current epoch to seal under;
 * degraded when that epoch (or the initiator's ladder) is in degraded mode (protocol.md s6);
 * key stock sums the QKD keys held ahead by the initiator's pools.
 */
export function gatewayStatusLine(gw: GatewayView): string {
  let up = 0;
  let degraded = 0;
  for (const rt of gw.peers.values()) {
    if (rt.controlUp && rt.session.slots.current !== null) up++;
    if (rt.session.ladder.mode === 'degraded') degraded++;
  }
  let stock = 0;
  for (const p of gw.pools.values()) stock += p.stats().stock;
  return `peers up ${up}/${gw.peers.size}, degraded ${degraded}, key stock ${stock}`;
}

/** AES-256-GCM, McGrew & Viega test case 14: zero key, zero IV, one zero block. */
const KAT = { key: new Uint8Array(32), nonce: new Uint8Array(12), pt: new Uint8Array(16), sealed: 'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919' };

/**
 * The watchdog's health check: null when healthy, else why not. Unhealthy when the
 * crypto backend is not set up, when it no longer computes one AES-256-GCM known answer
 * (the key engine every epoch's keys go through), or when a peer's runtime was closed
 * while the gateway runs (its epochs were wiped: it cannot carry traffic again without a
 * restart). A KME outage or a peer that is down is NOT unhealthy: a restart would not
 * fix either, and it would throw away the epochs still in force.
 */
export function gatewayHealth(gw: GatewayView): string | null {
  if (!gw.crypto) return 'crypto backend not selected';
  const a = gw.crypto.backend.aes256gcm(KAT.key);
  try {
    if (Buffer.from(a.seal(KAT.nonce, KAT.pt, new Uint8Array(0))).toString('hex') !== KAT.sealed) return `AES-256-GCM backend ${gw.crypto.backend.name} fails its known answer`;
  } finally {
    a.destroy();
  }
  for (const [peer, rt] of gw.peers) if (rt.closed) return `peer ${peer}: runtime closed`;
  return null;
}
