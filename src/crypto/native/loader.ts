/**
 * Loads the optional C addon (native/build/Release/qkdgw_native.node).
 *
 * Never throws: a machine without a compiler installs without the addon, and backend
 * selection (src/crypto/backend.ts) falls back to node:crypto with the reason logged.
 */
import { constants as osConstants } from 'node:os';
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATIVE_ABI, type NativeBinding } from './binding.js';
import { elfProblem } from './elf-check.js';

export type NativeStatus =
  | { available: true; binding: NativeBinding; path: string }
  | { available: false; reason: string; path: string };

/** dist/crypto/native/loader.js (or src/… under tap) -> <package>/native/build/Release/qkdgw_native.node */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/qkdgw_native.node', import.meta.url));

const KEYS: Array<keyof NativeBinding> = ['gcmNew', 'gcmFree', 'gcmSeal', 'gcmOpen', 'gcmSealAt', 'gcmOpenAt', 'gcmSealBatch', 'gcmOpenBatch', 'sdNotify'];

const loaded = new Map<string, NativeStatus>();

/**
 * Loads the addon at `path` (default {@link DEFAULT_ADDON_PATH}); `disabled` (the daemon's
 * reading of QKDGW_NATIVE=0) skips it with that reason. Returns why the addon is
 * unavailable instead of throwing. A successful load of a path is cached (Node cannot
 * unload an addon anyway).
 */
export function loadNative(opts: { path?: string; disabled?: string } = {}): NativeStatus {
  // Relative to the working directory, like any path an operator types; never to this file.
  const path = opts.path === undefined ? DEFAULT_ADDON_PATH : isAbsolute(opts.path) ? opts.path : resolve(opts.path);
  if (opts.disabled) return { available: false, reason: opts.disabled, path };
  const hit = loaded.get(path);
  if (hit) return hit;
  const r = load(path);
  if (r.available) loaded.set(path, r);
  return r;
}

function load(path: string): NativeStatus {
  const isDefault = path === DEFAULT_ADDON_PATH;
  let st;
  try {
    st = statSync(path);
  } catch {
    return { available: false, reason: isDefault ? `addon not built (${path} is missing; run \`npm run build:native\`)` : `no addon at ${path}`, path };
  }
  // Only a regular *.node file is ever handed to dlopen: a FIFO or /dev/zero would hang it,
  // and require() would run a .js or .json file as code.
  if (!st.isFile()) return { available: false, reason: `${path} is not a regular file`, path };
  if (!path.endsWith('.node')) return { available: false, reason: `${path} does not end in .node`, path };
  const bad = elfProblem(path);
  if (bad) return { available: false, reason: `${path} is not a loadable addon: ${bad}`, path };
  const mod = { exports: {} as NativeBinding };
  try {
    process.dlopen(mod, path, osConstants.dlopen.RTLD_NOW);
  } catch (e) {
    return { available: false, reason: `addon failed to load: ${(e as Error).message.split('\n')[0]}`, path };
  }
  return checkBinding(mod.exports, path);
}

/**
 * The ABI and surface checks of a loaded addon's exports `b` (from `path`): available
 * when `b.abi` is {@link NATIVE_ABI} and every function of {@link NativeBinding} is there.
 */
export function checkBinding(b: unknown, path: string): NativeStatus {
  const x = (b ?? {}) as Partial<Record<keyof NativeBinding, unknown>>;
  if (x.abi !== NATIVE_ABI) return { available: false, reason: `addon ABI ${String(x.abi)} differs from the expected ${NATIVE_ABI}: rebuild it`, path };
  const missing = KEYS.filter((k) => typeof x[k] !== 'function');
  if (missing.length) return { available: false, reason: `addon lacks ${missing.join(', ')}: rebuild it`, path };
  return { available: true, binding: b as NativeBinding, path };
}
