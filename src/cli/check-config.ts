/**
 * `qkdgw check-config [--kme-sim] [--no-file-checks] FILE`: validates a gateway (or
 * simulator) file and prints every error as FILE:LINE:COL: PATH: MESSAGE (exit 78), or the
 * normalised config with defaults filled in, durations in ms, sizes in bytes, paths
 * absolute (exit 0). `--no-file-checks` skips the checks of the files the config names
 * (existence, modes, certificates): for templates checked before their PKI exists.
 */
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from '../config/gateway.js';
import { loadSimulatorConfig } from '../config/simulator.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const CHECK_USAGE = 'usage: qkdgw check-config [--kme-sim] [--no-file-checks] FILE';

export async function checkConfigCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { 'kme-sim': { type: 'boolean' }, 'no-file-checks': { type: 'boolean' } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) {
    process.stderr.write(`${CHECK_USAGE}\n`);
    return Exit.USAGE;
  }
  try {
    const checkFiles = !values['no-file-checks'];
    const cfg = values['kme-sim'] ? loadSimulatorConfig(positionals[0], { checkFiles }) : loadGatewayConfig(positionals[0], { checkFiles, credentialsDir: process.env.CREDENTIALS_DIRECTORY });
    process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
    return Exit.OK;
  } catch (e) {
    const d = describeStartError(e);
    process.stderr.write(`${d.message}\n`);
    return d.exit;
  }
}
