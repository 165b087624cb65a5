/**
 * File checks for configuration: referenced files exist, and private keys are not
 * readable by group or others (config-sketch.md; the error says which chmod to run).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { ErrorCodes, QkdgwError } from '../errors.js';

/** A file named by a configuration field, e.g. `{ field: 'kme.key', path: '/etc/qkdgw/sae.key' }`. */
export interface ConfigFile {
  field: string;
  path: string;
}

/**
 * Why `path` cannot be used as an input file, or null when it is a readable regular file.
 * The text is meant to follow the field path in an issue.
 */
export function fileProblem(path: string): string | null {
  try {
    const st = statSync(path);
    if (!st.isFile()) return `${path} is not a regular file`;
    accessSync(path, constants.R_OK);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `file not found: ${path}`;
    if (code === 'EACCES') return `file not readable by this user: ${path}`;
    return `cannot use ${path} (${code ?? String(e)})`;
  }
}

/**
 * Refuses private key files that group or others may access (any of mode bits 0o077),
 * listing every offender with the command that fixes it. Skipped on Windows, where the
 * mode bits say nothing.
 * @throws QkdgwError `QKDGW_E_FILE_PERMISSIONS` (some key file too open),
 *   `QKDGW_E_CONFIG_READ` (a key file is missing or not a readable file).
 */
export function checkKeyFileModes(files: readonly ConfigFile[]): void {
  if (process.platform === 'win32') return;
  const missing: string[] = [];
  const open: string[] = [];
  for (const f of files) {
    const problem = fileProblem(f.path);
    if (problem !== null) {
      missing.push(`${f.field}: ${problem}`);
      continue;
    }
    const mode = statSync(f.path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      open.push(
        `${f.field}: private key ${f.path} is accessible by group or others (mode 0${mode.toString(8)}); run: chmod 600 '${f.path.replace(/'/g, `'\\''`)}'`,
      );
    }
  }
  if (missing.length > 0) {
    throw new QkdgwError(ErrorCodes.CONFIG_READ, missing.join('\n'), { files: files.map((f) => f.field) });
  }
  if (open.length > 0) {
    throw new QkdgwError(ErrorCodes.FILE_PERMISSIONS, open.join('\n'), { files: open.length });
  }
}
