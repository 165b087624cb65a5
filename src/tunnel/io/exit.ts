/**
 * Exit side of L4 (protocol.md s5.1): the data port. A carrier starts with the 28-byte
 * preamble (wrong magic/version/reserved or an unknown receiver_index closes it at once),
 * then its first record must be an authenticated OPEN; its flow_id is checked against the
 * epoch's replay set and added, whatever happens next; the service name maps to a target
 * from our own exports only. New connections are rate-limited per source address.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { decodePreamble, PREAMBLE_LEN } from '../core/wire/preamble.js';
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
  readonly #o: DataServerOptions;
  readonly #server: Server;
  readonly #links = new Set<CarrierLink>();
  readonly #rate = new Map<string, { second: number; count: number }>();
  port = 0;
  readonly stats = { accepted: 0, rateLimited: 0, badPreamble: 0, unknownIndex: 0, replays: 0, flowsExhausted: 0, unknownService: 0 };

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
      sock.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let have = 0;
    const timer = setTimeout(() => sock.destroy(), this.#o.preambleTimeoutMs ?? 10_000);
    timer.unref();
    const onData = (c: Buffer): void => {
      chunks.push(c);
      have += c.length;
      if (have < PREAMBLE_LEN) return;
      clearTimeout(timer);
      sock.off('data', onData);
      sock.pause();
      const all = Buffer.concat(chunks);
      this.#start(sock, all.subarray(0, PREAMBLE_LEN), all.subarray(PREAMBLE_LEN));
    };
    sock.on('data', onData);
    sock.once('close', () => clearTimeout(timer));
  }

  #start(sock: Socket, pre: Buffer, rest: Buffer): void {
    let p;
    try {
      p = decodePreamble(pre);
    } catch (e) {
      this.stats.badPreamble++;
      this.#o.logger.warn({ event: 'carrier_bad_preamble', remote: sock.remoteAddress, detail: (e as Error).message });
      sock.destroy();
      return;
    }
    const peer = this.#o.peerByIndex(p.receiverIndex);
    if (!peer) {
      this.stats.unknownIndex++;
      this.#o.logger.warn({ event: 'carrier_unknown_index', remote: sock.remoteAddress });
      sock.destroy();
      return;
    }
    const flowHex = Buffer.from(p.flowId).toString('hex');
    const link = new CarrierLink({
      side: 'exit',
      runtime: peer.runtime,
      carrier: sock,
      flowId: Buffer.from(p.flowId),
      clock: this.#o.clock,
      logger: peer.runtime.log,
      timers: this.#o.timers,
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

  async close(): Promise<void> {
    await closeServer(this.#server);
  }
}
