/**
 * One plain-data picture of a running gateway: what `/metrics`, `qkdgw status` and the
 * systemd STATUS= line read. Computing it touches no socket and no key: only counters,
 * epoch numbers, key_IDs and pool figures (never key bytes).
 */
import type { KmeCallObservation } from '../kms/etsi014/client.js';
import type { KeyPoolStats } from '../kms/key-pool.js';
import { Spec } from '../tunnel/core/constants.js';

/** Per peer (protocol.md s4, s6). Counters are totals since the daemon started (or since the peer was added by a reload). */
export interface PeerSnapshot {
  /** The peer's SAE ID. */
  peer: string;
  role: 'initiator' | 'responder';
  /** Name of the policy (config `policies.<name>`) and its `qkd` setting. */
  policy: string;
  qkdPolicy: 'required' | 'preferred' | 'off';
  /**
   * `up`: control channel up and an epoch to seal under; `hold`: control up, no epoch to
   * seal under (first handshake, or keys missing under `required`); `down`: no control channel.
   */
  state: 'up' | 'hold' | 'down';
  controlUp: boolean;
  /** Current epoch number, or null before the first. */
  epoch: number | null;
  /** Seconds since the current epoch's keys were derived, or null. */
  epochAgeSec: number | null;
  /** `qkd` (a QKD key is mixed in), `degraded` (ML-KEM + X25519 only, protocol.md s6), or `none` (no epoch). */
  mode: 'qkd' | 'degraded' | 'none';
  /** AEAD suite of the current epoch (1 AES-256-GCM, 2 XChaCha20-Poly1305), or null. */
  suite: number | null;
  /** key_IDs mixed into the current epoch (empty when degraded or none). */
  keyIds: string[];
  handshakeInFlight: boolean;
  /** Handshakes started, by trigger class (peer.ts reasonClass). */
  rekeysByReason: Record<string, number>;
  /** Failed handshakes, by reason class. */
  handshakeFailuresByReason: Record<string, number>;
  epochSwitches: number;
  recordsSealed: number;
  /** Plaintext bytes sealed (DATA payloads). */
  bytesSealed: number;
  recordsOpened: number;
  bytesOpened: number;
  /** Records that failed authentication (each closed its carrier). */
  authFailures: number;
  /** Carrier OPENs refused as replays (protocol.md s5.1). */
  replayDrops: number;
  /** Carriers (flows) open now. */
  flowsOpen: number;
  carriersOpened: number;
  /** Every session event by its stable name (README, Logs). */
  events: Record<string, number>;
}

/** Per initiator peer: its QKD key pool (src/kms/key-pool.ts). */
export type PoolSnapshot = KeyPoolStats;

/** Calls to the KME by operation and outcome since start. */
export interface KmeCallCounts {
  /** `${op}` -> { ok, errors by class } */
  byOp: Record<string, { ok: number; errors: Record<string, number> }>;
  /** HTTP status of every reply (errors and successes), by status code. */
  byHttpStatus: Record<string, number>;
}

export interface GatewaySnapshot {
  identity: string;
  /** Absolute path of the configuration in force. */
  configFile: string;
  pid: number;
  /** Seconds since the gateway started. */
  uptimeSec: number;
  /** AEAD backend in use (native, node, noble) or null before start. */
  backend: string | null;
  kme: { url: string; calls: KmeCallCounts; pools: PoolSnapshot[] };
  peers: PeerSnapshot[];
  /** Peers that cannot carry traffic as their policy says (notReadyPeers). */
  notReady: string[];
  /** A stop has begun (listeners closed, flows draining): not ready whatever the peers. */
  stopping?: boolean;
  reloads: { ok: number; failed: number; last: { at: string; ok: boolean; detail: string } | null };
}

/** Accumulates KME call observations (Etsi014Client onCall) into {@link KmeCallCounts}. */
export class KmeCallTally {
  readonly counts: KmeCallCounts = { byOp: {}, byHttpStatus: {} };

  /** Adds one finished call. */
  add(c: KmeCallObservation): void {
    const op = (this.counts.byOp[c.op] ??= { ok: 0, errors: {} });
    if (c.errorKind === null) op.ok++;
    else op.errors[c.errorKind] = (op.errors[c.errorKind] ?? 0) + 1;
    if (c.httpStatus !== null) this.counts.byHttpStatus[String(c.httpStatus)] = (this.counts.byHttpStatus[String(c.httpStatus)] ?? 0) + 1;
  }
}

/** What a snapshot reads from one PeerRuntime (src/tunnel/io/peer.ts). */
export interface PeerView {
  readonly role: 'initiator' | 'responder';
  readonly controlUp: boolean;
  readonly carrierCount: number;
  readonly events: ReadonlyMap<string, number>;
  readonly rekeysByReason: ReadonlyMap<string, number>;
  readonly handshakeFailuresByReason: ReadonlyMap<string, number>;
  readonly stats: { readonly epochSwitches: number; readonly authFailures: number; readonly replays: number; readonly carriersOpened: number };
  readonly traffic: { readonly recordsSealed: number; readonly bytesSealed: number; readonly recordsOpened: number; readonly bytesOpened: number };
  readonly session: {
    readonly handshakeInFlight: boolean;
    readonly slots: { readonly current: { readonly n: number; readonly suite: number; readonly mode: number; readonly keyIds: readonly string[]; readonly derivedAt: number } | null };
    readonly ladder: { readonly mode: 'qkd' | 'degraded' };
  };
  sendEpoch(): object | null;
}

/**
 * The snapshot of one peer at clock time `now` (ms, the gateway's Clock, same base as
 * the epochs' derivedAt).
 */
export function peerSnapshot(peer: string, policy: string, qkdPolicy: PeerSnapshot['qkdPolicy'], rt: PeerView, now: number): PeerSnapshot {
  const cur = rt.session.slots.current;
  const canSeal = rt.sendEpoch() !== null;
  return {
    peer,
    role: rt.role,
    policy,
    qkdPolicy,
    state: !rt.controlUp ? 'down' : canSeal ? 'up' : 'hold',
    controlUp: rt.controlUp,
    epoch: cur?.n ?? null,
    epochAgeSec: cur ? Math.max(0, (now - cur.derivedAt) / 1000) : null,
    mode: cur ? ((cur.mode & Spec.MODE_DEGRADED) !== 0 ? 'degraded' : 'qkd') : 'none',
    suite: cur?.suite ?? null,
    keyIds: cur ? [...cur.keyIds] : [],
    handshakeInFlight: rt.session.handshakeInFlight,
    rekeysByReason: Object.fromEntries(rt.rekeysByReason),
    handshakeFailuresByReason: Object.fromEntries(rt.handshakeFailuresByReason),
    epochSwitches: rt.stats.epochSwitches,
    recordsSealed: rt.traffic.recordsSealed,
    bytesSealed: rt.traffic.bytesSealed,
    recordsOpened: rt.traffic.recordsOpened,
    bytesOpened: rt.traffic.bytesOpened,
    authFailures: rt.stats.authFailures,
    replayDrops: rt.stats.replays,
    flowsOpen: rt.carrierCount,
    carriersOpened: rt.stats.carriersOpened,
    events: Object.fromEntries(rt.events),
  };
}

/**
 * Readiness (`/readyz`): every peer can carry traffic as its policy says: up (control
 * channel and an epoch to seal under), and in QKD mode when its policy is `qkd: required`
 * (`preferred` and `off` accept a degraded epoch, not none). Returns the peers that are
 * not (empty = ready).
 */
export function notReadyPeers(peers: readonly PeerSnapshot[]): string[] {
  return peers.filter((p) => p.state !== 'up' || (p.qkdPolicy === 'required' && p.mode !== 'qkd')).map((p) => p.peer);
}
