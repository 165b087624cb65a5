/**
 * `qkdgw audit verify FILE`: checks the hash chain of a key audit trail (issue 5,
 * src/daemon/audit-verify.ts). Exit 0 intact, 1 broken (the line and why), 64 usage,
 * 66 (EX_NOINPUT) the file is missing or unreadable.
 */
import { parseArgs } from 'node:util';
import { isQkdgwError } from '../errors.js';
import { verifyAuditFile } from '../daemon/audit-verify.js';
import { Exit } from './exit-codes.js';

export const AUDIT_USAGE = 'usage: qkdgw audit verify FILE';

/** sysexits.h EX_NOINPUT: an input file did not exist or was not readable. */
export const EX_NOINPUT = 66;

export async function auditCommand(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, options: {}, allowPositionals: true, strict: true });
  if (positionals.length !== 2 || positionals[0] !== 'verify') {
    process.stderr.write(`${AUDIT_USAGE}\n`);
    return Exit.USAGE;
  }
  const file = positionals[1];
  let r;
  try {
    r = verifyAuditFile(file);
  } catch (e) {
    if (!isQkdgwError(e)) throw e;
    process.stderr.write(`qkdgw audit: ${e.message}\n`);
    return EX_NOINPUT;
  }
  if (!r.ok) {
    const bad = r.firstBad!;
    process.stdout.write(`audit: BROKEN at line ${bad.line}: ${bad.reason}\n`);
    process.stdout.write(`audit: ${r.records} record(s) before it check; last good seq ${r.head.seq}\n`);
    return Exit.FAILURE;
  }
  const last = r.head.seq === 0 ? 'none (empty)' : `${r.head.hash.slice(0, 16)} (seq ${r.head.seq})`;
  process.stdout.write(`audit: OK ${r.lines} lines, chain intact, last ${last}\n`);
  if (r.torn.length) process.stdout.write(`audit: ${r.torn.length} torn line(s) closed by chain_resumed_after_torn_line: ${r.torn.join(', ')}\n`);
  return Exit.OK;
}
