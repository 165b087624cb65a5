/**
 * Loader for the shared crypto vector sets (issue 3): Wycheproof `testvectors_v1` and
 * ACVP-Server `internalProjection.json`, gzipped, in `../shared/vectors` relative to the
 * repo root (README.md there gives the pins and licences). The files are read in place,
 * never copied into the repo.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));

/** Absolute path of the vector folder: `<repo>/../shared/vectors`, or $QKDGW_VECTOR_DIR when set. */
export const VECTOR_DIR = process.env.QKDGW_VECTOR_DIR
  ? resolve(process.env.QKDGW_VECTOR_DIR)
  : resolve(here, '..', '..', '..', 'shared', 'vectors');

/**
 * Why a suite must skip, or false when `rel` (e.g. `wycheproof/x25519_test.json.gz`) is present.
 * Pass the result to tap as `{ skip }`.
 */
export function skipReason(rel: string): string | false {
  if (!existsSync(VECTOR_DIR)) return `vector folder ${VECTOR_DIR} absent: crypto vector suite not run`;
  if (!existsSync(resolve(VECTOR_DIR, rel))) return `vector file ${rel} absent under ${VECTOR_DIR}: suite not run`;
  return false;
}

/** Parsed JSON of a gzipped vector file; `rel` is relative to VECTOR_DIR. */
export function loadVectors<T = unknown>(rel: string): T {
  return JSON.parse(gunzipSync(readFileSync(resolve(VECTOR_DIR, rel))).toString('utf8')) as T;
}

/** Hex (either case, possibly empty) to bytes; throws on odd length or non-hex. */
export function hex(s: string): Buffer {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new Error(`bad hex in vector: ${s.slice(0, 16)}...`);
  return Buffer.from(s, 'hex');
}

/** Wycheproof file shape (only the fields the suites read). */
export interface WycheproofFile<G> {
  algorithm: string;
  numberOfTests: number;
  testGroups: G[];
}

/** Wycheproof test common fields. */
export interface WycheproofTest {
  tcId: number;
  comment?: string;
  flags: string[];
  result: 'valid' | 'invalid' | 'acceptable';
}

/** ACVP internalProjection shape (prompts with answers). */
export interface AcvpFile<G> {
  algorithm: string;
  mode?: string;
  revision: string;
  testGroups: G[];
}

/** The `code` of a thrown QkdgwError (or undefined), for t.equal checks on error codes. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code ?? `non-coded error: ${String(e)}`;
  }
  return undefined;
}
