/**
 * The composition root of one gateway (architecture.md L5): config -> KME client and key
 * source, crypto self-test, one PeerRuntime per peer, the control listener and dialers,
 * the data port (exit side) and the service listeners (entry side).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { GatewayConfig, PeerConfig, Policy } from '../config/gateway.js';
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

/** A status read gets at least 1 s even when polled faster (a 100 ms deadline would fail on any real KME), at most 5 s. */
function statusDeadline(cfg: GatewayConfig): number {
  return Math.min(5_000, Math.max(cfg.kme.statusIntervalMs, 1_000));
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
  /** Prometheus /metrics, /healthz, /readyz (metrics.listen). */
  metrics?: number;
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

import { planReload, type ReloadPlan } from './reload-plan.js';
import { startAdminSocket, type AdminSocket } from './admin-socket.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { join } from 'node:path';

export { changedSections, type ReloadPlan } from './reload-plan.js';

/** A file's content, or '' when unreadable (the reload's own read then reports why). */
function fileDigest(path: string | undefined): string {
  if (path === undefined) return '';
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return '';
  }
}

/** SHA-256 of the KME CA, certificate and key files: a rotation under the same paths must rebuild the client (BC-07). */
function kmeFilesDigest(cfg: GatewayConfig): string {
  return [cfg.kme.ca, cfg.kme.cert, cfg.kme.key].map(fileDigest).join(':');
}

export class Gateway {
  #cfg: GatewayConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly peers = new Map<string, PeerRuntime>();
  readonly addresses: GatewayAddresses = { services: {} };
  #keySource: Etsi014KeySource | null = null;
  #kmeDigest = '';
  /** Initiator side: one QKD key pool per peer (keys fetched ahead, status polling, forecast). */
  readonly pools = new Map<string, KeyPool>();
  /** The hash-chained key audit trail (audit.file), or null when not configured. */
  #audit: AuditTrail | null = null;
  /** Key sources replaced by a reload, closed once their calls in flight had time to end. */
  #retiredSources = new Set<Etsi014KeySource>();
  #controlServer: ControlServer | null = null;
  /** Responder peers by SAE ID; the control server reads this map at each accept (a reload edits it in place). */
  readonly #responderPeers = new Map<string, ControlServerPeer>();
  #dialers = new Map<string, ControlDialer>();
  #dataServer: DataServer | null = null;
  #services = new Map<string, ServiceListener>();
  /** Peers by the receiver_index we gave them (carriers name it in their preamble). */
  readonly #byIndex = new Map<number, DataPeer>();
  readonly #indexOf = new Map<string, number>();
  readonly #env: NodeJS.ProcessEnv;
  #carrierCrypto: CarrierCrypto = defaultCarrierCrypto;
  #admin: AdminSocket | null = null;
  #metrics: MetricsServer | null = null;
  #stopped = false;
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
      stopping: this.#stopped,
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
      logger: this.log, // the client binds component etsi014 itself
      onCall: (c) => this.#observeKmeCall(c),
    });
    return new Etsi014KeySource(client, { clock: this.clock, logger: this.log });
  }

  /**
   * The initiator's key pool for `peer` (issue 4): keys fetched ahead on the current key
   * source, status polled every kme.status_interval; each status result feeds the
   * session's recovery checks (protocol.md s6 `preferred`). Started by the caller.
   */
  #makePool(cfg: GatewayConfig, peer: string, rt: PeerRuntime): KeyPool {
    const pol = cfg.policies[cfg.peers.find((p) => p.identity === peer)!.policy];
    const source: KeyPoolSource = {
      getKeys: (id, n, o) => this.#keySource!.getKeys(id, n, o),
      status: (id, o) => this.#keySource!.status(id, o),
    };
    return new KeyPool({
      source,
      peerSaeId: peer,
      clock: this.clock,
      logger: rt.log, // the pool binds its own component and peerSaeId
      target: cfg.kme.pool,
      prefetchAfterFirstTake: true,
      statusIntervalMs: cfg.kme.statusIntervalMs,
      statusDeadlineMs: statusDeadline(cfg),
      rekeyIntervalMs: pol.rekeyAfterTimeMs,
      forecastLowSec: pol.forecastAlarmMs / 1000,
      onEvent: (e) => {
        if (e.event === 'kme_status_checked') rt.kmeStatus(e.kmeStoredKeyCount);
      },
    });
  }

  #readControlTls(cfg: GatewayConfig): ControlTlsMaterial {
    return { cert: read(cfg.control.cert), key: read(cfg.control.key), ca: cfg.control.ca ? read(cfg.control.ca) : undefined };
  }

  /** Indirect, so a reload can swap the key source and pools under running peers (BC-07). */
  readonly #keys: QkdKeyProvider = {
    getKey: (peer) => this.pools.get(peer)?.take() ?? this.#keySource!.getKey(peer),
    getKeyById: (peer, keyId, o) => this.#keySource!.getKeyById(peer, keyId, { deadlineMs: o.deadlineMs }),
  };

  /** A peer's runtime with a fresh receiver_index (no I/O: nothing runs until attached or dialed). */
  #buildPeer(cfg: GatewayConfig, p: PeerConfig, taken: Set<number>): { rt: PeerRuntime; receiverIndex: number } {
    const pol = cfg.policies[p.policy];
    const receiverIndex = drawReceiverIndex(taken);
    taken.add(receiverIndex);
    const rt = new PeerRuntime({
      session: { selfId: cfg.identity, peerId: p.identity, receiverIndex, ...sessionPolicy(pol) },
      keys: this.#keys,
      clock: this.clock,
      logger: auditingLogger(this.log, () => this.#audit),
      holdMs: pol.holdMs,
      carrierCrypto: this.#carrierCrypto,
    });
    return { rt, receiverIndex };
  }

  /** Registers a built peer everywhere it is looked up (data port, control server). */
  #installPeer(cfg: GatewayConfig, p: PeerConfig, rt: PeerRuntime, receiverIndex: number): void {
    const pol = cfg.policies[p.policy];
    this.peers.set(p.identity, rt);
    this.#indexOf.set(p.identity, receiverIndex);
    this.#byIndex.set(receiverIndex, { runtime: rt, exports: this.#exportsFor(cfg, p.identity), timers: timersOf(pol) });
    if (roleOf(cfg.identity, p.identity) === 'responder') {
      this.#responderPeers.set(p.identity, { runtime: rt, pin: p.pin, liveness: { pingAfterMs: pol.keepaliveMs, deadAfterMs: pol.deadAfterMs } });
    }
    rt.log.info({ event: 'peer_configured', role: rt.role, policy: p.policy, qkd: pol.qkd, suites: pol.suites, rekey_after_ms: pol.rekeyAfterTimeMs, hard_limit_ms: pol.hardLimitTimeMs });
    if (pol.qkd === 'off') rt.log.warn({ event: 'qkd_off' }, 'QKD policy is off for this peer: epochs carry no QKD key (lab use only)');
  }

  /** Starts what makes a peer active: its key pool (initiator, QKD on) and its control dialer (initiator). */
  #activatePeer(cfg: GatewayConfig, p: PeerConfig, rt: PeerRuntime, tls: ControlTlsMaterial): void {
    const pol = cfg.policies[p.policy];
    if (rt.role !== 'initiator') return;
    if (pol.qkd !== 'off') {
      const pool = this.#makePool(cfg, p.identity, rt);
      this.pools.set(p.identity, pool);
      pool.start();
    }
    const d = new ControlDialer({ runtime: rt, host: p.control!.host, port: p.control!.port, tls, pin: p.pin, liveness: { pingAfterMs: pol.keepaliveMs, deadAfterMs: pol.deadAfterMs }, clock: this.clock, logger: this.log.child({ component: 'control', peer: p.identity }) });
    this.#dialers.set(p.identity, d);
    d.start();
  }

  /** Tears a peer down: dialer stopped, carriers reset, control connection closed, pool and epochs zeroized. */
  #removePeer(peer: string, reason: string, event: 'peer_removed' | 'peer_rebuilt' = 'peer_removed'): void {
    this.#dialers.get(peer)?.stop();
    this.#dialers.delete(peer);
    this.pools.get(peer)?.close();
    this.pools.delete(peer);
    const rt = this.peers.get(peer);
    if (rt) {
      rt.log.info({ event, reason, flows_reset: rt.carrierCount });
      rt.close(reason);
    }
    this.peers.delete(peer);
    this.#responderPeers.delete(peer);
    const idx = this.#indexOf.get(peer);
    if (idx !== undefined) this.#byIndex.delete(idx);
    this.#indexOf.delete(peer);
  }

  #exportsFor(cfg: GatewayConfig, peer: string): DataPeer['exports'] {
    return new Map(cfg.exports.filter((x) => x.peers.includes(peer)).map((x) => [x.name, x.target] as const));
  }

  #serviceOptions(cfg: GatewayConfig, s: GatewayConfig['services'][number]) {
    const peer = cfg.peers.find((p) => p.identity === s.peer)!;
    return {
      runtime: () => this.peers.get(s.peer) ?? null,
      peerData: () => peer.data ?? null,
      timers: timersOf(cfg.policies[peer.policy]),
      logger: this.log.child({ component: 'service', service: s.name, peer: s.peer }),
    };
  }

  /** Binds a service listener (not yet registered). Throws QKDGW_E_LISTEN. */
  async #bindService(cfg: GatewayConfig, s: GatewayConfig['services'][number]): Promise<ServiceListener> {
    const sl = new ServiceListener({ name: s.name, host: s.listen.host, port: s.listen.port, clock: this.clock, ...this.#serviceOptions(cfg, s) });
    await sl.listen();
    return sl;
  }

  async #bindControl(cfg: GatewayConfig, tls: ControlTlsMaterial): Promise<ControlServer> {
    const l = cfg.control.listen!;
    const cs = new ControlServer({ host: l.host, port: l.port, tls, peers: this.#responderPeers, clock: this.clock, logger: this.log.child({ component: 'control' }) });
    await cs.listen();
    return cs;
  }

  async #bindData(cfg: GatewayConfig): Promise<DataServer> {
    const l = cfg.data.listen!;
    const ds = new DataServer({
      host: l.host,
      port: l.port,
      peerByIndex: (i) => this.#byIndex.get(i) ?? null,
      maxNewConnectionsPerSource: cfg.data.maxNewConnectionsPerSource,
      clock: this.clock,
      logger: this.log.child({ component: 'data' }),
      timers: timersOf(cfg.policies.default),
    });
    await ds.listen();
    return ds;
  }

  #wantsControlServer(cfg: GatewayConfig): boolean {
    return cfg.control.listen !== undefined && cfg.peers.some((p) => roleOf(cfg.identity, p.identity) === 'responder');
  }

  /** Binds metrics.listen (not yet registered). Throws QKDGW_E_LISTEN. */
  #startMetrics(cfg: GatewayConfig): Promise<MetricsServer> {
    const l = cfg.metrics!.listen;
    return startMetricsServer({ source: this, host: l.host, port: l.port, logger: this.log }); // binds component metrics itself
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

    if (cfg.audit?.file) this.#audit = this.#openAudit(cfg.audit.file);
    // Before the KME client: the latency histogram must see the first enc_keys calls too.
    if (cfg.metrics) {
      this.#metrics = await this.#startMetrics(cfg);
      this.addresses.metrics = this.#metrics.port;
    }
    this.#kmeDigest = kmeFilesDigest(cfg);
    this.#keySource = this.#makeKeySource(cfg);
    const tls = this.#readControlTls(cfg);

    const taken = new Set<number>();
    const built = cfg.peers.map((p) => ({ p, ...this.#buildPeer(cfg, p, taken) }));
    for (const b of built) this.#installPeer(cfg, b.p, b.rt, b.receiverIndex);

    if (this.#wantsControlServer(cfg)) {
      this.#controlServer = await this.#bindControl(cfg, tls);
      this.addresses.control = this.#controlServer.port;
    }
    if (cfg.data.listen) {
      this.#dataServer = await this.#bindData(cfg);
      this.addresses.data = this.#dataServer.port;
    }
    for (const s of cfg.services) {
      const sl = await this.#bindService(cfg, s);
      this.#services.set(s.name, sl);
      this.addresses.services[s.name] = sl.port;
    }
    const adminPath = this.adminSocketPath(cfg);
    if (adminPath) this.#admin = await this.#startAdmin(adminPath);
    for (const b of built) this.#activatePeer(cfg, b.p, b.rt, tls);
    this.log.info({ event: 'gateway_started', identity: cfg.identity, control: this.addresses.control, data: this.addresses.data, services: this.addresses.services }, 'gateway started');
  }

  /**
   * Where the admin socket for `qkdgw status` goes: `admin.socket`, else
   * `$RUNTIME_DIRECTORY/admin.sock` under systemd (RuntimeDirectory=qkdgw -> /run/qkdgw),
   * else none.
   */
  adminSocketPath(cfg: GatewayConfig = this.#cfg): string | null {
    if (cfg.admin?.socket) return cfg.admin.socket;
    const rd = this.#env.RUNTIME_DIRECTORY?.split(':')[0];
    return rd ? join(rd, 'admin.sock') : null;
  }

  async #startAdmin(path: string): Promise<AdminSocket> {
    const a = await startAdminSocket({ path, source: this, logger: this.log }); // binds component admin itself
    this.log.info({ event: 'admin_listening', socket: path }, `admin socket ${path} (qkdgw status)`);
    return a;
  }

  #openAudit(file: string): AuditTrail {
    const t = AuditTrail.open(file, { clock: this.clock, logger: this.log });
    this.log.info({ event: 'audit_opened', file, seq: t.head.seq, hash: t.head.hash }, `key audit trail ${file} at record ${t.head.seq}`);
    return t;
  }

  /** Flows (carriers) open over all peers. */
  get openFlows(): number {
    let n = 0;
    for (const rt of this.peers.values()) n += rt.carrierCount;
    return n;
  }

  /**
   * Graceful stop (issue 5, systemd stop): stops accepting (service listeners, data port,
   * control port, dialers keep their connection so rekeys still happen), lets open flows
   * end on their own for up to `drainMs` (default 0: none; the daemon passes the
   * configured `shutdown.drain_timeout`),
   * then resets what is left, closes the control channels and zeroizes every key (epochs,
   * pools, KME client buffers). Logs `drain_started` / `drain_done` with the flows left.
   * Idempotent; never throws for a listener that fails to close.
   */
  async stop(o: { drainMs?: number } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const drainMs = o.drainMs ?? 0;
    await Promise.all([...this.#services.values()].map((s) => s.close()));
    this.#services.clear();
    // Stop accepting now; the close resolves once the open control connections end, which
    // rt.close() below does (awaiting it here would wait forever on a connected peer).
    const listeners = [this.#controlServer?.close(), this.#dataServer?.close()];
    this.#controlServer = null;
    this.#dataServer = null;
    const open = this.openFlows;
    if (open > 0 && drainMs > 0) {
      this.log.info({ event: 'drain_started', flows: open, drain_ms: drainMs }, `stopping: waiting up to ${drainMs} ms for ${open} open flows to end`);
      const left = await this.#drain(drainMs);
      this.log[left ? 'warn' : 'info']({ event: 'drain_done', flows_left: left }, left ? `drain time over: resetting ${left} flows` : 'every flow ended');
    }
    for (const d of this.#dialers.values()) d.stop();
    this.#dialers.clear();
    // Metrics and `qkdgw status` stay up through the drain: that is when an operator watches.
    await this.#admin?.close();
    this.#admin = null;
    await this.#metrics?.close();
    this.#metrics = null;
    for (const rt of this.peers.values()) rt.close(); // resets carriers left, zeroizes epochs
    await Promise.all(listeners);
    for (const pool of this.pools.values()) pool.close(); // zeroizes the keys held ahead
    this.pools.clear();
    this.#audit?.close();
    this.#audit = null;
    await this.#keySource?.close();
    this.#keySource = null;
    await Promise.all([...this.#retiredSources].map((k) => k.close()));
    this.#retiredSources.clear();
  }

  /** Ends a drain in progress at once (a second SIGTERM): the flows left are reset. No-op otherwise. */
  endDrain(): void {
    this.#endDrain?.();
  }

  #endDrain: (() => void) | null = null;

  /** Resolves with the flows still open once none are, or after `ms` (wall time: real sockets drain in real time). */
  #drain(ms: number): Promise<number> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        this.#endDrain = null;
        clearInterval(poll);
        clearTimeout(deadline);
        resolve(this.openFlows);
      };
      this.#endDrain = finish;
      // Carriers unregister as they end; there is no event per carrier, so poll cheaply.
      const poll = setInterval(() => {
        if (this.openFlows === 0) finish();
      }, 50);
      const deadline = setTimeout(finish, ms);
    });
  }

  /**
   * Applies a new configuration (SIGHUP, issue 5 point 2, BC-07). Everything new is built
   * and checked first: KME client (when its section or its CA/certificate/key files
   * changed), control TLS material (always re-read), audit trail, new listeners bound,
   * new peers' runtimes. Only then is it swapped in, synchronously: peers whose entry and
   * policy did not change keep their control connection, epochs and flows (no reset, no
   * extra epoch); changed peers are rebuilt, removed peers torn down (flows reset, keys
   * zeroized), removed services closed (their flows reset), log level applied.
   *
   * On any error nothing changes: listeners bound for the new state are closed and the
   * error is thrown (QKDGW_E_CONFIG_RELOAD for identity/crypto changes, which need a
   * restart; QKDGW_E_LISTEN for an address that cannot be bound; QKDGW_E_KMS_CONFIG for a
   * certificate and key that do not match; QKDGW_E_CONFIG_READ for unreadable files).
   * Returns the plan applied.
   */
  async reload(next: GatewayConfig): Promise<ReloadPlan> {
    if (this.#stopped) throw new QkdgwError(ErrorCodes.CONFIG_RELOAD, 'the gateway is stopping');
    const old = this.#cfg;
    const digest = kmeFilesDigest(next);
    const plan = planReload(old, next, digest !== this.#kmeDigest);
    if (plan.blocked.length) {
      throw new QkdgwError(
        ErrorCodes.CONFIG_RELOAD,
        `reload cannot change ${plan.blocked.map((b) => `${b.section} (${b.why})`).join(', ')}: restart the gateway to apply it (nothing was changed)`,
        { sections: plan.blocked.map((b) => b.section) },
      );
    }

    // ---- build: nothing in force is touched until every step below succeeded.
    const undo: Array<() => unknown> = [];
    let ks: Etsi014KeySource | null = null;
    let tls: ControlTlsMaterial;
    let audit: AuditTrail | null = null;
    let control: ControlServer | null = null;
    let data: DataServer | null = null;
    let admin: AdminSocket | null = null;
    let metrics: MetricsServer | null = null;
    const nextAdmin = this.adminSocketPath(next);
    const adminMoved = nextAdmin !== this.adminSocketPath(old);
    const bound = new Map<string, ServiceListener>();
    const built = new Map<string, { rt: PeerRuntime; receiverIndex: number }>();
    try {
      try {
        if (plan.kme) {
          ks = this.#makeKeySource(next);
          const k = ks;
          undo.push(() => k.close());
        }
        tls = this.#readControlTls(next);
      } catch (e) {
        if (e instanceof QkdgwError) throw e;
        throw new QkdgwError(ErrorCodes.CONFIG_READ, `reload: ${(e as Error).message}`, undefined, { cause: e });
      }
      if (plan.audit && next.audit?.file) {
        audit = this.#openAudit(next.audit.file);
        const a = audit;
        undo.push(() => a.close());
      }
      const wantControl = this.#wantsControlServer(next);
      if (wantControl && (!this.#controlServer || plan.rebind.control)) {
        control = await this.#bindControl(next, tls);
        const c = control;
        undo.push(() => c.close());
      }
      if (next.data.listen && (!this.#dataServer || plan.rebind.data)) {
        data = await this.#bindData(next);
        const d = data;
        undo.push(() => d.close());
      }
      if (plan.rebind.metrics && next.metrics) {
        metrics = await this.#startMetrics(next);
        const m = metrics;
        undo.push(() => m.close());
      }
      if (adminMoved && nextAdmin) {
        admin = await this.#startAdmin(nextAdmin);
        const a = admin;
        undo.push(() => a.close());
      }
      for (const name of plan.services.bound) {
        const sl = await this.#bindService(next, next.services.find((s) => s.name === name)!);
        bound.set(name, sl);
        undo.push(() => sl.close());
      }
      const taken = new Set(this.#byIndex.keys());
      for (const id of [...plan.peers.added, ...plan.peers.rebuilt]) {
        built.set(id, this.#buildPeer(next, next.peers.find((p) => p.identity === id)!, taken));
      }
    } catch (e) {
      for (const u of undo.reverse()) await u();
      for (const b of built.values()) b.rt.close();
      throw e;
    }

    // ---- swap: synchronous, cannot fail half-way.
    this.#cfg = next;
    const oldSource = this.#keySource;
    if (ks) {
      this.#keySource = ks;
      this.#kmeDigest = digest;
    }
    if (plan.kmeMoved) {
      // Keys held ahead came from another KME: its peer KME will not know them. Zeroize.
      for (const pool of this.pools.values()) pool.close();
      this.pools.clear();
    }
    if (plan.audit) {
      if (audit && this.#audit) audit.continueFrom(this.#audit);
      this.#audit?.close();
      this.#audit = audit;
    }
    for (const id of plan.peers.removed) this.#removePeer(id, 'removed from the configuration');
    for (const id of plan.peers.rebuilt) this.#removePeer(id, 'its configuration or policy changed', 'peer_rebuilt');
    for (const id of [...plan.peers.kept, ...plan.peers.retuned]) {
      // Same runtime and receiver_index (control connection, epochs, flows stay).
      const p = next.peers.find((q) => q.identity === id)!;
      const pol = next.policies[p.policy];
      const rt = this.peers.get(id)!;
      if (plan.peers.retuned.includes(id)) {
        rt.updatePolicy(sessionPolicy(pol), pol.holdMs);
        rt.log.info({ event: 'peer_retuned', policy: p.policy, qkd: pol.qkd, suites: pol.suites, rekey_after_ms: pol.rekeyAfterTimeMs, hard_limit_ms: pol.hardLimitTimeMs }, 'new policy applied in place: next handshake and epochs from now on');
      }
      const liveness = { pingAfterMs: pol.keepaliveMs, deadAfterMs: pol.deadAfterMs };
      this.#dialers.get(id)?.setLiveness(liveness);
      if (this.#responderPeers.has(id)) this.#responderPeers.set(id, { runtime: rt, pin: p.pin, liveness });
      // New exports and carrier timers for new carriers.
      this.#byIndex.set(this.#indexOf.get(id)!, { runtime: rt, exports: this.#exportsFor(next, id), timers: timersOf(pol) });
      // The pool follows kme.pool / status_interval and the policy; its keys and waiters stay.
      const pool = this.pools.get(id);
      if (rt.role === 'initiator' && pol.qkd === 'off') {
        pool?.close();
        this.pools.delete(id);
      } else if (pool) {
        pool.reconfigure({ target: next.kme.pool, statusIntervalMs: next.kme.statusIntervalMs, statusDeadlineMs: statusDeadline(next), forecastLowSec: pol.forecastAlarmMs / 1000 });
      } else if (rt.role === 'initiator') {
        const fresh = this.#makePool(next, id, rt);
        this.pools.set(id, fresh);
        fresh.start();
      }
    }
    for (const [id, b] of built) this.#installPeer(next, next.peers.find((p) => p.identity === id)!, b.rt, b.receiverIndex);
    for (const [id, b] of built) this.#activatePeer(next, next.peers.find((p) => p.identity === id)!, b.rt, tls);
    for (const d of this.#dialers.values()) d.setTls(tls);

    const oldControl = this.#controlServer;
    if (control) this.#controlServer = control;
    else if (!this.#wantsControlServer(next)) this.#controlServer = null;
    if (oldControl && oldControl !== this.#controlServer) {
      void oldControl.close();
      if (!this.#controlServer) this.log.info({ event: 'control_listener_closed', why: 'no peer has this gateway as its responder any more' }, 'control listener closed: no peer connects to this gateway now');
    }
    this.#controlServer?.setTls(tls);
    this.addresses.control = this.#controlServer?.port;

    const oldData = this.#dataServer;
    if (data) this.#dataServer = data;
    else if (!next.data.listen) this.#dataServer = null;
    if (oldData && oldData !== this.#dataServer) void oldData.close();
    this.#dataServer?.update({ maxNewConnectionsPerSource: next.data.maxNewConnectionsPerSource, timers: timersOf(next.policies.default) });
    this.addresses.data = this.#dataServer?.port;

    if (adminMoved) {
      void this.#admin?.close();
      this.#admin = admin;
    }
    if (plan.rebind.metrics) {
      void this.#metrics?.close();
      this.#metrics = metrics;
      this.addresses.metrics = metrics?.port;
    }

    for (const name of plan.services.closed) {
      const sl = this.#services.get(name);
      this.#services.delete(name);
      delete this.addresses.services[name];
      if (sl) void sl.close({ resetFlows: 'service_removed' });
    }
    for (const name of plan.services.kept) this.#services.get(name)?.update(this.#serviceOptions(next, next.services.find((s) => s.name === name)!));
    for (const [name, sl] of bound) {
      this.#services.set(name, sl);
      this.addresses.services[name] = sl.port;
    }

    const level = (this.log as { level?: string }).level;
    if (level !== undefined && level !== next.log.level) (this.log as { level?: string }).level = next.log.level;
    // Calls in flight on the old client finish under their own deadline; then it closes.
    if (ks && oldSource) {
      this.#retiredSources.add(oldSource);
      const grace = setTimeout(() => {
        this.#retiredSources.delete(oldSource);
        void oldSource.close();
      }, next.kme.timeoutMs + 1_000);
      grace.unref();
    }
    this.log.info(
      {
        event: 'reload_applied',
        sections: plan.changed,
        files_reread: true,
        peers_kept: plan.peers.kept,
        peers_retuned: plan.peers.retuned,
        peers_added: plan.peers.added,
        peers_rebuilt: plan.peers.rebuilt,
        peers_removed: plan.peers.removed,
        services_bound: plan.services.bound,
        services_closed: plan.services.closed,
        kme_client_rebuilt: plan.kme,
      },
      'configuration reloaded',
    );
    return plan;
  }
}
