/**
 * `qkdgw run --config FILE`: one gateway in the foreground, JSON log lines on stdout.
 * SIGINT/SIGTERM stop it cleanly (carriers reset, keys zeroized, exit 0).
 *
 * Under systemd (Type=notify, systemd/qkdgw.service): READY=1 once the config is loaded,
 * the crypto self-test passed and every listener is open; RELOADING=1 ... READY=1 around
 * a SIGHUP reload; STOPPING=1 when a stop begins; STATUS= kept current; WATCHDOG=1 from
 * the main loop while it and the gateway are healthy (src/daemon/systemd.ts, watchdog.ts).
 */
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from '../config/gateway.js';
import { Gateway } from '../daemon/gateway.js';
import { makeLogger } from '../daemon/logger.js';
import { gatewayHealth, gatewayStatusLine, SystemdNotifier } from '../daemon/systemd.js';
import { readWatchdogEnv, Watchdog } from '../daemon/watchdog.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const RUN_USAGE = 'usage: qkdgw run --config FILE';

/** How often STATUS= is recomputed (ms); it is sent only when the line changed. */
export const STATUS_REFRESH_MS = 5_000;

/**
 * Resolves once every configured peer has a current epoch, or after `ms` (wall time), or
 * as soon as `cancelled()` turns true; with the peers still without one and the time waited.
 * Under systemd this holds READY=1 back (BC-38) so that units ordered after qkdgw start
 * with the tunnels up; the bound keeps a peer that is down from failing the start.
 */
export function waitFirstEpochs(gw: Gateway, ms: number, cancelled: () => boolean): Promise<{ missing: string[]; waitedMs: number }> {
  const t0 = Date.now();
  const missing = (): string[] => [...gw.peers].filter(([, rt]) => rt.session.slots.current === null).map(([id]) => id);
  return new Promise((resolve) => {
    const check = (): boolean => {
      const m = missing();
      const waited = Date.now() - t0;
      if (m.length === 0 || waited >= ms || cancelled()) {
        resolve({ missing: m, waitedMs: waited });
        return true;
      }
      return false;
    };
    if (check()) return;
    // Epochs appear from socket events; a 100 ms look is cheap and needs no hook in every peer.
    const timer = setInterval(() => {
      if (check()) clearInterval(timer);
    }, 100);
  });
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) {
    process.stderr.write(`${RUN_USAGE}\n`);
    return Exit.USAGE;
  }
  let gw: Gateway;
  let log: Logger | undefined;
  let sd: SystemdNotifier | undefined;
  // Signals that arrive during start-up must not kill the process half-built: remember them.
  // A stop request wins over anything else; a SIGHUP is kept and applied once started
  // (the file may have changed after it was read).
  let early: string | null = null;
  let earlyHup = false;
  const onEarly = (sig: string) => (): void => {
    if (sig === 'SIGHUP') earlyHup = true;
    else early ??= sig;
  };
  const earlyHandlers = { SIGINT: onEarly('SIGINT'), SIGTERM: onEarly('SIGTERM'), SIGHUP: onEarly('SIGHUP') };
  for (const [sig, h] of Object.entries(earlyHandlers)) process.on(sig, h);
  const dropEarly = (): void => {
    for (const [sig, h] of Object.entries(earlyHandlers)) process.off(sig, h);
  };
  try {
    const cfg = loadGatewayConfig(values.config, { credentialsDir: process.env.CREDENTIALS_DIRECTORY });
    log = makeLogger({ level: cfg.log.level, name: `qkdgw:${cfg.identity}` });
    sd = new SystemdNotifier({ env: process.env, logger: log });
    gw = await Gateway.start(cfg, { logger: log });
  } catch (e) {
    dropEarly();
    const d = describeStartError(e);
    process.stderr.write(`qkdgw: ${d.message}\n`);
    log?.fatal({ event: 'start_failed', err: d.message });
    // `systemctl status` keeps the last STATUS= after the process exits.
    (sd ?? new SystemdNotifier({ env: process.env, logger: log ?? silentLogger })).status(`start failed: ${d.message}`);
    return d.exit;
  }
  const notifier = sd;
  const logger = log;
  return await new Promise<number>((resolve) => {
    let stopping = false;
    let watchdog: Watchdog | null = null;
    let statusTimer: NodeJS.Timeout | null = null;
    let lastStatus = '';
    const statusNow = (): string => (lastStatus = gatewayStatusLine(gw));
    const stop = (sig: string): void => {
      if (stopping) {
        // The operator asked twice: stop waiting for flows (they are reset), then exit as usual.
        logger.warn({ event: 'drain_cut', signal: sig }, `${sig} again: not waiting for open flows any longer`);
        gw.endDrain();
        return;
      }
      stopping = true;
      watchdog?.stop();
      if (statusTimer) clearInterval(statusTimer);
      notifier.stopping();
      logger.info({ event: 'stopping', signal: sig, drain_timeout_ms: gw.cfg.shutdown.drainTimeoutMs });
      gw.stop({ drainMs: gw.cfg.shutdown.drainTimeoutMs }).then(
        () => {
          logger.info({ event: 'stopped' });
          resolve(Exit.OK);
        },
        (e: unknown) => {
          logger.error({ event: 'stop_failed', err: String(e) });
          resolve(Exit.FAILURE);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
    dropEarly();
    const startServices = (waited: { missing: string[]; waitedMs: number }): void => {
      if (stopping) return;
      // Config loaded, self-test passed, listeners open, first epochs in place or waited for (BC-38).
      const line = statusNow();
      notifier.ready(waited.missing.length ? `${line}; no first epoch yet with ${waited.missing.join(', ')} after ${Math.round(waited.waitedMs / 1000)} s` : line);
      // Only under systemd does "ready" mean something beyond gateway_started (first epochs waited for).
      if (notifier.enabled) logger.info({ event: 'ready', waited_ms: waited.waitedMs, peers_without_epoch: waited.missing }, waited.missing.length ? 'ready (some peers have no epoch yet)' : 'ready');
      if (notifier.enabled) {
        statusTimer = setInterval(() => {
          const before = lastStatus;
          if (statusNow() !== before) notifier.status(lastStatus);
        }, STATUS_REFRESH_MS);
        statusTimer.unref();
      }
      const wd = readWatchdogEnv(process.env);
      if (wd.enabled && notifier.enabled) {
        watchdog = new Watchdog({ usec: wd.usec, feed: () => notifier.watchdog(), health: () => gatewayHealth(gw), logger });
        watchdog.start();
        logger.info({ event: 'watchdog_started', interval_us: wd.usec, period_ms: watchdog.periodMs });
      } else if (wd.enabled) {
        logger.warn({ event: 'watchdog_not_fed', why: 'no sd_notify (see sd_notify_unavailable)' }, 'WATCHDOG_USEC is set but no notification can be sent: systemd will kill the service when the interval runs out');
      } else if (wd.invalid) {
        logger.error({ event: 'watchdog_env_invalid', why: wd.why }, `the systemd watchdog cannot be fed: ${wd.why}`);
      }
    };
    if (notifier.enabled) {
      // The shipped unit's TimeoutStartSec=60s / TimeoutStopSec=30s: past them systemd kills the
      // process mid-wait (no zeroization on a stop). A drop-in may raise them; say so once.
      if (gw.cfg.shutdown.drainTimeoutMs >= 30_000) logger.warn({ event: 'drain_timeout_long', drain_timeout_ms: gw.cfg.shutdown.drainTimeoutMs }, 'shutdown.drain_timeout is not below the shipped unit\'s TimeoutStopSec=30s: raise TimeoutStopSec in a drop-in, or systemd kills the gateway mid-drain before it zeroizes its keys');
      if (gw.cfg.startup.readyWaitMs >= 60_000) logger.warn({ event: 'ready_wait_long', ready_wait_ms: gw.cfg.startup.readyWaitMs }, 'startup.ready_wait is not below the shipped unit\'s TimeoutStartSec=60s: raise TimeoutStartSec in a drop-in, or systemd fails the start while the gateway waits for its peers');
    }
    let started: Promise<void> = Promise.resolve();
    if (early !== null) stop(early);
    else if (notifier.enabled) started = waitFirstEpochs(gw, gw.cfg.startup.readyWaitMs, () => stopping).then(startServices);
    else startServices({ missing: [], waitedMs: 0 });
    // SIGHUP: re-read the file; a bad file or an unsupported change keeps the old state (BC-07, BC-35c).
    // A reload waits for READY=1: RELOADING=1 before it would confuse systemd.
    let reloading: Promise<void> = started;
    const onHup = (): void => {
      if (stopping) {
        logger.warn({ event: 'reload_ignored', why: 'stopping' }, 'SIGHUP ignored: the gateway is stopping');
        return;
      }
      reloading = reloading.then(async () => {
        if (stopping) return;
        logger.info({ event: 'reload_requested', file: values.config });
        notifier.reloading();
        let rejected: string | null = null;
        try {
          const plan = await gw.reload(loadGatewayConfig(values.config!, { credentialsDir: process.env.CREDENTIALS_DIRECTORY }));
          gw.noteReload(true, plan.changed.length ? `applied: ${plan.changed.join(', ')}` : 'applied (files only)');
        } catch (e) {
          rejected = describeStartError(e).message;
          gw.noteReload(false, rejected);
          logger.error({ event: 'reload_failed', err: rejected }, 'reload rejected: the running configuration is unchanged');
        }
        // Never READY=1 after STOPPING=1: systemd would take the stopping service for running.
        if (stopping) return;
        const line = statusNow();
        notifier.ready(rejected === null ? line : `reload rejected, running configuration unchanged: ${rejected}; ${line}`);
      });
    };
    process.on('SIGHUP', onHup);
    if (earlyHup && !stopping) {
      logger.info({ event: 'reload_queued', why: 'SIGHUP arrived during start-up' });
      onHup();
    }
  });
}
