/**
 * `qkdgw kme-sim --config FILE`: the bundled KME simulator pair (ETSI GS QKD 014 over
 * mTLS), each delivery logged as a `kme_delivery` JSON line (key_IDs, never bytes).
 */
import { parseArgs } from 'node:util';
import { loadSimulatorConfig, readSimulatorPems } from '../config/simulator.js';
import { startKmeSimulator } from '../kms/simulator/index.js';
import { makeLogger } from '../daemon/logger.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const KME_SIM_USAGE = 'usage: qkdgw kme-sim --config FILE';

export async function kmeSimCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, strict: true });
  if (!values.config) {
    process.stderr.write(`${KME_SIM_USAGE}\n`);
    return Exit.USAGE;
  }
  let log;
  let sim;
  try {
    const cfg = loadSimulatorConfig(values.config);
    log = makeLogger({ level: cfg.log.level, name: 'qkdgw:kme-sim' });
    sim = await startKmeSimulator({ ...readSimulatorPems(cfg), logger: log });
  } catch (e) {
    const d = describeStartError(e);
    process.stderr.write(`qkdgw kme-sim: ${d.message}\n`);
    return d.exit;
  }
  log.info({ event: 'kme_sim_started', kmes: sim.kmes.map((k) => ({ kme: k.kmeId, url: k.url })) }, 'KME simulator started');
  return await new Promise<number>((resolve) => {
    const stop = (sig: string) => (): void => {
      log.info({ event: 'kme_sim_stopping', signal: sig });
      sim.close().then(() => resolve(Exit.OK), () => resolve(Exit.FAILURE));
    };
    process.once('SIGINT', stop('SIGINT'));
    process.once('SIGTERM', stop('SIGTERM'));
    process.on('SIGHUP', () => undefined);
  });
}
