/**
 * The systemd watchdog (WatchdogSec=, sd_watchdog_enabled(3)): WATCHDOG=1 every half
 * interval, from a timer on the main event loop, and only while that loop and the
 * gateway are healthy. A loop blocked by a synchronous stall cannot run the timer, so
 * the pings stop and systemd restarts the service (field report BC-38 (c)): nothing here
 * runs in a worker thread or a helper process, which would keep pinging a hung daemon.
 */
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** What WATCHDOG_USEC / WATCHDOG_PID say: feed every `usec` microseconds at the latest, or why not. */
export type WatchdogSetting =
  | { enabled: true; usec: number }
  | { enabled: false; why: string; /** true when systemd asked for a watchdog we cannot honour */ invalid: boolean };

/**
 * Reads WATCHDOG_USEC (decimal microseconds, > 0) and WATCHDOG_PID like
 * sd_watchdog_enabled(3): a WATCHDOG_PID naming another process (the variables were
 * inherited) disables the watchdog for this one. Never throws: an unparsable value is
 * `{ enabled: false, invalid: true }` so the caller can log it (systemd will then kill
 * the service when the interval runs out).
 */
export function readWatchdogEnv(env: NodeJS.ProcessEnv, pid: number = process.pid): WatchdogSetting {
  const raw = env.WATCHDOG_USEC;
  if (raw === undefined || raw === '') return { enabled: false, why: 'WATCHDOG_USEC is unset', invalid: false };
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== '') {
    if (!/^[1-9][0-9]{0,9}$/.test(wpid)) return { enabled: false, why: `WATCHDOG_PID=${JSON.stringify(wpid)} is not a process id`, invalid: true };
    if (Number(wpid) !== pid) return { enabled: false, why: `WATCHDOG_PID=${wpid} is another process (this is ${pid})`, invalid: false };
  }
  // Digits only: `20s`, `1e6`, `-5` or `0x10` are not what systemd writes.
  const usec = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(usec) || usec <= 0) return { enabled: false, why: `WATCHDOG_USEC=${JSON.stringify(raw)} is not a positive number of microseconds`, invalid: true };
  return { enabled: true, usec };
}

export interface WatchdogOptions {
  /** The watchdog interval in microseconds (WATCHDOG_USEC); pings go every usec / 2. */
  usec: number;
  /**
   * Sends WATCHDOG=1 (the systemd notifier). `false` (not sent; the notifier logged why)
   * or an exception (logged here) counts as a failed ping, not a fed one.
   */
  feed: () => boolean | void;
  /**
   * Null when the gateway is healthy, else why not (one line). Called on the main loop at
   * each ping; an exception counts as unhealthy.
   */
  health: () => string | null;
  logger: Logger;
  /** Default systemClock (a real, unref'd setTimeout on the main loop). */
  clock?: Clock;
  /**
   * Largest lateness of the ping timer (ms) still counted as a healthy loop; default the
   * ping period (usec / 2000): a loop that could not run a timer within half the
   * watchdog interval is stalling.
   */
  maxLagMs?: number;
}

/** Counters for status and tests. */
export interface WatchdogStats {
  fed: number;
  /** Pings due and healthy whose send failed. */
  failed: number;
  withheld: number;
  /** Lateness of the last tick in ms (0 before the first). */
  lastLagMs: number;
  /** Why the last tick withheld its ping; null when it fed. */
  lastWithheld: string | null;
}

export class Watchdog {
  /** Ping period in ms: half the watchdog interval (sd_watchdog_enabled(3) advice). */
  readonly periodMs: number;
  readonly maxLagMs: number;
  readonly #o: WatchdogOptions;
  readonly #clock: Clock;
  #cancel: (() => void) | null = null;
  #dueAt = 0;
  #stats: WatchdogStats = { fed: 0, failed: 0, withheld: 0, lastLagMs: 0, lastWithheld: null };

  /** @throws RangeError when `usec` is not a positive safe integer. */
  constructor(o: WatchdogOptions) {
    if (!Number.isSafeInteger(o.usec) || o.usec <= 0) throw new RangeError(`watchdog interval must be a positive number of microseconds, got ${o.usec}`);
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.periodMs = Math.max(1, Math.floor(o.usec / 2000));
    this.maxLagMs = o.maxLagMs ?? this.periodMs;
  }

  get running(): boolean {
    return this.#cancel !== null;
  }

  get stats(): WatchdogStats {
    return { ...this.#stats };
  }

  /** Pings now (when healthy) and then every periodMs. Idempotent. */
  start(): void {
    if (this.#cancel) return;
    this.#dueAt = this.#clock.now();
    this.#tick();
  }

  /** No more pings (shutdown: systemd stops watching once STOPPING=1 arrives). */
  stop(): void {
    this.#cancel?.();
    this.#cancel = null;
  }

  #tick(): void {
    const now = this.#clock.now();
    const lag = Math.max(0, now - this.#dueAt);
    this.#stats.lastLagMs = lag;
    const why = lag > this.maxLagMs ? `event loop lag ${Math.round(lag)} ms > ${this.maxLagMs} ms` : this.#health();
    if (why === null) this.#feed();
    else this.#withhold(why, lag);
    this.#dueAt = now + this.periodMs;
    this.#cancel = this.#clock.setTimer(this.periodMs, () => this.#tick());
  }

  #health(): string | null {
    try {
      return this.#o.health();
    } catch (e) {
      return `health check threw: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  #feed(): void {
    let sent: boolean | void;
    try {
      sent = this.#o.feed();
    } catch (e) {
      this.#o.logger.warn({ event: 'watchdog_feed_failed', err: e instanceof Error ? e.message : String(e) });
      sent = false;
    }
    if (sent === false) {
      this.#stats.failed++;
      return;
    }
    if (this.#stats.lastWithheld !== null) this.#o.logger.info({ event: 'watchdog_resumed', after: this.#stats.lastWithheld }, 'watchdog pings resumed');
    this.#stats.lastWithheld = null;
    this.#stats.fed++;
  }

  #withhold(why: string, lag: number): void {
    // Logged on the change only: a wedged gateway must not flood the journal every period.
    if (this.#stats.lastWithheld === null) this.#o.logger.warn({ event: 'watchdog_withheld', why, lag_ms: Math.round(lag) }, `watchdog ping withheld: ${why}`);
    this.#stats.lastWithheld = why;
    this.#stats.withheld++;
  }
}
