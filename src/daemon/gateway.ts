/**
 * The composition root of one gateway (architecture.md L5): config -> KME client and key
 * source, crypto self-test, one PeerRuntime per peer, the control listener and dialers,
 * the data port (exit side) and the service listeners (entry side).
 */
import { readFileSync } from 'node:fs';
import type { GatewayConfig, Policy } from '../config/gateway.js';
import { assertSelfTest } from '../crypto/selftest.js';
import { Etsi014Client } from '../kms/etsi014/client.js';
import { Etsi014KeySource } from '../kms/key-source.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { drawReceiverIndex, roleOf } from '../tunnel/core/session.js';
import { ControlDialer } from '../tunnel/io/control-dialer.js';
import { ControlServer, type ControlServerPeer } from '../tunnel/io/control-server.js';
import { DataServer, type DataPeer } from '../tunnel/io/exit.js';
import { ServiceListener } from '../tunnel/io/entry.js';
import { PeerRuntime, type QkdKeyProvider } from '../tunnel/io/peer.js';
import type { CarrierTimers } from '../tunnel/io/carrier-link.js';
import { isSuiteId } from '../crypto/suites.js';

export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
}

/** Where the gateway listens once started (ports resolved when 0 was configured). */
export interface GatewayAddresses {
  control?: number;
  data?: number;
  services: Record<string, number>;
}

const read = (p: string): string => readFileSync(p, 'utf8');

function sessionPolicy(p: Policy) {
  return {
    suites: p.suites.filter(isSuiteId),
    qkd: p.qkd,
    rekeyAfterTimeMs: p.rekeyAfterTimeMs,
    rekeyJitterMs: p.rekeyJitterMs,
    rekeyAfterRecords: p.rekeyAfterRecords,
    rekeyAfterBytes: p.rekeyAfterBytes,
    hardLimitTimeMs: p.hardLimitTimeMs,
    hardLimitRecords: p.hardLimitRecords,
    handshakeTimeoutMs: p.handshakeTimeoutMs,
    graceMs: p.graceMs,
    carrierHoldMs: p.carrierHoldMs,
    maxFlowsPerEpoch: p.maxFlowsPerEpoch,
  };
}

export class Gateway {
  readonly cfg: GatewayConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly peers = new Map<string, PeerRuntime>();
  readonly addresses: GatewayAddresses = { services: {} };
  #client: Etsi014Client | null = null;
  #keySource: Etsi014KeySource | null = null;
  #controlServer: ControlServer | null = null;
  #dialers: ControlDialer[] = [];
  #dataServer: DataServer | null = null;
  #services: ServiceListener[] = [];
  #byIndex = new Map<number, DataPeer>();

  private constructor(cfg: GatewayConfig, deps: GatewayDeps) {
    this.cfg = cfg;
    this.log = deps.logger;
    this.clock = deps.clock ?? systemClock;
  }

  /**
   * Builds and starts everything; on any failure stops what was started and throws
   * (QKDGW_E_SELFTEST_FAILED, QKDGW_E_LISTEN, QKDGW_E_KMS_*, QKDGW_E_CERT ...).
   */
  static async start(cfg: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
    const gw = new Gateway(cfg, deps);
    try {
      await gw.#start();
    } catch (e) {
      await gw.stop();
      throw e;
    }
    return gw;
  }

  async #start(): Promise<void> {
    const cfg = this.cfg;
    assertSelfTest();
    this.log.info({ event: 'selftest_passed', backend: 'node' }, 'crypto self-test passed (AEAD backend: node:crypto)');

    this.#client = new Etsi014Client({
      baseUrl: cfg.kme.url,
      ca: read(cfg.kme.ca),
      cert: read(cfg.kme.cert),
      key: read(cfg.kme.key),
      serverName: cfg.kme.serverName,
      spkiSha256: cfg.kme.spkiSha256,
      selfSaeId: cfg.identity,
      timeoutMs: cfg.kme.timeoutMs,
      decKeysPathSae: cfg.kme.compat.decKeysPathSae,
      clock: this.clock,
      logger: this.log.child({ component: 'kme' }),
    });
    this.#keySource = new Etsi014KeySource(this.#client, { clock: this.clock, logger: this.log.child({ component: 'kme' }) });
    const ks = this.#keySource;
    const keys: QkdKeyProvider = {
      getKey: (peer) => ks.getKey(peer),
      getKeyById: (peer, keyId, o) => ks.getKeyById(peer, keyId, { deadlineMs: o.deadlineMs }),
    };

    const tls = { cert: read(cfg.control.cert), key: read(cfg.control.key), ca: cfg.control.ca ? read(cfg.control.ca) : undefined };
    const taken = new Set<number>();
    const responderPeers = new Map<string, ControlServerPeer>();
    for (const p of cfg.peers) {
      const pol = cfg.policies[p.policy];
      const receiverIndex = drawReceiverIndex(taken);
      taken.add(receiverIndex);
      const rt = new PeerRuntime({
        session: { selfId: cfg.identity, peerId: p.identity, receiverIndex, ...sessionPolicy(pol) },
        keys,
        clock: this.clock,
        logger: this.log,
        holdMs: pol.holdMs,
      });
      this.peers.set(p.identity, rt);
      const exports = new Map(cfg.exports.filter((x) => x.peers.includes(p.identity)).map((x) => [x.name, x.target] as const));
      this.#byIndex.set(receiverIndex, { runtime: rt, exports });
      if (roleOf(cfg.identity, p.identity) === 'responder') responderPeers.set(p.identity, { runtime: rt, pin: p.pin });
      rt.log.info({ event: 'peer_configured', role: rt.role, policy: p.policy, qkd: pol.qkd, suites: pol.suites, rekey_after_ms: pol.rekeyAfterTimeMs, hard_limit_ms: pol.hardLimitTimeMs });
      if (pol.qkd === 'off') rt.log.warn({ event: 'qkd_off' }, 'QKD policy is off for this peer: epochs carry no QKD key (lab use only)');
    }

    const timers: CarrierTimers = { keepaliveMs: 10_000, deadAfterMs: 30_000 };
    if (responderPeers.size) {
      const l = cfg.control.listen!;
      this.#controlServer = new ControlServer({ host: l.host, port: l.port, tls, peers: responderPeers, clock: this.clock, logger: this.log.child({ component: 'control' }) });
      this.addresses.control = await this.#controlServer.listen();
    }
    if (cfg.data.listen) {
      const l = cfg.data.listen;
      this.#dataServer = new DataServer({
        host: l.host,
        port: l.port,
        peerByIndex: (i) => this.#byIndex.get(i) ?? null,
        maxNewConnectionsPerSource: cfg.data.maxNewConnectionsPerSource,
        clock: this.clock,
        logger: this.log.child({ component: 'data' }),
        timers,
      });
      this.addresses.data = await this.#dataServer.listen();
    }
    for (const s of cfg.services) {
      const peer = cfg.peers.find((p) => p.identity === s.peer)!;
      const sl = new ServiceListener({
        name: s.name,
        host: s.listen.host,
        port: s.listen.port,
        runtime: () => this.peers.get(s.peer) ?? null,
        peerData: () => peer.data ?? null,
        clock: this.clock,
        logger: this.log.child({ component: 'service', service: s.name, peer: s.peer }),
        timers,
      });
      this.#services.push(sl);
      this.addresses.services[s.name] = await sl.listen();
    }
    for (const p of cfg.peers) {
      if (roleOf(cfg.identity, p.identity) !== 'initiator') continue;
      const d = new ControlDialer({ runtime: this.peers.get(p.identity)!, host: p.control!.host, port: p.control!.port, tls, pin: p.pin, clock: this.clock, logger: this.log.child({ component: 'control', peer: p.identity }) });
      this.#dialers.push(d);
      d.start();
    }
    this.log.info({ event: 'gateway_started', identity: cfg.identity, control: this.addresses.control, data: this.addresses.data, services: this.addresses.services }, 'gateway started');
  }

  /** Stops listeners and dialers, resets carriers, zeroizes every key. Idempotent. */
  async stop(): Promise<void> {
    for (const d of this.#dialers) d.stop();
    this.#dialers = [];
    await Promise.all(this.#services.map((s) => s.close()));
    this.#services = [];
    for (const rt of this.peers.values()) rt.close();
    await this.#controlServer?.close();
    this.#controlServer = null;
    await this.#dataServer?.close();
    this.#dataServer = null;
    await this.#keySource?.close();
    this.#keySource = null;
    this.#client = null;
  }
}
