/**
 * `qkdgw check-config [--kme-sim] FILE`: validates a gateway (or simulator) file and prints
 * every error as FILE:LINE:COL: PATH: MESSAGE (exit 78), or the normalised config with
 * defaults filled in (exit 0).
 */
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from '../config/gateway.js';
import { loadSimulatorConfig } from '../config/simulator.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const CHECK_USAGE = 'usage: qkdgw check-config [--kme-sim] FILE';

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { 'kme-sim': { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) {
    process.stderr.write(`${CHECK_USAGE}\n`);
    return Exit.USAGE;
  }
  try {
    const cfg = values['kme-sim'] ? loadSimulatorConfig(positionals[0]) : loadGatewayConfig(positionals[0]);
    process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
    return Exit.OK;
  } catch (e) {
    const d = describeStartError(e);
    process.stderr.write(`${d.message}\n`);
    return d.exit;
  }
}
