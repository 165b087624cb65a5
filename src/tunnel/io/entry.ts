/**
 * Entry side of L4 services (protocol.md s5.1): a local listener per service; each
 * accepted client gets one carrier to the peer's data port. Clients that arrive while the
 * pair has no epoch to seal under are held (nothing read, nothing sent) up to `hold`,
 * then reset (protocol.md s4).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { CarrierLink, newFlowId, type CarrierTimers } from './carrier-link.js';
import { closeServer, listenOn } from './listen.js';
import type { PeerRuntime } from './peer.js';

export interface ServiceListenerOptions {
  name: string;
  host: string;
  port: number;
  /** The runtime of the service's peer (a function: a reload may swap it). */
  runtime: () => PeerRuntime | null;
  /** The peer's data port. */
  peerData: () => { host: string; port: number } | null;
  clock: Clock;
  logger: Logger;
  timers: CarrierTimers;
}

export class ServiceListener {
  #o: ServiceListenerOptions;
  readonly #server: Server;
  readonly #links = new Set<CarrierLink>();
  readonly #held = new Set<Socket>();
  port = 0;
  readonly stats = { accepted: 0, held: 0, resetOnHold: 0, connectFailures: 0 };

  constructor(o: ServiceListenerOptions) {
    this.#o = o;
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.#accept(s));
  }

  async listen(): Promise<number> {
    this.port = await listenOn(this.#server, this.#o.host, this.#o.port, `service ${this.#o.name} listener`);
    return this.port;
  }

  get name(): string {
    return this.#o.name;
  }

  /**
   * Reload: new connections use these from now on (peer, its data address, liveness
   * timers, logger); connections already accepted keep what they started with.
   */
  update(o: Partial<Pick<ServiceListenerOptions, 'runtime' | 'peerData' | 'timers' | 'logger'>>): void {
    this.#o = { ...this.#o, ...o };
  }

  #accept(client: Socket): void {
    this.stats.accepted++;
    client.on('error', () => undefined);
    const rt = this.#o.runtime();
    if (!rt) {
      client.resetAndDestroy();
      return;
    }
    if (rt.sendEpoch() && rt.session.peerReceiverIndex !== null) return this.#open(client, rt);
    // Past the pair's hold, clients are reset at once until an epoch is installed (protocol.md s4).
    const deadline = rt.holdDeadline() ?? this.#o.clock.now() + rt.holdMs;
    if (this.#o.clock.now() >= deadline) {
      this.stats.resetOnHold++;
      this.#o.logger.debug({ event: 'client_reset_on_hold', service: this.#o.name, peer: rt.peerId });
      client.resetAndDestroy();
      return;
    }
    // Hold: nothing read, nothing sent, until an epoch is installed or the hold ends.
    this.stats.held++;
    this.#held.add(client);
    let cancelWait: () => void = () => undefined;
    const timer = this.#o.clock.setTimer(deadline - this.#o.clock.now(), () => {
      cancelWait();
      this.#held.delete(client);
      this.stats.resetOnHold++;
      this.#o.logger.warn({ event: 'client_reset_on_hold', service: this.#o.name, peer: rt.peerId }, 'no epoch within the hold time');
      client.resetAndDestroy();
    });
    const check = (): void => {
      if (client.destroyed) {
        timer();
        this.#held.delete(client);
        return;
      }
      if (rt.sendEpoch() && rt.session.peerReceiverIndex !== null) {
        timer();
        this.#held.delete(client);
        this.#open(client, rt);
      } else cancelWait = rt.onEpochsChanged(check);
    };
    cancelWait = rt.onEpochsChanged(check);
  }

  #open(client: Socket, rt: PeerRuntime): void {
    const dst = this.#o.peerData();
    if (!dst) {
      client.resetAndDestroy();
      return;
    }
    const carrier = connect({ host: dst.host, port: dst.port, allowHalfOpen: true });
    carrier.on('error', () => undefined);
    let connected = false;
    // A silent path (BC-31) would otherwise hold the client for the OS's SYN retries (~2 min).
    const cancelConnectTimer = this.#o.clock.setTimer(this.#o.timers.deadAfterMs, () => {
      if (!connected) carrier.destroy(new Error('carrier connect timed out'));
    });
    carrier.once('connect', () => {
      connected = true;
      cancelConnectTimer();
      const link = new CarrierLink({ side: 'entry', runtime: rt, carrier, flowId: newFlowId(), clock: this.#o.clock, logger: this.#o.logger, timers: this.#o.timers });
      this.#links.add(link);
      carrier.once('close', () => this.#links.delete(link));
      link.startEntry(client, this.#o.name, rt.session.peerReceiverIndex!);
    });
    carrier.once('close', () => {
      cancelConnectTimer();
      if (!connected) {
        this.stats.connectFailures++;
        this.#o.logger.warn({ event: 'carrier_connect_failed', service: this.#o.name, peer: rt.peerId, to: `${dst.host}:${dst.port}` });
        client.resetAndDestroy();
      }
    });
  }

  /** Open carriers of this listener. */
  get openCarriers(): number {
    return this.#links.size;
  }

  /**
   * Stops accepting and resets held clients. Open carriers are left to their runtime
   * (shutdown, drain), or reset with RST `reason` when `resetFlows` is given (a reload
   * that removed this service: its flows must not outlive it).
   */
  async close(o: { resetFlows?: string } = {}): Promise<void> {
    for (const c of this.#held) c.resetAndDestroy();
    this.#held.clear();
    if (o.resetFlows !== undefined) for (const l of [...this.#links]) l.abort(o.resetFlows);
    await closeServer(this.#server);
  }
}
