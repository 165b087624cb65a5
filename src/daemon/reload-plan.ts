/**
 * What a reload changes (SIGHUP, issue 5 point 2): a pure comparison of the configuration
 * in force with a new one. The gateway builds everything the plan calls new before it
 * swaps anything, so a plan never half-applies.
 *
 * A peer is kept (its control connection, epochs and flows untouched: no flow reset, no
 * extra epoch) when its own entry (addresses, pin) and its role are unchanged; if its
 * resolved policy changed it is retuned in place (the new policy applies to what comes
 * next: the next handshake, epochs derived from now on, new flows). A peer whose entry
 * changed is rebuilt (its flows are reset and a first epoch is negotiated afresh, as for a
 * new peer); a peer that disappeared is torn down.
 */
import type { GatewayConfig, PeerConfig, Policy } from '../config/gateway.js';
import type { HostPort } from '../config/units.js';
import { roleOf } from '../tunnel/core/session.js';

/** Sections that only a restart can change, and why (shown to the operator). */
const RESTART_ONLY: Record<string, string> = {
  identity: 'our SAE ID names every epoch and certificate',
  crypto: 'the AEAD backend is chosen and self-tested once per process',
};

export interface ReloadPlan {
  /** Sections that changed but need a restart (the reload is refused as a whole). */
  blocked: Array<{ section: string; why: string }>;
  /** Every section whose value changed (for the log line). */
  changed: string[];
  /** `kept`: untouched; `retuned`: kept, with its new policy applied in place. */
  peers: { kept: string[]; retuned: string[]; added: string[]; rebuilt: string[]; removed: string[] };
  services: {
    /** Same name and listen address: the listener stays; its peer and timers are updated. */
    kept: string[];
    /** New name, or a listen address that changed: a new listener is bound first. */
    bound: string[];
    /** Names gone (or rebound elsewhere): the old listener closes and its flows are reset. */
    closed: string[];
  };
  /** A new listener must be bound for these (address changed, added); `false` = keep or none. */
  rebind: { control: boolean; data: boolean; metrics: boolean; admin: boolean };
  /** The KME client is rebuilt (kme section or its files changed). */
  kme: boolean;
  /** The KME URL changed: keys held ahead came from another KME and are zeroized. */
  kmeMoved: boolean;
  /** The audit trail file changed (opened anew). */
  audit: boolean;
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const sameAddr = (a: HostPort | undefined, b: HostPort | undefined): boolean => same(a ?? null, b ?? null);

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
    startup: c.startup,
    shutdown: c.shutdown,
    metrics: c.metrics,
    admin: c.admin,
    audit: c.audit,
  };
}

/** Names of the sections whose value differs (file contents are compared by the reload itself). */
export function changedSections(a: GatewayConfig, b: GatewayConfig): string[] {
  const sa = sections(a);
  const sb = sections(b);
  return Object.keys(sa).filter((k) => !same(sa[k], sb[k]));
}

/** A peer's entry (without the policy's name) and role: what decides whether it can be kept. */
function peerShape(cfg: GatewayConfig, p: PeerConfig): { peer: Omit<PeerConfig, 'policy'>; role: string } {
  const { policy: _name, ...entry } = p;
  return { peer: entry, role: roleOf(cfg.identity, p.identity) };
}

const policyOf = (cfg: GatewayConfig, p: PeerConfig): Policy => cfg.policies[p.policy];

/**
 * Compares `old` and `next`. `kmeFilesChanged` says whether the KME CA/certificate/key
 * files changed content under the same paths (certificate rotation, BC-07).
 */
export function planReload(old: GatewayConfig, next: GatewayConfig, kmeFilesChanged: boolean): ReloadPlan {
  const changed = changedSections(old, next);
  const blocked = changed.filter((s) => s in RESTART_ONLY).map((section) => ({ section, why: RESTART_ONLY[section] }));

  const oldPeers = new Map(old.peers.map((p) => [p.identity, p] as const));
  const peers: ReloadPlan['peers'] = { kept: [], retuned: [], added: [], rebuilt: [], removed: [] };
  for (const p of next.peers) {
    const o = oldPeers.get(p.identity);
    if (!o) peers.added.push(p.identity);
    else if (!same(peerShape(old, o), peerShape(next, p))) peers.rebuilt.push(p.identity);
    else if (same(policyOf(old, o), policyOf(next, p))) peers.kept.push(p.identity);
    else peers.retuned.push(p.identity);
  }
  const nextIds = new Set(next.peers.map((p) => p.identity));
  for (const p of old.peers) if (!nextIds.has(p.identity)) peers.removed.push(p.identity);

  const oldServices = new Map(old.services.map((s) => [s.name, s] as const));
  const services: ReloadPlan['services'] = { kept: [], bound: [], closed: [] };
  for (const s of next.services) {
    const o = oldServices.get(s.name);
    if (o && sameAddr(o.listen, s.listen)) services.kept.push(s.name);
    else {
      services.bound.push(s.name);
      if (o) services.closed.push(s.name);
    }
  }
  const nextServices = new Set(next.services.map((s) => s.name));
  for (const s of old.services) if (!nextServices.has(s.name)) services.closed.push(s.name);

  return {
    blocked,
    changed,
    peers,
    services,
    rebind: {
      control: !sameAddr(old.control.listen, next.control.listen),
      data: !sameAddr(old.data.listen, next.data.listen),
      metrics: !sameAddr(old.metrics?.listen, next.metrics?.listen),
      admin: (old.admin?.socket ?? null) !== (next.admin?.socket ?? null),
    },
    kme: kmeFilesChanged || !same(old.kme, next.kme),
    kmeMoved: old.kme.url !== next.kme.url,
    audit: (old.audit?.file ?? null) !== (next.audit?.file ?? null),
  };
}
