/**
 * `npm run bench:crypto` (node dist/bench/crypto.js): AEAD SEAL throughput of every
 * backend (native batch 1 and 16, node:crypto, noble, XChaCha20-Poly1305 for reference)
 * at 64, 512, 1400, 8192 and 65536 bytes, against `openssl speed` measured in the same
 * run (issue 3). Ends with `crypto: native/openssl@1400 = X.XX, native/node@1400 = Y.YY`
 * or `crypto: native unavailable (<reason>)` (exit 0 either way, and with openssl
 * missing), `crypto: FAILED <reason>` on stderr (exit 1), or the usage (exit 64).
 *
 * A tool entry point like src/bench/tunnel.ts: the only file of the bench:crypto that
 * reads process.argv or exits.
 */
import { CRYPTO_USAGE, parseCryptoBenchArgs, UsageError, type CryptoBenchOptions } from './crypto-options.js';
import { runCryptoBench } from './crypto-run.js';

async function main(argv: string[]): Promise<number> {
  let o: CryptoBenchOptions;
  try {
    o = parseCryptoBenchArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench:crypto: ${e.message}\n${CRYPTO_USAGE}\n`);
    return 64;
  }
  try {
    await runCryptoBench(o);
    return 0;
  } catch (e) {
    process.stderr.write(`crypto: FAILED ${(e as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`crypto: FAILED ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
