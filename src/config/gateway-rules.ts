/**
 * Cross-field rules of the gateway configuration: what a JSON Schema cannot say.
 * Roles follow protocol.md s1 (the smaller identity, byte-wise, is the initiator); the
 * timing rules are the refusal rules at the end of protocol.md s6. Every issue points at
 * the offending field (or the nearest field that was written in the file).
 */
import { isLoopbackHost } from '../util/loopback.js';
import { compareBytes } from '../util/bytes.js';
import type { GatewayConfig, Policy, RawGateway } from './gateway.js';
import { formatPath, type ConfigIssue } from './issues.js';
import type { LoadedYaml, PathSegments } from './load-yaml.js';
import { formatHostPort, type HostPort } from './units.js';

/** True when `own` is the initiator towards `peer` (protocol.md s1: byte-wise smaller; a proper prefix is smaller). */
export function isInitiator(own: string, peer: string): boolean {
  return compareBytes(Buffer.from(own, 'utf8'), Buffer.from(peer, 'utf8')) < 0;
}

/** Appends to `issues` every cross-field rule `cfg` breaks. `raw` holds the text the operator wrote. */
export function checkGatewayRules(cfg: GatewayConfig, raw: RawGateway, doc: LoadedYaml, issues: ConfigIssue[]): void {
  const push = (segs: PathSegments, message: string): void => {
    issues.push(doc.issue(segs, message));
  };
  const own = cfg.identity;

  // Peers: identities (protocol.md s1), roles, addresses, trust anchors, policies.
  const peerIndex = new Map<string, number>();
  const usedByService = new Set(cfg.services.map((s) => s.peer));
  const ourInitiators: string[] = [];
  cfg.peers.forEach((p, i) => {
    if (p.identity === own) {
      push(['peers', i, 'identity'], `peer identity ${p.identity} equals this gateway's own identity (protocol.md s1)`);
      return;
    }
    const first = peerIndex.get(p.identity);
    if (first !== undefined) {
      push(['peers', i, 'identity'], `duplicate peer identity ${p.identity} (also peers[${first}])`);
      return;
    }
    peerIndex.set(p.identity, i);
    if (isInitiator(own, p.identity)) {
      if (!p.control) {
        push(
          ['peers', i, 'control'],
          `missing: this gateway (${own}) is the initiator towards ${p.identity} (its identity sorts first, protocol.md s1), so it needs the peer's control address host:port`,
        );
      }
    } else {
      ourInitiators.push(p.identity);
    }
    if (!p.data && usedByService.has(p.identity)) {
      push(['peers', i, 'data'], `missing: a service tunnels to ${p.identity}, so its data (carrier) address host:port is needed`);
    }
    if (!cfg.control.ca && !p.pin) {
      push(['peers', i, 'pin'], `missing: without control.ca each peer needs a pin (sha256:<base64>) to authenticate ${p.identity}`);
    }
    if (!Object.hasOwn(cfg.policies, p.policy)) {
      push(['peers', i, 'policy'], `unknown policy ${JSON.stringify(p.policy)}; defined: ${Object.keys(cfg.policies).join(', ')}`);
    }
  });
  if (ourInitiators.length > 0 && !cfg.control.listen) {
    push(
      ['control', 'listen'],
      `missing: ${ourInitiators.join(', ')} ${ourInitiators.length === 1 ? 'is' : 'are'} the initiator towards this gateway (${own}) and connect(s) to it, so control.listen is needed`,
    );
  }

  // Services.
  const serviceIndex = new Map<string, number>();
  cfg.services.forEach((s, i) => {
    const first = serviceIndex.get(s.name);
    if (first !== undefined) push(['services', i, 'name'], `duplicate service name ${s.name} (also services[${first}])`);
    else serviceIndex.set(s.name, i);
    if (!peerIndex.has(s.peer)) {
      push(['services', i, 'peer'], s.peer === own ? 'a service cannot tunnel to this gateway itself' : `unknown peer ${s.peer}; it must be one of peers[].identity`);
    }
  });

  // Exports.
  const exportIndex = new Map<string, number>();
  cfg.exports.forEach((e, i) => {
    const first = exportIndex.get(e.name);
    if (first !== undefined) push(['exports', i, 'name'], `duplicate export name ${e.name} (also exports[${first}])`);
    else exportIndex.set(e.name, i);
    e.peers.forEach((p, j) => {
      if (!peerIndex.has(p)) push(['exports', i, 'peers', j], `unknown peer ${p}; it must be one of peers[].identity`);
    });
  });
  if (cfg.exports.length > 0 && !cfg.data.listen) {
    push(['data', 'listen'], 'missing: exports are defined, so carriers from peers need a data.listen address');
  }

  // /metrics and /readyz tell an attacker which peers run degraded and when keys run dry:
  // they are for a local scraper or a reverse proxy, never a public interface.
  if (cfg.metrics && !isLoopbackHost(cfg.metrics.listen.host)) {
    push(['metrics', 'listen'], `metrics must listen on a loopback address (127.0.0.0/8, ::1 or localhost), got ${cfg.metrics.listen.host}; put a TLS reverse proxy in front to scrape it remotely`);
  }

  // A drain or a READY wait longer than an hour is a typo (1h for 1m), not a plan.
  if (cfg.shutdown.drainTimeoutMs > 3_600_000) push(['shutdown', 'drain_timeout'], 'at most 1h (and keep it below the unit\'s TimeoutStopSec, 30s as shipped)');
  if (cfg.startup.readyWaitMs > 3_600_000) push(['startup', 'ready_wait'], 'at most 1h (and keep it below the unit\'s TimeoutStartSec, 60s as shipped)');

  // sun_path holds 108 bytes with its NUL: a longer path cannot be bound (static: caught here, not at start).
  if (cfg.admin && Buffer.byteLength(cfg.admin.socket) > 107) {
    push(['admin', 'socket'], `a Unix socket path holds at most 107 bytes; ${cfg.admin.socket} has ${Buffer.byteLength(cfg.admin.socket)}`);
  }

  // Listen addresses must not collide (port 0 picks a free port and never collides).
  const listens: Array<{ segs: PathSegments; hp: HostPort }> = [];
  if (cfg.control.listen) listens.push({ segs: ['control', 'listen'], hp: cfg.control.listen });
  if (cfg.data.listen) listens.push({ segs: ['data', 'listen'], hp: cfg.data.listen });
  cfg.services.forEach((s, i) => listens.push({ segs: ['services', i, 'listen'], hp: s.listen }));
  if (cfg.metrics) listens.push({ segs: ['metrics', 'listen'], hp: cfg.metrics.listen });
  for (let j = 1; j < listens.length; j++) {
    for (let i = 0; i < j; i++) {
      if (listenersCollide(listens[i].hp, listens[j].hp)) {
        push(listens[j].segs, `listen address ${formatHostPort(listens[j].hp)} collides with ${formatPath(listens[i].segs)} (${formatHostPort(listens[i].hp)})`);
        break;
      }
    }
  }

  for (const [name, p] of Object.entries(cfg.policies)) checkPolicy(name, p, raw, doc, push);
}

/** protocol.md s6 refusal rules, plus the liveness pair of s2. */
function checkPolicy(
  name: string,
  p: Policy,
  raw: RawGateway,
  doc: LoadedYaml,
  push: (segs: PathSegments, message: string) => void,
): void {
  const rp = Object.hasOwn(raw.policies, name) ? raw.policies[name] : undefined;
  const base: PathSegments = ['policies', name];
  const text = (key: string, fallback: number): string => {
    const v = rp ? (rp as unknown as Record<string, unknown>)[key] : undefined;
    return v === undefined ? String(fallback) : String(v);
  };
  /** The first of `keys` written in the file, so the message lands on a line the operator wrote. */
  const blame = (...keys: string[]): PathSegments => {
    for (const k of keys) if (doc.written([...base, k])) return [...base, k];
    return [...base, keys[0]];
  };

  const need = p.rekeyAfterTimeMs + p.rekeyJitterMs + 2 * p.handshakeTimeoutMs;
  if (!(need < p.hardLimitTimeMs)) {
    push(
      blame('hard_limit_time', 'rekey_after_time', 'rekey_jitter', 'handshake_timeout'),
      `rekey_after_time (${text('rekey_after_time', p.rekeyAfterTimeMs)}) + rekey_jitter (${text('rekey_jitter', p.rekeyJitterMs)}) + 2 x handshake_timeout (${text('handshake_timeout', p.handshakeTimeoutMs)}) = ${formatMs(need)} must be less than hard_limit_time (${text('hard_limit_time', p.hardLimitTimeMs)}) (protocol.md s6)`,
    );
  }
  if (!(p.graceMs < p.hardLimitTimeMs)) {
    push(
      blame('grace', 'hard_limit_time'),
      `grace (${text('grace', p.graceMs)}) must be less than hard_limit_time (${text('hard_limit_time', p.hardLimitTimeMs)}) (protocol.md s6)`,
    );
  }
  if (!(p.holdMs <= p.carrierHoldMs)) {
    push(
      blame('hold', 'carrier_hold'),
      `hold (${text('hold', p.holdMs)}) must not exceed carrier_hold (${text('carrier_hold', p.carrierHoldMs)}) (protocol.md s6)`,
    );
  }
  if (!(p.rekeyAfterRecords < p.hardLimitRecords)) {
    push(
      blame('rekey_after_records', 'hard_limit_records'),
      `rekey_after_records (${p.rekeyAfterRecords}) must be less than hard_limit_records (${p.hardLimitRecords}) so a rekey can happen before sealing stops`,
    );
  }
  if (!(p.retryBackoffMinMs <= p.retryBackoffMaxMs)) {
    push(
      blame('retry_backoff_min', 'retry_backoff_max'),
      `retry_backoff_min (${text('retry_backoff_min', p.retryBackoffMinMs)}) must not exceed retry_backoff_max (${text('retry_backoff_max', p.retryBackoffMaxMs)})`,
    );
  }
  if (!(p.keepaliveMs < p.deadAfterMs)) {
    push(
      blame('keepalive', 'dead_after'),
      `keepalive (${text('keepalive', p.keepaliveMs)}) must be less than dead_after (${text('dead_after', p.deadAfterMs)}), or a quiet but live peer is declared dead (protocol.md s2)`,
    );
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function listenersCollide(a: HostPort, b: HostPort): boolean {
  if (a.port === 0 || b.port === 0 || a.port !== b.port) return false;
  const ha = a.host.toLowerCase();
  const hb = b.host.toLowerCase();
  if (ha === hb) return true;
  // `::` is dual-stack in Node (ipv6Only false): it takes the port on every address.
  if (ha === '::' || hb === '::') return true;
  if (ha === '0.0.0.0') return !hb.includes(':');
  if (hb === '0.0.0.0') return !ha.includes(':');
  return false;
}

