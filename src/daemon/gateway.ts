/**
 * The composition root of one gateway (architecture.md L5): config -> KME client and key
 * source, crypto self-test, one PeerRuntime per peer, the control listener and dialers,
 * the data port (exit side) and the service listeners (entry side).
 */
import { readFileSync } from 'node:fs';
import type { GatewayConfig, Policy } from '../config/gateway.js';
import { assertSelfTest } from '../crypto/selftest.js';
import type { BackendChoice } from '../crypto/backend.js';
import { carrierCryptoFor, defaultCarrierCrypto, type CarrierCrypto } from '../tunnel/core/carrier.js';
import { chooseCryptoBackend } from './crypto-backend.js';
import { Etsi014Client } from '../kms/etsi014/client.js';
import { Etsi014KeySource } from '../kms/key-source.js';
import { KeyPool, type KeyPoolSource } from '../kms/key-pool.js';
import { AuditTrail } from './audit.js';
import { auditingLogger } from './audit-logger.js';
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
import { ErrorCodes, QkdgwError } from '../errors.js';
import type { ControlTlsMaterial } from '../tunnel/io/control-tls.js';
import type { KmeCallObservation } from '../kms/etsi014/client.js';
import { KmeCallTally, notReadyPeers, peerSnapshot, type GatewaySnapshot } from './snapshot.js';

/** Carrier liveness from a policy: KEEPALIVE after `keepalive`, dead after `dead_after` (protocol.md s5.1). */
function timersOf(p: Policy): CarrierTimers {
  return { keepaliveMs: p.keepaliveMs, deadAfterMs: p.deadAfterMs };
}

export interface GatewayDeps {
  logger: Logger;
  clock?: Clock;
  /** Read for QKDGW_NATIVE / QKDGW_NATIVE_ADDON (default process.env). */
  env?: NodeJS.ProcessEnv;
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
    backoffMinMs: p.retryBackoffMinMs,
    backoffMaxMs: p.retryBackoffMaxMs,
    degradedLifetimeMs: p.degradedLifetimeMs,
    recoveryChecks: p.recoveryChecks,
    graceMs: p.graceMs,
    carrierHoldMs: p.carrierHoldMs,
    maxFlowsPerEpoch: p.maxFlowsPerEpoch,
  };
}

/** Sections a reload can apply in place; any other change needs a restart (for now). */
const RELOADABLE = new Set(['kme', 'control.tls', 'log']);

/** The sections of a config, for comparing an old one and a new one. */
function sections(c: GatewayConfig): Record<string, unknown> {
  return {
    identity: c.identity,
    kme: c.kme,
    'control.tls': { ca: c.control.ca, cert: c.control.cert, key: c.control.key },
    'control.listen': c.control.listen,
    data: c.data,
    peers: c.peers,
    services: c.services,
    exports: c.exports,
    policies: c.policies,
    crypto: c.crypto,
    log: c.log,
    metrics: c.metrics,
    admin: c.admin,
    audit: c.audit,
  };
}

/** Names of the sections whose value differs (file contents are compared by the reload itself). */
export function changedSections(a: GatewayConfig, b: GatewayConfig): string[] {
  const sa = sections(a);
  const sb = sections(b);
  return Object.keys(sa).filter((k) => JSON.stringify(sa[k]) !== JSON.stringify(sb[k]));
}

export class Gateway {
  #cfg: GatewayConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly peers = new Map<string, PeerRuntime>();
  readonly addresses: GatewayAddresses = { services: {} };
  #keySource: Etsi014KeySource | null = null;
  /** Initiator side: one QKD key pool per peer (keys fetched ahead, status polling, forecast). */
  readonly pools = new Map<string, KeyPool>();
  /** The hash-chained key audit trail (audit.file), or null when not configured. */
  #audit: AuditTrail | null = null;
  /** Key sources replaced by a reload, closed once their calls in flight had time to end. */
  #retiredSources = new Set<Etsi014KeySource>();
  #controlServer: ControlServer | null = null;
  #dialers: ControlDialer[] = [];
  #dataServer: DataServer | null = null;
  #services: ServiceListener[] = [];
  #byIndex = new Map<number, DataPeer>();
  readonly #env: NodeJS.ProcessEnv;
  #carrierCrypto: CarrierCrypto = defaultCarrierCrypto;
  /** The AES-256-GCM backend in use and why (set by start). */
  crypto: BackendChoice | null = null;
  readonly #kmeCalls = new KmeCallTally();
  readonly #kmeCallListeners = new Set<(c: KmeCallObservation) => void>();
  readonly #startedAt: number;
  readonly #reloads: GatewaySnapshot['reloads'] = { ok: 0, failed: 0, last: null };

  private constructor(cfg: GatewayConfig, deps: GatewayDeps) {
    this.#cfg = cfg;
    this.log = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.#env = deps.env ?? process.env;
    this.#startedAt = this.clock.now();
  }

  /** Calls `fn` after every finished KME call (metrics); returns a function that removes it. */
  onKmeCall(fn: (c: KmeCallObservation) => void): () => void {
    this.#kmeCallListeners.add(fn);
    return () => this.#kmeCallListeners.delete(fn);
  }

  #observeKmeCall(c: KmeCallObservation): void {
    this.#kmeCalls.add(c);
    for (const fn of this.#kmeCallListeners) fn(c);
  }

  /** Records the outcome of a reload attempt (SIGHUP), for status and metrics. */
  noteReload(ok: boolean, detail: string): void {
    if (ok) this.#reloads.ok++;
    else this.#reloads.failed++;
    this.#reloads.last = { at: new Date().toISOString(), ok, detail };
  }

  /** A plain-data picture of the gateway now (src/daemon/snapshot.ts): no key bytes. */
  snapshot(): GatewaySnapshot {
    const cfg = this.#cfg;
    const now = this.clock.now();
    const peers = cfg.peers
      .filter((p) => this.peers.has(p.identity))
      .map((p) => peerSnapshot(p.identity, p.policy, cfg.policies[p.policy].qkd, this.peers.get(p.identity)!, now));
    return {
      identity: cfg.identity,
      configFile: cfg.file,
      pid: process.pid,
      uptimeSec: Math.max(0, (now - this.#startedAt) / 1000),
      backend: this.crypto?.backend.name ?? null,
      kme: { url: cfg.kme.url, calls: structuredClone(this.#kmeCalls.counts), pools: [...this.pools.values()].map((p) => p.stats()) },
      peers,
      notReady: notReadyPeers(peers),
      reloads: structuredClone(this.#reloads),
    };
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

  /** The configuration in force (replaced by a successful reload). */
  get cfg(): GatewayConfig {
    return this.#cfg;
  }

  #makeKeySource(cfg: GatewayConfig): Etsi014KeySource {
    const client = new Etsi014Client({
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
      onCall: (c) => this.#observeKmeCall(c),
    });
    return new Etsi014KeySource(client, { clock: this.clock, logger: this.log });
  }

  /**
   * The initiator's key pool for `peer` (issue 4): keys fetched ahead on the current key
   * source, status polled every kme.status_interval; each status result feeds the
   * session's recovery checks (protocol.md s6 `preferred`).
   */
  #makePool(cfg: GatewayConfig, peer: string, rt: PeerRuntime): KeyPool {
    const pol = cfg.policies[cfg.peers.find((p) => p.identity === peer)!.policy];
    const source: KeyPoolSource = {
      getKeys: (id, n, o) => this.#keySource!.getKeys(id, n, o),
      status: (id, o) => this.#keySource!.status(id, o),
    };
    const pool = new KeyPool({
      source,
      peerSaeId: peer,
      clock: this.clock,
      logger: rt.log, // the pool binds its own component and peerSaeId
      target: cfg.kme.pool,
      prefetchAfterFirstTake: true,
      statusIntervalMs: cfg.kme.statusIntervalMs,
      // A status read gets at least 1 s even when polled faster (a 100 ms deadline would fail on any real KME).
      statusDeadlineMs: Math.min(5_000, Math.max(cfg.kme.statusIntervalMs, 1_000)),
      rekeyIntervalMs: pol.rekeyAfterTimeMs,
      forecastLowSec: pol.forecastAlarmMs / 1000,
      onEvent: (e) => {
        if (e.event === 'kme_status_checked') rt.kmeStatus(e.kmeStoredKeyCount);
      },
    });
    pool.start();
    return pool;
  }

  #readControlTls(cfg: GatewayConfig): ControlTlsMaterial {
    return { cert: read(cfg.control.cert), key: read(cfg.control.key), ca: cfg.control.ca ? read(cfg.control.ca) : undefined };
  }

  async #start(): Promise<void> {
    const cfg = this.#cfg;
    const choice = chooseCryptoBackend(cfg.crypto.backend, this.#env);
    for (const r of choice.reports) {
      // A native addon that auto could not use costs ~10x in throughput: the operator must see it.
      const level = r.name === 'native' && choice.requested === 'auto' ? 'warn' : 'info';
      if (!r.available) this.log[level]({ event: 'crypto_backend_unavailable', backend: r.name, reason: r.detail }, `AES-256-GCM backend ${r.name} unavailable: ${r.detail}`);
      else if (r.selftestFailures?.length) this.log.error({ event: 'crypto_backend_selftest_failed', backend: r.name, failed: r.selftestFailures }, `AES-256-GCM backend ${r.name} failed its self-test`);
    }
    assertSelfTest(choice.backend);
    this.crypto = choice;
    this.#carrierCrypto = carrierCryptoFor(choice.backend);
    this.log.info({ event: 'selftest_passed', backend: choice.backend.name }, `crypto self-test passed (AEAD backend: ${choice.backend.name})`);
    this.log.info({ event: 'crypto_backend', backend: choice.backend.name, requested: choice.requested, why: choice.why }, choice.why);

    if (cfg.audit?.file) {
      this.#audit = AuditTrail.open(cfg.audit.file, { clock: this.clock, logger: this.log });
      this.log.info({ event: 'audit_opened', file: cfg.audit.file, seq: this.#audit.head.seq, hash: this.#audit.head.hash }, `key audit trail ${cfg.audit.file} at record ${this.#audit.head.seq}`);
    }
    this.#keySource = this.#makeKeySource(cfg);
    // Indirect, so a reload can swap the key source under running peers (BC-07).
    const keys: QkdKeyProvider = {
      getKey: (peer) => this.pools.get(peer)?.take() ?? this.#keySource!.getKey(peer),
      getKeyById: (peer, keyId, o) => this.#keySource!.getKeyById(peer, keyId, { deadlineMs: o.deadlineMs }),
    };

    const tls = this.#readControlTls(cfg);
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
        logger: this.#audit ? auditingLogger(this.log, this.#audit) : this.log,
        holdMs: pol.holdMs,
        carrierCrypto: this.#carrierCrypto,
      });
      this.peers.set(p.identity, rt);
      const exports = new Map(cfg.exports.filter((x) => x.peers.includes(p.identity)).map((x) => [x.name, x.target] as const));
      const timers = timersOf(pol);
      this.#byIndex.set(receiverIndex, { runtime: rt, exports, timers });
      if (roleOf(cfg.identity, p.identity) === 'responder') responderPeers.set(p.identity, { runtime: rt, pin: p.pin, liveness: { pingAfterMs: pol.keepaliveMs, deadAfterMs: pol.deadAfterMs } });
      rt.log.info({ event: 'peer_configured', role: rt.role, policy: p.policy, qkd: pol.qkd, suites: pol.suites, rekey_after_ms: pol.rekeyAfterTimeMs, hard_limit_ms: pol.hardLimitTimeMs });
      if (pol.qkd === 'off') rt.log.warn({ event: 'qkd_off' }, 'QKD policy is off for this peer: epochs carry no QKD key (lab use only)');
      else if (rt.role === 'initiator') this.pools.set(p.identity, this.#makePool(cfg, p.identity, rt));
    }

    const timers: CarrierTimers = timersOf(cfg.policies.default);
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
        timers: timersOf(cfg.policies[peer.policy]),
      });
      this.#services.push(sl);
      this.addresses.services[s.name] = await sl.listen();
    }
    for (const p of cfg.peers) {
      if (roleOf(cfg.identity, p.identity) !== 'initiator') continue;
      const pol = cfg.policies[p.policy];
      const d = new ControlDialer({ runtime: this.peers.get(p.identity)!, host: p.control!.host, port: p.control!.port, tls, pin: p.pin, liveness: { pingAfterMs: pol.keepaliveMs, deadAfterMs: pol.deadAfterMs }, clock: this.clock, logger: this.log.child({ component: 'control', peer: p.identity }) });
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
    for (const pool of this.pools.values()) pool.close(); // zeroizes the keys held ahead
    this.pools.clear();
    this.#audit?.close();
    this.#audit = null;
    await this.#controlServer?.close();
    this.#controlServer = null;
    await this.#dataServer?.close();
    this.#dataServer = null;
    await this.#keySource?.close();
    this.#keySource = null;
    await Promise.all([...this.#retiredSources].map((k) => k.close()));
    this.#retiredSources.clear();
  }

  /**
   * Applies a new configuration in place (SIGHUP): a new KME client (certificate, key, CA,
   * URL, timeout: its old pooled connections are closed), new control TLS material for the
   * next connections, a new log level. Running tunnels and epochs are untouched. Everything
   * new is built before anything is swapped: on any error nothing changes and the error is
   * thrown (QKDGW_E_CONFIG_RELOAD naming sections that need a restart, QKDGW_E_KMS_CONFIG
   * for a certificate/key that do not match, QKDGW_E_CONFIG_READ for unreadable files).
   * Returns the sections applied.
   */
  async reload(next: GatewayConfig): Promise<string[]> {
    const changed = changedSections(this.#cfg, next);
    const blocked = changed.filter((s) => !RELOADABLE.has(s));
    if (blocked.length) {
      throw new QkdgwError(ErrorCodes.CONFIG_RELOAD, `reload cannot apply changes to ${blocked.join(', ')} yet: restart the gateway to apply them (nothing was changed)`, { sections: blocked });
    }
    // Files may have changed under the same paths (certificate rotation): always rebuild both.
    let ks: Etsi014KeySource;
    let tls: ControlTlsMaterial;
    try {
      ks = this.#makeKeySource(next);
      tls = this.#readControlTls(next);
    } catch (e) {
      if (e instanceof QkdgwError) throw e;
      throw new QkdgwError(ErrorCodes.CONFIG_READ, `reload: ${(e as Error).message}`, undefined, { cause: e });
    }
    const old = this.#keySource;
    this.#keySource = ks;
    // Keys held ahead came from the old KME client (maybe another KME): zeroize them and
    // start fresh pools on the new one.
    for (const [peer, pool] of this.pools) {
      pool.close();
      this.pools.set(peer, this.#makePool(next, peer, this.peers.get(peer)!));
    }
    this.#controlServer?.setTls(tls);
    for (const d of this.#dialers) d.setTls(tls);
    const level = (this.log as { level?: string }).level;
    if (level !== undefined && level !== next.log.level) (this.log as { level?: string }).level = next.log.level;
    this.#cfg = next;
    // Calls in flight on the old client finish under their own deadline; then it closes.
    if (old) {
      this.#retiredSources.add(old);
      const grace = setTimeout(() => {
        this.#retiredSources.delete(old);
        void old.close();
      }, next.kme.timeoutMs + 1_000);
      grace.unref();
    }
    this.log.info({ event: 'reload_applied', sections: changed.length ? changed : ['(files only)'] }, 'configuration reloaded');
    return changed;
  }
}
