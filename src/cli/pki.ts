/**
 * `qkdgw pki init --out DIR --gateways ID,ID --kmes ID,ID [--force]`: the two CAs of
 * protocol.md s2 and every leaf the lab needs (private keys 0600).
 */
import { parseArgs } from 'node:util';
import { initPki } from '../pki/index.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';

export const PKI_USAGE = 'usage: qkdgw pki init --out DIR --gateways ID,ID --kmes ID,ID [--force]';

export async function pkiCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'init') {
    process.stderr.write(`${PKI_USAGE}\n`);
    return Exit.USAGE;
  }
  const { values } = parseArgs({ args: rest, options: { out: { type: 'string' }, gateways: { type: 'string' }, kmes: { type: 'string' }, force: { type: 'boolean' } }, strict: true });
  if (!values.out || !values.gateways || !values.kmes) {
    process.stderr.write(`${PKI_USAGE}\n`);
    return Exit.USAGE;
  }
  const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter(Boolean);
  try {
    const layout = await initPki({ outDir: values.out, gateways: list(values.gateways), kmes: list(values.kmes), force: values.force ?? false });
    process.stdout.write(`${JSON.stringify(layout, null, 2)}\n`);
    return Exit.OK;
  } catch (e) {
    const d = describeStartError(e);
    process.stderr.write(`qkdgw pki: ${d.message}\n`);
    return d.exit;
  }
}
