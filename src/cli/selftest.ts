/**
 * `qkdgw selftest [--backend auto|native|node|noble] [--json]`: runs the crypto
 * known-answer tests, surveys every AES-256-GCM backend (available? passes?) and shows
 * which one the daemon would use under this environment (QKDGW_NATIVE, QKDGW_NATIVE_ADDON)
 * and why. Exit 0 when the general checks and the chosen backend pass, else 1.
 */
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, surveyBackends, type BackendChoice, type BackendRequest } from '../crypto/backend.js';
import { runSelfTest } from '../crypto/selftest.js';
import { chooseCryptoBackend, nativeFromEnv } from '../daemon/crypto-backend.js';
import { isQkdgwError } from '../errors.js';
import { Exit } from './exit-codes.js';

const REQUESTS: readonly string[] = ['auto', ...BACKEND_NAMES];

export async function selftestCommand(argv: string[] = []): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { backend: { type: 'string', default: 'auto' }, json: { type: 'boolean', default: false } }, strict: true });
  const requested = values.backend!;
  if (!REQUESTS.includes(requested)) {
    process.stderr.write(`qkdgw selftest: --backend must be one of ${REQUESTS.join(', ')}\n`);
    return Exit.USAGE;
  }
  let choice: BackendChoice | null = null;
  let refusal: string | null = null;
  try {
    choice = chooseCryptoBackend(requested as BackendRequest, process.env, '--backend');
  } catch (e) {
    if (!isQkdgwError(e)) throw e;
    refusal = `${e.code}: ${e.message}`;
  }
  const survey = surveyBackends(safeNative());
  const checks = choice ? runSelfTest(choice.backend) : runSelfTest().filter((c) => !c.name.startsWith('AES-256-GCM on '));
  const ok = choice !== null && checks.every((c) => c.ok);
  // As `qkdgw run`: a backend that the environment or --backend asks for and cannot have is a
  // configuration refusal (78); a failed known-answer test is a failure (1).
  const exit = ok ? Exit.OK : choice === null ? Exit.CONFIG : Exit.FAILURE;
  if (values.json) {
    const out = {
      ok,
      checks,
      backends: survey.map((r) => ({ name: r.name, available: r.available, detail: r.detail, selftest: r.selftestFailures === null ? null : r.selftestFailures.length === 0 ? 'ok' : r.selftestFailures })),
      chosen: choice ? { backend: choice.backend.name, requested: choice.requested, why: choice.why } : null,
      refusal,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return exit;
  }
  for (const x of checks) process.stdout.write(`${x.ok ? 'ok  ' : 'FAIL'} ${x.name}\n`);
  process.stdout.write('\nAES-256-GCM backends:\n');
  for (const r of survey) {
    const st = r.selftestFailures === null ? 'not tested' : r.selftestFailures.length === 0 ? 'self-test ok' : `self-test FAILED (${r.selftestFailures.join(', ')})`;
    process.stdout.write(`  ${r.name.padEnd(6)} ${(r.available ? 'available' : 'unavailable').padEnd(11)} ${st.padEnd(12)}  ${r.detail}\n`);
  }
  process.stdout.write(choice ? `\nbackend: ${choice.backend.name} (${choice.why})\n` : `\nbackend: none (${refusal})\n`);
  return exit;
}

/** The addon status for the survey; a bad QKDGW_NATIVE was already reported as the refusal. */
function safeNative(): ReturnType<typeof nativeFromEnv> {
  try {
    return nativeFromEnv(process.env);
  } catch (e) {
    return { available: false, reason: (e as Error).message, path: '' };
  }
}
