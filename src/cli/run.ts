/**
 * `qkdgw run --config FILE`: one gateway in the foreground, JSON log lines on stdout.
 * SIGINT/SIGTERM stop it cleanly (carriers reset, keys zeroized, exit 0).
 */
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from '../config/gateway.js';
import { Gateway } from '../daemon/gateway.js';
import { makeLogger } from '../daemon/logger.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const RUN_USAGE = 'usage: qkdgw run --config FILE';

export async function runCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) {
    process.stderr.write(`${RUN_USAGE}\n`);
    return Exit.USAGE;
  }
  let gw: Gateway;
  let log;
  // Signals that arrive during start-up must not kill the process half-built: remember them.
  let early: string | null = null;
  const onEarly = (sig: string) => (): void => {
    early ??= sig;
  };
  const earlyHandlers = { SIGINT: onEarly('SIGINT'), SIGTERM: onEarly('SIGTERM'), SIGHUP: onEarly('SIGHUP') };
  for (const [sig, h] of Object.entries(earlyHandlers)) process.on(sig, h);
  const dropEarly = (): void => {
    for (const [sig, h] of Object.entries(earlyHandlers)) process.off(sig, h);
  };
  try {
    const cfg = loadGatewayConfig(values.config);
    log = makeLogger({ level: cfg.log.level, name: `qkdgw:${cfg.identity}` });
    gw = await Gateway.start(cfg, { logger: log });
  } catch (e) {
    dropEarly();
    const d = describeStartError(e);
    process.stderr.write(`qkdgw: ${d.message}\n`);
    log?.fatal({ event: 'start_failed', err: d.message });
    return d.exit;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'stopping', signal: sig });
      gw.stop().then(
        () => {
          log.info({ event: 'stopped' });
          resolve(Exit.OK);
        },
        (e: unknown) => {
          log.error({ event: 'stop_failed', err: String(e) });
          resolve(Exit.FAILURE);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    dropEarly();
    if (early === 'SIGINT' || early === 'SIGTERM') stop(early);
    // SIGHUP: re-read the file; a bad file or an unsupported change keeps the old state (BC-07, BC-35c).
    let reloading: Promise<void> = Promise.resolve();
    process.on('SIGHUP', () => {
      reloading = reloading.then(async () => {
        log.info({ event: 'reload_requested', file: values.config });
        try {
          await gw.reload(loadGatewayConfig(values.config!));
        } catch (e) {
          log.error({ event: 'reload_failed', err: describeStartError(e).message }, 'reload rejected: the running configuration is unchanged');
        }
      });
    });
  });
}
