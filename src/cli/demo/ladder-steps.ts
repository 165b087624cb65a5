/**
 * The KME outage scenario's narrator: it reads the gateways' JSON log lines as they
 * arrive and prints each step of the degradation ladder (protocol.md s6) once it is
 * observed, e.g. `  [required] t+9.0s epoch 3 past its hard limit: traffic held (not reset)`,
 * and keeps what it saw for the scenario's checks. Times are the log lines' own `time`
 * fields, in seconds from `t0` (the moment the demo emptied the KME).
 *
 * Events read (gw-a, the initiator, unless noted): `kme_status_checked`, `key_forecast_low`,
 * `key_pool_empty` (src/kms/key-pool.ts); `handshake_failed`, `qkd_step_down`,
 * `qkd_degraded`, `epoch_switch`, `epoch_hard_limit`, `qkd_recovery_ready`,
 * `qkd_recovery_lost`, `qkd_restored` (src/tunnel/core/session.ts); and from either
 * gateway the events that mean a connection was cut or a policy broke ({@link BAD_EVENTS}).
 */
import type { LogLine } from './children.js';

export type OutagePolicy = 'required' | 'preferred';

/** Events that must not happen while an outage is ridden through: each one fails the phase. */
export const BAD_EVENTS = new Set([
  'carrier_aborted',
  'carrier_reset',
  'client_reset_on_hold',
  'peer_state_lost',
  'control_dead',
  'degraded_refused',
  'degraded_refused_by_peer',
  'session_internal_error',
]);

/** Milliseconds since the epoch of a log line: its `time` field, else now. */
export function lineTime(l: LogLine): number {
  const t = typeof l.time === 'string' ? Date.parse(l.time) : typeof l.time === 'number' ? l.time : NaN;
  return Number.isFinite(t) ? t : Date.now();
}

/** The first key_ID of an `epoch_switch`/`qkd_restored` line, or null (degraded: none). */
export function keyIdOf(l: LogLine): string | null {
  const v = l.key_IDs;
  return Array.isArray(v) && v.length > 0 ? String(v[0]) : null;
}

const short = (s: string, n = 110): string => (s.length > n ? `${s.slice(0, n - 3)}...` : s);

export class LadderWatch {
  readonly policy: OutagePolicy;
  readonly t0: number;
  /** The epoch current at t0: its own switch line is history, not a step. */
  readonly fromEpoch: number;
  readonly #print: (s: string) => void;
  readonly #recoveryChecks: number;
  /** Date.now() when the demo gave the KME its keys back; null before. */
  resumedAt: number | null = null;

  /** What was seen after t0 on gw-a. */
  readonly failures: LogLine[] = [];
  hardLimit: LogLine | null = null;
  stepDown: LogLine | null = null;
  degradedAlarm: LogLine | null = null;
  /** Degraded epochs installed (gw-a `epoch_switch` with degraded true). */
  readonly degradedEpochs: LogLine[] = [];
  recoveryReady: LogLine | null = null;
  restored: LogLine | null = null;
  /** The first QKD `epoch_switch` after the KME came back. */
  qkdAfterResume: LogLine | null = null;
  /** BAD_EVENTS lines from either gateway, with the gateway's name. */
  readonly bad: Array<{ who: string; line: LogLine }> = [];
  #emptyStatusShown = false;
  #goodStatusShown = 0;

  constructor(policy: OutagePolicy, t0: number, fromEpoch: number, print: (s: string) => void, recoveryChecks: number) {
    this.policy = policy;
    this.t0 = t0;
    this.fromEpoch = fromEpoch;
    this.#print = print;
    this.#recoveryChecks = recoveryChecks;
  }

  /** `t+4.1s` for a time in ms since the epoch. */
  t(at: number): string {
    const s = (at - this.t0) / 1000;
    return `t${s < 0 ? '-' : '+'}${Math.abs(s).toFixed(1)}s`;
  }

  /** Prints a step of the demo's own (an admin action, a check) at `at` (default now). */
  note(text: string, at = Date.now()): void {
    this.#print(`  [${this.policy}] ${this.t(at)} ${text}`);
  }

  #step(l: LogLine, text: string): void {
    this.note(text, lineTime(l));
  }

  /** Feeds one log line of gateway `who` (`gw-a` or `gw-b`). Lines from before t0 are ignored. */
  observe(who: string, l: LogLine): void {
    const ev = l.event;
    if (typeof ev !== 'string') return;
    if (BAD_EVENTS.has(ev)) {
      this.bad.push({ who, line: l });
      this.#step(l, `UNEXPECTED ${who} ${ev}: ${short(JSON.stringify(l), 200)}`);
      return;
    }
    if (who !== 'gw-a' || lineTime(l) < this.t0) return;
    switch (ev) {
      case 'kme_status_checked':
        return this.#status(l);
      case 'key_forecast_low':
        return this.#step(l, `key_forecast_low: KME store forecast to run dry in ${l.forecastKmeDrySec ?? '?'} s (stored_key_count ${l.kmeStoredKeyCount ?? '?'})`);
      case 'key_pool_empty':
        return this.#step(l, `key_pool_empty: no QKD key fetched ahead is left`);
      case 'handshake_failed':
        this.failures.push(l);
        if (this.failures.length === 1) this.#step(l, `KME empty: enc_keys failing (handshake_failed epoch ${l.epoch}: ${short(String(l.reason ?? ''))})`);
        return;
      case 'qkd_step_down':
        this.stepDown = l;
        return this.#step(l, `qkd_step_down: ${l.reason}; the next INIT is degraded, at once`);
      case 'qkd_degraded':
        this.degradedAlarm = l;
        return this.#step(l, `qkd_degraded: alarm, epoch ${l.epoch} and its successors protected by ML-KEM-768 + X25519 only (rekey every ${Number(l.lifetime_ms) / 1000} s)`);
      case 'epoch_switch':
        return this.#epoch(l);
      case 'epoch_hard_limit':
        this.hardLimit ??= l;
        return this.#step(l, `epoch ${l.epoch} past its hard limit: traffic held (not reset); ${this.failures.length} handshake(s) failed so far`);
      case 'qkd_recovery_ready':
        this.recoveryReady = l;
        return this.#step(l, `qkd_recovery_ready: ${l.good_checks} good status checks in a row (recovery_checks ${this.#recoveryChecks}); the next epoch uses QKD`);
      case 'qkd_recovery_lost':
        return this.#step(l, `qkd_recovery_lost: stored_key_count ${l.stored_key_count}`);
      case 'qkd_restored':
        this.restored = l;
        return this.#step(l, `qkd_restored: QKD epoch ${l.epoch}, key_ID ${keyIdOf(l) ?? '(none)'}`);
    }
  }

  #status(l: LogLine): void {
    const stored = l.kmeStoredKeyCount;
    const good = typeof stored === 'number' && stored >= 1;
    if (!good && !this.#emptyStatusShown) {
      this.#emptyStatusShown = true;
      this.#step(l, `kme_status_checked: stored_key_count ${stored === null ? 'unknown (check failed)' : stored}`);
    } else if (good && this.resumedAt !== null) {
      // Under `preferred` every good check counts towards recovery_checks: show each one.
      const more = this.policy === 'preferred' ? !this.recoveryReady && !this.restored && this.#goodStatusShown < this.#recoveryChecks : this.#goodStatusShown === 0;
      if (!more) return;
      this.#goodStatusShown++;
      const count = this.policy === 'preferred' ? `, good check ${l.consecutiveGoodChecks}/${this.#recoveryChecks}` : '';
      this.#step(l, `kme_status_checked: stored_key_count ${stored}${count}`);
    }
  }

  /** `handshakes for epochs 3-7 failed meanwhile`: each attempt uses up an epoch number (protocol.md s3.3). */
  #failedSpan(): string {
    const n = this.failures.map((f) => Number(f.epoch)).filter(Number.isFinite);
    if (n.length === 0) return 'no handshake failed';
    const lo = Math.min(...n);
    const hi = Math.max(...n);
    return `${n.length} handshake(s) for epoch${lo === hi ? ` ${lo}` : `s ${lo}-${hi}`} failed meanwhile`;
  }

  #epoch(l: LogLine): void {
    if (Number(l.epoch) <= this.fromEpoch) return;
    if (l.degraded === true) {
      this.degradedEpochs.push(l);
      return this.#step(l, `degraded epoch ${l.epoch}: ML-KEM-768 + X25519 only, no key_ID`);
    }
    const id = keyIdOf(l) ?? '(none)';
    if (this.resumedAt !== null && lineTime(l) >= this.resumedAt && !this.qkdAfterResume) {
      this.qkdAfterResume = l;
      if (this.policy === 'preferred') return; // qkd_restored tells it
      const held = this.hardLimit ? `after a hold of ${((lineTime(l) - lineTime(this.hardLimit)) / 1000).toFixed(1)} s` : 'with no hold';
      return this.#step(l, `QKD epoch ${l.epoch}, key_ID ${id}: traffic flows again ${held} (${this.#failedSpan()})`);
    }
    if (this.resumedAt === null) this.#step(l, `QKD epoch ${l.epoch}, key_ID ${id} (a key fetched before the outage)`);
  }
}
