/**
 * TEST-ONLY key ledger of the KME simulator: a record of the bytes of every key it
 * issued, so that a test can prove that no log line of any process carries one
 * (issue 5 point 6: "a test greps all log output ... for the hex and base64 of every
 * key the simulator issued"; see test/helpers/key-leak.ts).
 *
 * "Issued" means every key byte string that leaves the simulator in a Get key answer:
 * each key of `enc_keys` as generated, plus the other bytes the `mismatchNext` fault
 * gives the slave's copy. `dec_keys` returns the same bytes again, so it adds nothing.
 *
 * Two forms:
 * - in process: pass `keyLedger: new MemoryKeyLedger()` to `startKmeSimulator`;
 * - across processes: set {@link KEY_LEDGER_ENV} to an existing directory.
 *   `startKmeSimulator` (and nothing else: the gateway daemon never looks at it) then
 *   creates its own file `kme-sim-<pid>-<random>.keys` there (O_CREAT|O_EXCL, mode
 *   0600, never an existing file or symlink), writes one key per line in lowercase hex
 *   as it issues them, and logs a warning `key_ledger_enabled` naming the file. One
 *   file per simulator, so a demo that starts several simulators loses none.
 *
 * This writes key bytes to disk on purpose. Never set the variable outside tests.
 */
import { closeSync, constants, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import { ErrorCodes, QkdgwError } from '../../errors.js';
import type { Logger } from '../../util/logger.js';

/** The environment variable naming the ledger directory (test-only). */
export const KEY_LEDGER_ENV = 'QKDGW_TEST_KEY_LEDGER';

/** Ledger files in the directory: `kme-sim-<pid>-<16 hex>.keys`. */
const LEDGER_FILE = /^kme-sim-\d+-[0-9a-f]{16}\.keys$/;

/** Receives the bytes of each key the simulator issues. */
export interface KeyLedger {
  /** Records one key. `key` stays the caller's: the ledger copies or encodes it at once. */
  record(key: Uint8Array): void;
  /** Releases what the ledger holds open. Idempotent. */
  close(): void;
}

/** Keeps copies of the issued keys in memory (in-process tests). */
export class MemoryKeyLedger implements KeyLedger {
  readonly #keys: Buffer[] = [];

  record(key: Uint8Array): void {
    this.#keys.push(Buffer.from(key));
  }

  /** Keys recorded so far. */
  get count(): number {
    return this.#keys.length;
  }

  /** Copies of the keys recorded so far, oldest first; the caller should wipe them. */
  keys(): Buffer[] {
    return this.#keys.map((k) => Buffer.from(k));
  }

  /** Zeroizes and forgets every recorded key. */
  wipe(): void {
    for (const k of this.#keys) k.fill(0);
    this.#keys.length = 0;
  }

  close(): void {}
}

/** Appends each key as a lowercase hex line to a file of its own (cross-process tests). */
export class FileKeyLedger implements KeyLedger {
  /** The ledger file. */
  readonly path: string;
  #fd: number | null;
  #count = 0;

  /**
   * Creates `dir/kme-sim-<pid>-<random>.keys`, mode 0600, failing rather than reusing
   * or following anything already there.
   * @throws Error from open(2) (ENOENT, EACCES, EEXIST, ...)
   */
  constructor(dir: string) {
    this.path = join(dir, `kme-sim-${process.pid}-${randomBytes(8).toString('hex')}.keys`);
    this.#fd = openSync(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND, 0o600);
  }

  /** Keys written so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Writes one line synchronously, so a simulator killed afterwards still leaves it.
   * @throws QkdgwError INTERNAL after close(); Error from write(2)
   */
  record(key: Uint8Array): void {
    if (this.#fd === null) throw new QkdgwError(ErrorCodes.INTERNAL, 'key ledger used after close');
    writeSync(this.#fd, `${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}\n`);
    this.#count++;
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }
}

/**
 * The ledger asked for by {@link KEY_LEDGER_ENV} in `env`, or null when it is unset or
 * empty. Logs `key_ledger_enabled` (warn) with the file path when it opens one.
 * @throws QkdgwError KMS_CONFIG when the value is not an absolute path of an existing
 *   directory or the file cannot be created there (the simulator must not start and
 *   silently record nothing: the test relying on it would then prove nothing)
 */
export function keyLedgerFromEnv(env: NodeJS.ProcessEnv, logger: Logger): FileKeyLedger | null {
  const dir = env[KEY_LEDGER_ENV];
  if (dir === undefined || dir === '') return null;
  const bad = (why: string, cause?: unknown): never => {
    throw new QkdgwError(ErrorCodes.KMS_CONFIG, `${KEY_LEDGER_ENV}=${JSON.stringify(dir)}: ${why} (test-only setting; unset it outside tests)`, { env: KEY_LEDGER_ENV }, { cause });
  };
  if (!isAbsolute(dir)) bad('must be an absolute path of an existing directory');
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    bad('cannot read the directory', e);
  }
  if (!isDir) bad('is not a directory');
  let ledger: FileKeyLedger | null = null;
  try {
    ledger = new FileKeyLedger(dir);
  } catch (e) {
    bad(`cannot create a ledger file there: ${(e as Error).message}`, e);
  }
  logger.warn(
    { event: 'key_ledger_enabled', file: ledger!.path, env: KEY_LEDGER_ENV },
    `TEST ONLY: ${KEY_LEDGER_ENV} is set: every key this simulator issues is written in hex to the ledger file`,
  );
  return ledger;
}

/**
 * Every key in the ledger files of `dir` (all simulators that wrote there), oldest first
 * per file. Other files in the directory are ignored.
 * @throws QkdgwError INTERNAL naming file and line for a line that is not even-length
 *   lowercase hex
 */
export function readKeyLedgerDir(dir: string): Buffer[] {
  const keys: Buffer[] = [];
  for (const name of readdirSync(dir).filter((n) => LEDGER_FILE.test(n)).sort()) {
    const lines = readFileSync(join(dir, name), 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (line === '' && i === lines.length - 1) return;
      if (!/^(?:[0-9a-f]{2})+$/.test(line)) throw new QkdgwError(ErrorCodes.INTERNAL, `key ledger ${name} line ${i + 1}: not a hex key`);
      keys.push(Buffer.from(line, 'hex'));
    });
  }
  return keys;
}
