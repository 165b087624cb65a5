/**
 * `startKmeSimulator`: two KMEs sharing one simulated QKD link, each serving ETSI GS QKD
 * 014 V1.1.1 over HTTPS with mutual TLS on its own port.
 */
import { EventEmitter, once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import { startKmeSimAdmin, type KmeAdminServer } from './admin-server.js';
import { KEEP_ALIVE_TIMEOUT_MS } from './constants.js';
import { SimControl, type KmeSimControl } from './control.js';
import { Delays, gateRequest } from './faults.js';
import type { DeliverySide, KmeContext } from './handlers.js';
import { keyLedgerFromEnv, type KeyLedger } from './key-ledger.js';
import { KeyPool } from './link.js';
import { resolveKmeSimConfig, type KmeSimOptions, type ResolvedEndpoint, type ResolvedKmeSimConfig } from './options.js';
import { createRequestListener, type Endpoint } from './router.js';
import { PendingKeyStore, type PendingKey } from './store.js';

/** One key handed to one SAE. Never holds key bytes. */
export interface DeliveryRecord {
  key_ID: string;
  /** Master SAE ID of the key. */
  master: string;
  /** Slave SAE ID of the key. */
  slave: string;
  /** ID of the KME that handed it out. */
  kme: string;
  /** `enc` = to the master by Get key; `dec` = to the slave by Get key with key IDs. */
  side: DeliverySide;
  /** Key size, bits. */
  sizeBits: number;
  /** clock.now() at delivery, ms. */
  at: number;
}

/** Where one KME listens. */
export interface KmeEndpointInfo {
  kmeId: string;
  host: string;
  port: number;
  /** Base URL of the API, `https://host:port/api/v1` (IPv6 hosts in brackets). */
  url: string;
}

export interface KmeSimStats {
  /** Whole keys of `key_size` in the link pool now (Status `stored_key_count`). */
  storedKeyCount: number;
  maxKeyCount: number;
  /** Keys given to a master and not yet fetched by the slave. */
  pendingKeyCount: number;
  /** Keys handed out on the master side (`enc_keys`). */
  encDelivered: number;
  /** Keys handed out on the slave side (`dec_keys`). */
  decDelivered: number;
  /** encDelivered + decDelivered. */
  delivered: number;
  /** HTTP requests answered, both KMEs. */
  requests: number;
  /** Answers by HTTP status code, both KMEs. */
  responsesByStatus: Record<string, number>;
  /** TLS handshakes refused (no/invalid client certificate, wrong version, ...). */
  tlsRejected: number;
}

export interface KmeSimulator {
  /** The two KMEs, in the order of `options.kmes`. */
  readonly kmes: ReadonlyArray<KmeEndpointInfo>;
  /** Every delivery so far, oldest first (the newest 100000 are kept). Never key bytes. */
  readonly deliveries: readonly DeliveryRecord[];
  stats(): KmeSimStats;
  /** Emitted once per key handed out, after the answer is built. */
  on(event: 'delivery', listener: (rec: DeliveryRecord) => void): this;
  off(event: 'delivery', listener: (rec: DeliveryRecord) => void): this;
  once(event: 'delivery', listener: (rec: DeliveryRecord) => void): this;
  /**
   * Run-time control for tests: link rate/capacity/pause, drain and add keys, faults,
   * quirks, reset and a state snapshot. See control.ts {@link KmeSimControl}.
   */
  readonly control: KmeSimControl;
  /**
   * The admin HTTP endpoint (plain HTTP, loopback only, admin-server.ts) when the options
   * asked for one, with the port actually bound; otherwise null.
   */
  readonly admin: { host: string; port: number; url: string } | null;
  /** Stops both servers and the admin endpoint, drops open connections (stalled ones too) and wipes every pending key. Idempotent. */
  close(): Promise<void>;
}

const MAX_DELIVERY_HISTORY = 100_000;

const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

class KmeSimulatorImpl extends EventEmitter implements KmeSimulator {
  readonly kmes: KmeEndpointInfo[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  readonly servers: https.Server[] = [];
  readonly pool: KeyPool;
  readonly store: PendingKeyStore;
  readonly config: ResolvedKmeSimConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly control: SimControl;
  readonly delays = new Delays();
  adminServer: KmeAdminServer | null = null;
  /** Test-only key ledger, and whether this simulator opened it (from the env) and must close it. */
  ledger: KeyLedger | null = null;
  ownsLedger = false;
  #enc = 0;
  #dec = 0;
  #requests = 0;
  #tlsRejected = 0;
  #byStatus: Record<string, number> = {};
  #closing: Promise<void> | null = null;

  constructor(config: ResolvedKmeSimConfig, clock: Clock, logger: Logger) {
    super();
    this.config = config;
    this.clock = clock;
    this.logger = logger;
    this.pool = new KeyPool(config.link, clock, config.paused);
    this.store = new PendingKeyStore(config.link.maxPendingKeys);
    this.control = new SimControl(config, this.pool, this.store, logger);
  }

  get admin(): KmeSimulator['admin'] {
    const a = this.adminServer;
    return a ? { host: a.host, port: a.port, url: a.url } : null;
  }

  stats(): KmeSimStats {
    return {
      storedKeyCount: this.pool.storedKeyCount(),
      maxKeyCount: this.pool.maxKeyCount,
      pendingKeyCount: this.store.size,
      encDelivered: this.#enc,
      decDelivered: this.#dec,
      delivered: this.#enc + this.#dec,
      requests: this.#requests,
      responsesByStatus: { ...this.#byStatus },
      tlsRejected: this.#tlsRejected,
    };
  }

  recordDeliveries(kme: string, side: DeliverySide, master: string, slave: string, keys: readonly PendingKey[]): void {
    if (side === 'enc') this.#enc += keys.length;
    else this.#dec += keys.length;
    this.logger.info({
      event: 'kme_delivery',
      kme,
      side,
      master_SAE_ID: master,
      slave_SAE_ID: slave,
      key_IDs: keys.map((k) => k.key_ID),
    });
    const at = this.clock.now();
    const recs = keys.map((k) => ({ key_ID: k.key_ID, master, slave, kme, side, sizeBits: k.sizeBits, at }));
    this.deliveries.push(...recs);
    if (this.deliveries.length > MAX_DELIVERY_HISTORY) this.deliveries.splice(0, this.deliveries.length - MAX_DELIVERY_HISTORY);
    for (const r of recs) this.emit('delivery', r);
  }

  countReply(kme: string, status: number, endpoint: Endpoint): void {
    this.control.countRequest(kme, endpoint, status);
    this.#requests++;
    this.#byStatus[status] = (this.#byStatus[status] ?? 0) + 1;
  }

  countTlsRejected(kme: string, err: Error & { code?: string }): void {
    this.#tlsRejected++;
    this.logger.debug({ event: 'kme_tls_rejected', kme, code: err.code ?? null, err: err.message });
  }

  async listen(self: ResolvedEndpoint, peer: ResolvedEndpoint): Promise<void> {
    const ctx: KmeContext = {
      self,
      peer,
      selfSaes: new Set(self.saes),
      peerSaes: new Set(peer.saes),
      config: this.config,
      quirks: this.control.quirks,
      // mismatchNext is set on the KME that will deliver the wrong copy: the slave's, i.e. the peer.
      takeMismatch: () => this.control.takeMismatch(peer.kmeId),
      pool: this.pool,
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      delivered: (side, master, slave, keys) => this.recordDeliveries(self.kmeId, side, master, slave, keys),
      ...(this.ledger ? { issued: (key: Buffer) => this.ledger!.record(key) } : {}),
    };
    let server: https.Server;
    try {
      server = https.createServer(
        {
          cert: self.cert,
          key: self.key,
          ca: self.ca,
          // ETSI GS QKD 014 s5.1: mutual authentication at connection set-up, TLS >= 1.2.
          requestCert: true,
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          // A client that never completes TLS must not hold a socket (the default is 120 s).
          handshakeTimeout: 10_000,
        },
        createRequestListener(ctx, {
          onReply: (status, endpoint) => this.countReply(self.kmeId, status, endpoint),
          gate: (res, endpoint) =>
            gateRequest(this.control.faultsOf(self.kmeId), res, this.delays, (fault) => {
              this.control.countInjected(self.kmeId, fault);
              if (fault === 'stall') this.control.countRequest(self.kmeId, endpoint, 'stalled');
              this.logger.debug({ event: 'kme_fault_injected', kme: self.kmeId, fault, endpoint });
            }),
        }),
      );
    } catch (e) {
      throw new QkdgwError(ErrorCodes.KMS_CONFIG, `KME ${self.kmeId}: cannot use its certificate, key or CA`, { kme: self.kmeId }, { cause: e });
    }
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    server.on('tlsClientError', (err, socket) => {
      this.countTlsRejected(self.kmeId, err);
      // Node emits this on a handshake timeout without closing the socket: close it here.
      socket.destroy();
    });
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    this.servers.push(server);
    server.listen(self.port, self.host);
    try {
      // events.once rejects if 'error' fires first (EADDRINUSE, EACCES, ...).
      await once(server, 'listening');
    } catch (e) {
      throw new QkdgwError(ErrorCodes.LISTEN, `KME ${self.kmeId}: cannot listen on ${self.host}:${self.port}`, { kme: self.kmeId }, { cause: e });
    }
    const port = (server.address() as AddressInfo).port;
    const info = { kmeId: self.kmeId, host: self.host, port, url: `https://${urlHost(self.host)}:${port}/api/v1` };
    this.kmes.push(info);
    this.logger.info({ event: 'kme_listening', kme: self.kmeId, url: info.url, saes: self.saes });
  }

  async startAdmin(host: string, port: number): Promise<void> {
    this.adminServer = await startKmeSimAdmin(this.control, { host, port, logger: this.logger });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Requests waiting out an injected latency end now instead of after it.
      this.delays.cancelAll();
      await this.adminServer?.close();
      await Promise.all(
        this.servers.map(async (s) => {
          if (!s.listening) return;
          const closed = once(s, 'close');
          s.close();
          s.closeAllConnections();
          await closed;
        }),
      );
      this.store.clear();
      if (this.ownsLedger) this.ledger?.close();
    })();
    return this.#closing;
  }
}

/**
 * Starts both KMEs and resolves once both listen.
 *
 * Options and defaults: see {@link KmeSimOptions} (`resolveKmeSimConfig` validates them).
 * The link pool fills lazily from `clock.now()` at `link.keyRateBps` bit/s, capped at
 * `link.maxKeyCount` keys of `link.keySizeBits` bits. `sim.control` changes the link,
 * faults and quirks at run time; `options.admin` adds the admin HTTP endpoint on loopback.
 * TEST ONLY: `options.keyLedger`, or else a directory in the environment variable
 * `QKDGW_TEST_KEY_LEDGER`, records the bytes of every key issued (key-ledger.ts).
 * @throws QkdgwError KMS_CONFIG for invalid options (a non-loopback admin host included),
 *   an unusable `QKDGW_TEST_KEY_LEDGER` or unusable TLS material, LISTEN when a port
 *   cannot be bound (what was started is closed again)
 */
export async function startKmeSimulator(opts: KmeSimOptions): Promise<KmeSimulator> {
  const config = resolveKmeSimConfig(opts);
  const sim = new KmeSimulatorImpl(config, opts.clock ?? systemClock, opts.logger ?? silentLogger);
  try {
    sim.ledger = opts.keyLedger ?? keyLedgerFromEnv(process.env, sim.logger);
    sim.ownsLedger = opts.keyLedger === undefined && sim.ledger !== null;
    await sim.listen(config.kmes[0], config.kmes[1]);
    await sim.listen(config.kmes[1], config.kmes[0]);
    if (config.admin) await sim.startAdmin(config.admin.host, config.admin.port);
  } catch (e) {
    await sim.close();
    throw e;
  }
  return sim;
}
