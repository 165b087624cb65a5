/**
 * Exit side of L4 (protocol.md s5.1): the data port. A carrier starts with the 28-byte
 * preamble (wrong magic/version/reserved or an unknown receiver_index closes it at once,
 * judged byte by byte as they arrive; an incomplete one is closed at its deadline),
 * then its first record must be an authenticated OPEN; its flow_id is checked against the
 * epoch's replay set and added, whatever happens next; the service name maps to a target
 * from our own exports only. New connections are rate-limited per source address.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { decodePreamble, PREAMBLE_LEN, PREAMBLE_MAGIC, PREAMBLE_VERSION } from '../core/wire/preamble.js';
import { CarrierLink, type CarrierTimers } from './carrier-link.js';
import { closeServer, listenOn } from './listen.js';
import type { PeerRuntime } from './peer.js';

export interface ExportTarget {
  host: string;
  port: number;
}

export interface DataPeer {
  runtime: PeerRuntime;
  /** Services this peer may reach through us: name -> target. */
  exports: Map<string, ExportTarget>;
  /** This peer's carrier liveness (its policy's keepalive / dead_after); default: the server's. */
  timers?: CarrierTimers;
}

export interface DataServerOptions {
  host: string;
  port: number;
  /** Peers by the receiver_index we gave them in our HELLO (a function: reload swaps the map). */
  peerByIndex: (index: number) => DataPeer | null;
  maxNewConnectionsPerSource: number;
  clock: Clock;
  logger: Logger;
  timers: CarrierTimers;
  /** Deadline for the preamble, ms. */
  preambleTimeoutMs?: number;
}

export class DataServer {
  #o: DataServerOptions;
  readonly #server: Server;
  readonly #links = new Set<CarrierLink>();
  readonly #rate = new Map<string, { second: number; count: number }>();
  port = 0;
  #rateLogged = -1;
  readonly stats = { accepted: 0, rateLimited: 0, badPreamble: 0, unknownIndex: 0, preambleTimeouts: 0, replays: 0, flowsExhausted: 0, unknownService: 0 };

  constructor(o: DataServerOptions) {
    this.#o = o;
    this.#server = createServer({ allowHalfOpen: true }, (s) => this.#accept(s));
  }

  async listen(): Promise<number> {
    this.port = await listenOn(this.#server, this.#o.host, this.#o.port, 'data listener');
    return this.port;
  }

  #rateOk(addr: string): boolean {
    const second = Math.floor(this.#o.clock.now() / 1000);
    const r = this.#rate.get(addr);
    if (!r || r.second !== second) {
      if (this.#rate.size > 10_000) this.#rate.clear();
      this.#rate.set(addr, { second, count: 1 });
      return true;
    }
    r.count++;
    return r.count <= this.#o.maxNewConnectionsPerSource;
  }

  #accept(sock: Socket): void {
    this.stats.accepted++;
    sock.on('error', () => undefined);
    if (!this.#rateOk(sock.remoteAddress ?? '?')) {
      this.stats.rateLimited++;
      // One line per second at most: the limit exists because something floods us.
      const second = Math.floor(this.#o.clock.now() / 1000);
      if (second !== this.#rateLogged) {
        this.#rateLogged = second;
        this.#o.logger.warn({ event: 'carrier_rate_limited', remote: sock.remoteAddress, limit_per_s: this.#o.maxNewConnectionsPerSource, total: this.stats.rateLimited });
      }
      sock.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let have = 0;
    const cancelTimer = this.#o.clock.setTimer(this.#o.preambleTimeoutMs ?? 10_000, () => {
      this.stats.preambleTimeouts++;
      this.#o.logger.warn({ event: 'carrier_preamble_timeout', remote: sock.remoteAddress, bytes: have });
      sock.destroy();
    });
    const onData = (c: Buffer): void => {
      chunks.push(c);
      have += c.length;
      // Judge every byte as it comes: a wrong prefix closes at once instead of waiting for
      // 28 bytes that a scanner or a slow drip may never send.
      const head = chunks.length === 1 ? c : Buffer.concat(chunks);
      const bad = this.#prefixError(head.subarray(0, Math.min(have, PREAMBLE_LEN)));
      if (bad) {
        done();
        return this.#refuse(sock, bad.kind, bad.detail);
      }
      if (have < PREAMBLE_LEN) return;
      done();
      sock.pause();
      this.#start(sock, head.subarray(0, PREAMBLE_LEN), head.subarray(PREAMBLE_LEN));
    };
    // EOF before 28 bytes: nothing more can come (the socket is half-open: allowHalfOpen).
    const onEnd = (): void => {
      done();
      this.#refuse(sock, 'bad_preamble', `connection ended after ${have} of the 28 preamble bytes`);
    };
    const done = (): void => {
      cancelTimer();
      sock.off('data', onData);
      sock.off('end', onEnd);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.once('close', () => cancelTimer());
  }

  /**
   * What is wrong with the first bytes of a preamble (1..28 of them), or null while they
   * can still be a valid one: magic, version, reserved, and, once its 4 bytes are in, a
   * receiver_index we gave out (protocol.md s5.1).
   */
  #prefixError(b: Buffer): { kind: 'bad_preamble' | 'unknown_index'; detail: string } | null {
    const n = b.length;
    for (let i = 0; i < Math.min(n, 4); i++) if (b[i] !== PREAMBLE_MAGIC[i]) return { kind: 'bad_preamble', detail: 'preamble magic is not QGW1' };
    if (n > 4 && b[4] !== PREAMBLE_VERSION) return { kind: 'bad_preamble', detail: `preamble version ${b[4]} is not 1` };
    for (let i = 5; i < Math.min(n, 8); i++) if (b[i] !== 0) return { kind: 'bad_preamble', detail: 'preamble reserved bytes are not 0' };
    if (n >= 12) {
      const index = b.readUInt32BE(8);
      if (index === 0) return { kind: 'bad_preamble', detail: 'preamble receiver_index is 0' };
      if (!this.#o.peerByIndex(index)) return { kind: 'unknown_index', detail: 'receiver_index is not one we gave out' };
    }
    return null;
  }

  #refuse(sock: Socket, kind: 'bad_preamble' | 'unknown_index', detail: string): void {
    if (kind === 'unknown_index') {
      this.stats.unknownIndex++;
      this.#o.logger.warn({ event: 'carrier_unknown_index', remote: sock.remoteAddress });
    } else {
      this.stats.badPreamble++;
      this.#o.logger.warn({ event: 'carrier_bad_preamble', remote: sock.remoteAddress, detail });
    }
    sock.destroy();
  }

  #start(sock: Socket, pre: Buffer, rest: Buffer): void {
    let p;
    try {
      p = decodePreamble(pre);
    } catch (e) {
      return this.#refuse(sock, 'bad_preamble', (e as Error).message);
    }
    const peer = this.#o.peerByIndex(p.receiverIndex);
    if (!peer) return this.#refuse(sock, 'unknown_index', 'receiver_index is not one we gave out');
    const flowHex = Buffer.from(p.flowId).toString('hex');
    const link = new CarrierLink({
      side: 'exit',
      runtime: peer.runtime,
      carrier: sock,
      flowId: Buffer.from(p.flowId),
      clock: this.#o.clock,
      logger: peer.runtime.log,
      timers: peer.timers ?? this.#o.timers,
      onOpen: (service, epoch) => {
        const verdict = peer.runtime.admitFlow(epoch, flowHex);
        if (verdict === 'replay') {
          this.stats.replays++;
          peer.runtime.log.warn({ event: 'carrier_replay', epoch: epoch.n, flow: flowHex });
          return { silent: 'carrier_replay' };
        }
        if (verdict === 'exhausted') {
          this.stats.flowsExhausted++;
          return { silent: 'flows_exhausted' };
        }
        const target = peer.exports.get(service);
        if (!target) {
          this.stats.unknownService++;
          return { rst: 'unknown_service' };
        }
        const t = connect({ host: target.host, port: target.port, allowHalfOpen: true });
        peer.runtime.log.debug({ event: 'carrier_open', service, epoch: epoch.n, flow: flowHex });
        return t;
      },
    });
    this.#links.add(link);
    sock.once('close', () => this.#links.delete(link));
    if (rest.length) sock.unshift(rest);
    sock.resume();
  }

  get openCarriers(): number {
    return this.#links.size;
  }

  /** Reload: the per-source rate limit and the default liveness timers for new carriers. */
  update(o: Partial<Pick<DataServerOptions, 'maxNewConnectionsPerSource' | 'timers'>>): void {
    this.#o = { ...this.#o, ...o };
  }

  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}
