/**
 * The Prometheus metrics of a gateway (issue 5 point 4): one prom-client Registry whose
 * metrics are filled at scrape time from ONE GatewaySnapshot (src/daemon/snapshot.ts),
 * plus the KME request latency histogram, which is fed live by Gateway.onKmeCall.
 *
 * Totals that the snapshot already keeps (records sealed, rekeys, KME errors ...) are
 * exposed as counters: each collect() resets its metric and re-adds the snapshot's value,
 * so a peer or pool removed by a reload leaves the output at the next scrape instead of
 * lingering with its last value. Series whose value is unknown (no epoch yet, no KME
 * status yet, no forecast) are left out rather than written as 0 or NaN.
 *
 * Naming: `qkdgw_*`, base units (seconds, bytes), counters end in `_total`. Never key
 * bytes and never key_IDs (unbounded label values): SAE IDs, ops, reason classes only.
 */
import { createRequire } from 'node:module';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KmeCallObservation } from '../kms/etsi014/client.js';
import type { Etsi014Operation } from '../kms/etsi014/types.js';
import type { GatewaySnapshot, PeerSnapshot } from './snapshot.js';

/** What the metrics read: the Gateway is one (Gateway.snapshot, Gateway.onKmeCall). */
export interface MetricsSource {
  /** A plain-data picture of the gateway now; called once per scrape. */
  snapshot(): GatewaySnapshot;
  /** Subscribes to finished KME calls; returns the unsubscribe function. */
  onKmeCall(fn: (c: KmeCallObservation) => void): () => void;
}

export interface GatewayMetricsOptions {
  source: MetricsSource;
  /**
   * Also expose prom-client's default process metrics (CPU, memory, fds, GC, event-loop
   * lag as `qkdgw_nodejs_eventloop_lag_*_seconds`), prefixed `qkdgw_`. Default true.
   * They are collected by one per-process registry shared by every GatewayMetrics, so a
   * metrics server restarted by reloads does not add event-loop monitors or GC observers.
   */
  processMetrics?: boolean;
  /** `version` label of qkdgw_build_info; default the version in package.json. */
  version?: string;
}

/**
 * Buckets of qkdgw_kme_request_duration_seconds: 1 ms .. 10 s. A KME on the LAN answers
 * in a few ms; the top buckets catch retries and the per-call deadlines (kme.timeout,
 * 8 s for a whole enc_keys call, README Configuration).
 */
export const KME_LATENCY_BUCKETS_SEC: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const KME_OPS: readonly Etsi014Operation[] = ['status', 'enc_keys', 'dec_keys'];
const PEER_STATES: readonly PeerSnapshot['state'][] = ['up', 'hold', 'down'];
const PEER_MODES: readonly PeerSnapshot['mode'][] = ['qkd', 'degraded', 'none'];
const PEER_LABELS = ['peer', 'role'] as const;

type Labels = Record<string, string>;
type Put = (labels: Labels, value: number) => void;

let processRegistry: Registry | null = null;

/** The per-process registry of prom-client's default metrics, created on first use. */
function defaultProcessRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'qkdgw_' });
    // Gauges whose names end in _total break the Prometheus naming rules (promtool check
    // metrics fails on them); the same counts stay available per type without the suffix.
    for (const m of processRegistry.getMetricsAsArray()) {
      if (m.name.endsWith('_total') && (m as unknown as { type?: string }).type === 'gauge') processRegistry.removeSingleMetric(m.name);
    }
  }
  return processRegistry;
}

function packageVersion(): string {
  try {
    // src/daemon/metrics.ts and dist/daemon/metrics.js both sit two levels below the package root.
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * The gateway's metric registry. Use {@link GatewayMetrics.render} for the exposition
 * text (it takes the one snapshot of the scrape); {@link GatewayMetrics.close} stops
 * listening to KME calls.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  /** Content-Type of {@link render}'s text (Prometheus text format 0.0.4). */
  readonly contentType: string = Registry.PROMETHEUS_CONTENT_TYPE;
  readonly #source: MetricsSource;
  readonly #processMetrics: boolean;
  /** The snapshot of the scrape in progress (set only while render() runs the collects). */
  #scrape: GatewaySnapshot | null = null;
  #unsubscribe: (() => void) | null;

  constructor(o: GatewayMetricsOptions) {
    this.#source = o.source;
    this.#processMetrics = o.processMetrics ?? true;
    const reg = [this.registry];

    // ------------------------------------------------------------ per peer (protocol.md s4, s6)
    this.#gauge('qkdgw_peer_info', 'Configured peer: its policy and the policy\'s qkd setting (always 1).', ['peer', 'role', 'policy', 'qkd_policy'], (s, put) => {
      for (const p of s.peers) put({ peer: p.peer, role: p.role, policy: p.policy, qkd_policy: p.qkdPolicy }, 1);
    });
    this.#gauge('qkdgw_peer_state', 'Peer state, 1 for the current one: up (an epoch to seal under), hold (control up, no epoch), down (no control channel).', [...PEER_LABELS, 'state'], (s, put) => {
      for (const p of s.peers) for (const st of PEER_STATES) put({ ...peerLabels(p), state: st }, p.state === st ? 1 : 0);
    });
    this.#gauge('qkdgw_peer_mode', 'Key mode of the current epoch, 1 for the current one: qkd (a QKD key is mixed in), degraded (ML-KEM + X25519 only), none (no epoch).', [...PEER_LABELS, 'mode'], (s, put) => {
      for (const p of s.peers) for (const m of PEER_MODES) put({ ...peerLabels(p), mode: m }, p.mode === m ? 1 : 0);
    });
    this.#gauge('qkdgw_peer_ready', '1 unless the peer blocks /readyz (not up, or not in QKD mode under qkd: required).', PEER_LABELS, (s, put) => {
      for (const p of s.peers) put(peerLabels(p), s.notReady.includes(p.peer) ? 0 : 1);
    });
    this.#gauge('qkdgw_peer_epoch', 'Number of the current epoch (absent before the first).', PEER_LABELS, (s, put) => {
      for (const p of s.peers) if (p.epoch !== null) put(peerLabels(p), p.epoch);
    });
    this.#gauge('qkdgw_peer_epoch_age_seconds', 'Seconds since the current epoch\'s keys were derived (absent before the first epoch).', PEER_LABELS, (s, put) => {
      for (const p of s.peers) if (p.epochAgeSec !== null) put(peerLabels(p), p.epochAgeSec);
    });
    this.#gauge('qkdgw_peer_flows_open', 'Carriers (flows) open now.', PEER_LABELS, (s, put) => {
      for (const p of s.peers) put(peerLabels(p), p.flowsOpen);
    });
    this.#counter('qkdgw_peer_rekeys_total', 'Handshakes started, by trigger class (time, records, bytes, peer, ...).', [...PEER_LABELS, 'reason'], (s, put) => {
      for (const p of s.peers) for (const [reason, n] of Object.entries(p.rekeysByReason)) put({ ...peerLabels(p), reason }, n);
    });
    this.#counter('qkdgw_peer_handshake_failures_total', 'Failed handshakes, by reason class.', [...PEER_LABELS, 'reason'], (s, put) => {
      for (const p of s.peers) for (const [reason, n] of Object.entries(p.handshakeFailuresByReason)) put({ ...peerLabels(p), reason }, n);
    });
    this.#peerCounter('qkdgw_peer_epoch_switches_total', 'Switches to a new epoch.', (p) => p.epochSwitches);
    this.#peerCounter('qkdgw_peer_records_sealed_total', 'Carrier records sealed (every type: OPEN, DATA, FIN, RST, KEEPALIVE).', (p) => p.recordsSealed);
    this.#peerCounter('qkdgw_peer_sealed_bytes_total', 'Plaintext bytes sealed into carrier records (DATA payloads).', (p) => p.bytesSealed);
    this.#peerCounter('qkdgw_peer_records_opened_total', 'Carrier records opened and authenticated (every type).', (p) => p.recordsOpened);
    this.#peerCounter('qkdgw_peer_opened_bytes_total', 'Plaintext bytes of the DATA records opened.', (p) => p.bytesOpened);
    this.#peerCounter('qkdgw_peer_auth_failures_total', 'Records that failed AEAD authentication (each closed its carrier).', (p) => p.authFailures);
    this.#peerCounter('qkdgw_peer_replay_drops_total', 'Carrier OPENs refused as replays (protocol.md s5.1).', (p) => p.replayDrops);
    this.#peerCounter('qkdgw_peer_flows_opened_total', 'Carriers (flows) opened.', (p) => p.carriersOpened);

    // ------------------------------------------------------------ KME (ETSI GS QKD 014)
    this.#gauge('qkdgw_kme_info', 'The KME in use (always 1).', ['kme'], (s, put) => put({ kme: s.kme.url }, 1));
    const latency = new Histogram({
      name: 'qkdgw_kme_request_duration_seconds',
      help: 'Duration of ETSI 014 calls to the KME, from the call to its result or error (retries inside a call included), by op and outcome.',
      labelNames: ['op', 'outcome'],
      buckets: [...KME_LATENCY_BUCKETS_SEC],
      registers: reg,
    });
    // Zeroed series exist from the start, so rate() and absent-alerts work before the first call.
    for (const op of KME_OPS) for (const outcome of ['ok', 'error']) latency.zero({ op, outcome });
    this.#unsubscribe = o.source.onKmeCall((c) => {
      if (Number.isFinite(c.durationSec) && c.durationSec >= 0) latency.observe({ op: c.op, outcome: c.errorKind === null ? 'ok' : 'error' }, c.durationSec);
    });
    this.#counter('qkdgw_kme_errors_total', 'Failed KME calls, by op and error class (transient, exhausted, key_unavailable, auth, tls, ...).', ['op', 'class'], (s, put) => {
      for (const [op, c] of Object.entries(s.kme.calls.byOp)) for (const [cls, n] of Object.entries(c.errors)) put({ op, class: cls }, n);
    });
    this.#counter('qkdgw_kme_http_responses_total', 'KME replies by HTTP status code (successes included).', ['code'], (s, put) => {
      for (const [code, n] of Object.entries(s.kme.calls.byHttpStatus)) put({ code }, n);
    });

    // ------------------------------------------------------------ key pools (initiator side, per peer)
    this.#gauge('qkdgw_kme_stored_keys', 'stored_key_count of the last successful KME status check for this peer (absent before the first).', ['peer'], (s, put) => {
      for (const p of s.kme.pools) if (p.kmeStoredKeyCount !== null) put({ peer: p.peerSaeId }, p.kmeStoredKeyCount);
    });
    this.#gauge('qkdgw_pool_keys', 'QKD keys fetched ahead and held in the pool now.', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.stock);
    });
    this.#gauge('qkdgw_pool_target_keys', 'Pool size the refill aims at.', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.target);
    });
    this.#gauge('qkdgw_pool_forecast_dry_seconds', 'Forecast seconds until the pool is empty at the current consumption with no refill (absent when nothing is consumed).', ['peer'], (s, put) => {
      for (const p of s.kme.pools) if (p.forecastPoolDrySec !== null) put({ peer: p.peerSaeId }, p.forecastPoolDrySec);
    });
    this.#gauge('qkdgw_kme_forecast_dry_seconds', 'Forecast seconds until the KME key store runs dry: stored / (consumption - supply) (absent when never or unknown).', ['peer'], (s, put) => {
      for (const p of s.kme.pools) if (p.forecastKmeDrySec !== null) put({ peer: p.peerSaeId }, p.forecastKmeDrySec);
    });
    this.#gauge('qkdgw_pool_forecast_low', '1 between key_forecast_low and key_forecast_ok.', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.forecastLow ? 1 : 0);
    });
    this.#counter('qkdgw_pool_keys_fetched_total', 'Keys delivered by enc_keys into the pool.', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.fetched);
    });
    this.#counter('qkdgw_pool_keys_taken_total', 'Keys handed out of the pool to handshakes.', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.taken);
    });
    this.#counter('qkdgw_pool_keys_discarded_total', 'Pooled keys zeroized unused (expired).', ['peer'], (s, put) => {
      for (const p of s.kme.pools) put({ peer: p.peerSaeId }, p.discarded);
    });

    // ------------------------------------------------------------ process
    this.#gauge('qkdgw_ready', '1 when /readyz answers 200 (every peer up, in QKD mode under qkd: required; not stopping).', [], (s, put) => put({}, s.notReady.length === 0 && s.stopping !== true ? 1 : 0));
    this.#gauge('qkdgw_crypto_backend_info', 'AES-256-GCM backend in use (always 1; absent before start).', ['backend'], (s, put) => {
      if (s.backend !== null) put({ backend: s.backend }, 1);
    });
    this.#counter('qkdgw_reloads_total', 'Configuration reloads (SIGHUP), by result.', ['result'], (s, put) => {
      put({ result: 'ok' }, s.reloads.ok);
      put({ result: 'failed' }, s.reloads.failed);
    });
    this.#gauge('qkdgw_uptime_seconds', 'Seconds since the gateway started.', [], (s, put) => put({}, s.uptimeSec));
    const build = new Gauge({ name: 'qkdgw_build_info', help: 'qkdgw version and the Node.js running it (always 1).', labelNames: ['version', 'node_version'], registers: reg });
    build.set({ version: o.version ?? packageVersion(), node_version: process.version }, 1);
  }

  /**
   * The exposition text (Prometheus text format 0.0.4, {@link contentType}). Takes one
   * snapshot for the whole scrape. Rejects when the snapshot or a collect throws; nothing
   * is cached, so the next scrape starts afresh.
   */
  async render(): Promise<string> {
    this.#scrape = this.#source.snapshot();
    let text: Promise<string>;
    try {
      // prom-client calls every collect() synchronously inside metrics(), before its first await.
      text = this.registry.metrics();
    } finally {
      this.#scrape = null;
    }
    const own = await text;
    return this.#processMetrics ? own + '\n' + (await defaultProcessRegistry().metrics()) : own;
  }

  /** Stops observing KME calls (idempotent). The registry still renders. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** The scrape's snapshot; outside render() (a direct registry.metrics()) a fresh one. */
  #snap(): GatewaySnapshot {
    return this.#scrape ?? this.#source.snapshot();
  }

  #gauge(name: string, help: string, labelNames: readonly string[], fill: (s: GatewaySnapshot, put: Put) => void): void {
    const snap = (): GatewaySnapshot => this.#snap();
    const g: Gauge<string> = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        g.reset();
        fill(snap(), (l, v) => g.set(l, v));
      },
    });
  }

  /** A counter whose value is the snapshot's monotonic total (reset + inc each scrape). */
  #counter(name: string, help: string, labelNames: readonly string[], fill: (s: GatewaySnapshot, put: Put) => void): void {
    const snap = (): GatewaySnapshot => this.#snap();
    const c: Counter<string> = new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        c.reset();
        fill(snap(), (l, v) => c.inc(l, v));
      },
    });
  }

  #peerCounter(name: string, help: string, value: (p: PeerSnapshot) => number): void {
    this.#counter(name, help, PEER_LABELS, (s, put) => {
      for (const p of s.peers) put(peerLabels(p), value(p));
    });
  }
}

function peerLabels(p: PeerSnapshot): Labels {
  return { peer: p.peer, role: p.role };
}
