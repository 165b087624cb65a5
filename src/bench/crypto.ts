/**
 * `npm run bench:crypto` (node dist/bench/crypto.js): AEAD SEAL throughput of every
 * backend (native batch 1 and 16, node:crypto, noble, XChaCha20-Poly1305 for reference)
 * at 64, 512, 1400, 8192 and 65536 bytes, against `openssl speed` measured in the same
 * run (issue 3). Ends with `crypto: native/openssl@1400 = X.XX, native/node@1400 = Y.YY`
 * or `crypto: native unavailable (<reason>)` (exit 0 either way, and with openssl
 * missing), `crypto: FAILED <reason>` on stderr (exit 1), the usage on a bad command line
 * or a bad QKDGW_NATIVE (exit 64), or the usage on stdout for --help / -h (exit 0).
 *
 * The addon is the daemon's: QKDGW_NATIVE=0 measures without it, QKDGW_NATIVE=1 fails the
 * run when it is unavailable, QKDGW_NATIVE_ADDON picks another build (src/daemon/crypto-backend.ts).
 *
 * A tool entry point like src/bench/tunnel.ts: the only file of the bench:crypto that
 * reads process.argv, process.env or exits.
 */
import { nativeFromEnv, nativeSwitch } from '../daemon/crypto-backend.js';
import type { NativeStatus } from '../crypto/native/loader.js';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { CRYPTO_USAGE, parseCryptoBenchArgs, UsageError, type CryptoBenchOptions } from './crypto-options.js';
import { runCryptoBench } from './crypto-run.js';

/**
 * Which knob chose the addon, for the header line: the override as typed (the loader
 * prints the resolved path), or null for the default build path or QKDGW_NATIVE=0 (whose
 * reason already names the variable).
 */
function nativeFrom(env: NodeJS.ProcessEnv): string | null {
  if (env.QKDGW_NATIVE === '0' || !env.QKDGW_NATIVE_ADDON) return null;
  return `QKDGW_NATIVE_ADDON=${env.QKDGW_NATIVE_ADDON}`;
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let o: CryptoBenchOptions;
  let native: NativeStatus;
  try {
    o = parseCryptoBenchArgs(argv);
    if (o.help) {
      process.stdout.write(`${CRYPTO_USAGE}\n`);
      return 0;
    }
    native = nativeFromEnv(env);
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof QkdgwError && e.code === ErrorCodes.CRYPTO_BACKEND)) throw e;
    process.stderr.write(`bench:crypto: ${e.message}\n${CRYPTO_USAGE}\n`);
    return 64;
  }
  if (nativeSwitch(env) === 'on' && !native.available) {
    process.stderr.write(`crypto: FAILED QKDGW_NATIVE=1 but the native addon is unavailable: ${native.reason}\n`);
    return 1;
  }
  try {
    await runCryptoBench(o, { native, nativeFrom: nativeFrom(env) ?? undefined });
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`bench:crypto: ${e.message}\n${CRYPTO_USAGE}\n`);
      return 64;
    }
    process.stderr.write(`crypto: FAILED ${(e as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`crypto: FAILED ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
