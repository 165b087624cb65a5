/**
 * File checks for configuration: referenced files exist, and private keys are not
 * readable by group or others (config-sketch.md; the error says which chmod to run).
 */
import { accessSync, constants, lstatSync, realpathSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
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
 * Why `path` cannot be the key audit trail, or null: its folder must exist (it is never
 * created) and be writable; an existing file must be a regular file (not a symbolic link)
 * not writable by group or others. Whether its content is a trail is checked when the
 * gateway opens it (src/daemon/audit.ts).
 */
export function auditFileProblem(path: string): string | null {
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `the folder ${dir} does not exist: create it (owned by the gateway's user, mode 0700)`;
    if (code === 'EACCES') return `the folder ${dir} is not writable by this user`;
    return `cannot use the folder ${dir} (${code ?? String(e)})`;
  }
  let st;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null; // created at start, mode 0600
    return `cannot use ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (st.isSymbolicLink()) return `${path} is a symbolic link: give the real path`;
  if (!st.isFile()) return `${path} is not a regular file`;
  if ((st.mode & 0o022) !== 0) return `${path} is writable by group or others (mode 0${(st.mode & 0o777).toString(8)}): chmod 600 it`;
  return null;
}

export interface KeyFileOptions {
  /**
   * The systemd credentials folder of the service (`$CREDENTIALS_DIRECTORY`, read by the
   * CLI: L3 does not read the environment). systemd writes each credential 0400 and grants
   * the service user read access with an ACL entry, and stat() shows that ACL's mask in
   * the group bits: 0440. So a key file directly in this folder may have group read;
   * every other bit is still refused.
   */
  credentialsDir?: string;
}

/**
 * Refuses private key files that group or others may access (any of mode bits 0o077,
 * except group read for a file directly in `opts.credentialsDir`), listing every offender
 * with the command that fixes it. Skipped on Windows, where the mode bits say nothing.
 * @throws QkdgwError `QKDGW_E_FILE_PERMISSIONS` (some key file too open),
 *   `QKDGW_E_CONFIG_READ` (a key file is missing or not a readable file).
 */
export function checkKeyFileModes(files: readonly ConfigFile[], opts: KeyFileOptions = {}): void {
  if (process.platform === 'win32') return;
  const missing: string[] = [];
  const open: string[] = [];
  for (const f of files) {
    const problem = fileProblem(f.path);
    if (problem !== null) {
      missing.push(`${f.field}: ${problem}`);
      continue;
    }
    const loose = keyFileModeProblem(f.path, opts);
    if (loose !== null) open.push(`${f.field}: ${loose}`);
  }
  if (missing.length > 0) {
    throw new QkdgwError(ErrorCodes.CONFIG_READ, missing.join('\n'), { files: files.map((f) => f.field) });
  }
  if (open.length > 0) {
    throw new QkdgwError(ErrorCodes.FILE_PERMISSIONS, open.join('\n'), { files: open.length });
  }
}

/**
 * Why the private key file `path` (which exists) is too open, with the chmod that fixes it,
 * or null: any of mode bits 0o077, except group read for a file directly in
 * `opts.credentialsDir`. Always null on Windows, where the mode bits say nothing.
 */
export function keyFileModeProblem(path: string, opts: KeyFileOptions = {}): string | null {
  if (process.platform === 'win32') return null;
  const creds = opts.credentialsDir ? realDir(opts.credentialsDir) : null;
  const mode = statSync(path).mode & 0o777;
  // The folder itself, compared after resolving links: not a name that merely starts with it.
  const allowed = creds !== null && dirname(realpathSync(path)) === creds ? 0o040 : 0;
  if ((mode & 0o077 & ~allowed) === 0) return null;
  return `private key ${path} is accessible by group or others (mode 0${mode.toString(8)}); run: chmod 600 '${path.replace(/'/g, `'\\''`)}'`;
}

/** realpath of `dir`, or null when it does not exist (then nothing is exempt). */
function realDir(dir: string): string | null {
  try {
    return realpathSync(dir);
  } catch {
    return null;
  }
}
