/**
 * Writing PKI files with the right modes from the first byte on.
 *
 * Private keys are created with mode 0600 (never created wider and chmod-ed later, which
 * would leave a window where another user can open them); certificates with 0644; the
 * output folder, when we create it, with 0700. The process umask can only narrow these.
 */
import { constants as fsc } from 'node:fs';
import { lstat, mkdir, open, unlink } from 'node:fs/promises';
import { ErrorCodes, QkdgwError } from '../errors.js';

/** File modes used by the PKI writer. */
export const PKI_MODES = { privateKey: 0o600, certificate: 0o644, dir: 0o700 } as const;

/** True when something (file, folder, symlink, dangling or not) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new QkdgwError(ErrorCodes.PKI, `cannot inspect ${path}`, { path }, { cause: e });
  }
}

/** Creates `dir` (and missing parents) with mode 0700; an existing folder is left as it is. */
export async function ensurePkiDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: PKI_MODES.dir });
  } catch (e) {
    throw new QkdgwError(ErrorCodes.PKI, `cannot create PKI folder ${dir}`, { path: dir }, { cause: e });
  }
}

/**
 * Creates `path` exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) with `mode` and writes `data`.
 * With `force`, an existing file or symlink at `path` is unlinked first (never followed,
 * never written through), so the new file still gets `mode` at creation.
 * @throws QkdgwError PKI when the file exists (without force) or cannot be written
 */
export async function writeNewFile(path: string, data: string, mode: number, force = false): Promise<void> {
  if (force) {
    try {
      await unlink(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new QkdgwError(ErrorCodes.PKI, `cannot replace ${path}`, { path }, { cause: e });
      }
    }
  }
  let fh;
  try {
    fh = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const msg = code === 'EEXIST' ? `${path} already exists; use --force (qkdgw pki init) to overwrite it` : `cannot create ${path}`;
    throw new QkdgwError(ErrorCodes.PKI, msg, { path }, { cause: e });
  }
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } catch (e) {
    throw new QkdgwError(ErrorCodes.PKI, `cannot write ${path}`, { path }, { cause: e });
  } finally {
    await fh.close();
  }
}
