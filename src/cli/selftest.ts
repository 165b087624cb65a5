/** `qkdgw selftest`: runs the crypto known-answer tests and prints each result. */
import { runSelfTest } from '../crypto/selftest.js';
import { Exit } from './exit-codes.js';

export async function selftestCommand(): Promise<number> {
  const r = runSelfTest();
  for (const x of r) process.stdout.write(`${x.ok ? 'ok  ' : 'FAIL'} ${x.name}\n`);
  process.stdout.write('AEAD backend: node (node:crypto AES-256-GCM; the native addon arrives with issue 3)\n');
  return r.every((x) => x.ok) ? Exit.OK : Exit.FAILURE;
}
