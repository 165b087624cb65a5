/**
 * Configuration errors: every problem found in a file is a {@link ConfigIssue} with its
 * position, and one {@link ConfigError} carries all of them (field reports BC-33, BC-35:
 * "every error names the key path and line").
 */
import { ErrorCodes, QkdgwError } from '../errors.js';

/** One problem in a configuration file. `line`/`col` are 1-based; `path` is e.g. `peers[0].control`. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** Key path in the document, `(root)` for the document itself. */
  path: string;
  /** What is wrong and what is expected instead; never contains key material. */
  message: string;
}

/** Error codes a {@link ConfigError} may carry. */
export type ConfigErrorCode =
  | typeof ErrorCodes.CONFIG_INVALID
  | typeof ErrorCodes.CONFIG_EMPTY
  | typeof ErrorCodes.CONFIG_READ
  | typeof ErrorCodes.FILE_PERMISSIONS;

/** Formats one issue as `FILE:LINE:COL: PATH: MESSAGE` (the form editors and CI logs link to). */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`;
}

/**
 * A configuration file that cannot be used. `issues` holds every problem found (not just
 * the first), sorted by position. Codes: `QKDGW_E_CONFIG_INVALID` (syntax, schema or
 * cross-field rule), `QKDGW_E_CONFIG_EMPTY` (zero bytes, only comments or whitespace),
 * `QKDGW_E_CONFIG_READ` (the file cannot be read).
 */
export class ConfigError extends QkdgwError {
  readonly issues: readonly ConfigIssue[];
  readonly file: string;
  constructor(code: ConfigErrorCode, file: string, issues: ConfigIssue[], options?: { cause?: unknown }) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
    const head =
      sorted.length === 1 ? `configuration ${file} is not valid` : `configuration ${file} has ${sorted.length} problems`;
    super(code, `${head}:\n${sorted.map(formatIssue).join('\n')}`, { file, issues: sorted }, options);
    this.name = 'ConfigError';
    this.file = file;
    this.issues = Object.freeze(sorted.map((i) => Object.freeze({ ...i })));
  }

  /** One line per issue: `FILE:LINE:COL: PATH: MESSAGE`. */
  format(): string {
    return this.issues.map(formatIssue).join('\n');
  }
}

/** True when `e` is a {@link ConfigError}. */
export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError;
}

/**
 * Text for `qkdgw check-config` and start-up failures: a ConfigError prints one line per
 * issue; another QkdgwError (e.g. `QKDGW_E_FILE_PERMISSIONS`) prints `CODE: message`;
 * anything else its message. The CLI should exit 78 (EX_CONFIG) on any of these (BC-35b).
 */
export function formatConfigError(e: unknown): string {
  if (e instanceof ConfigError) return e.format();
  if (e instanceof QkdgwError) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Builds a key path string from segments: `['peers', 0, 'control']` -> `peers[0].control`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out === '' ? '(root)' : out;
}
