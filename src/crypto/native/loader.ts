/**
 * Loads the optional C addon (native/build/Release/qkdgw_native.node).
 *
 * Never throws: a machine without a compiler installs without the addon, and backend
 * selection (src/crypto/backend.ts) falls back to node:crypto with the reason logged.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NATIVE_ABI, type NativeBinding } from './binding.js';

export type NativeStatus =
  | { available: true; binding: NativeBinding; path: string }
  | { available: false; reason: string; path: string };

/** dist/crypto/native/loader.js (or src/… under tap) -> <package>/native/build/Release/qkdgw_native.node */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../native/build/Release/qkdgw_native.node', import.meta.url));

const KEYS: Array<keyof NativeBinding> = ['gcmNew', 'gcmFree', 'gcmSeal', 'gcmOpen', 'gcmSealAt', 'gcmOpenAt', 'gcmSealBatch', 'gcmOpenBatch'];

const loaded = new Map<string, NativeStatus>();

/**
 * Loads the addon at `path` (default {@link DEFAULT_ADDON_PATH}); `disabled` (the daemon's
 * reading of QKDGW_NATIVE=0) skips it with that reason. Returns why the addon is
 * unavailable instead of throwing. A successful load of a path is cached (Node cannot
 * unload an addon anyway).
 */
export function loadNative(opts: { path?: string; disabled?: string } = {}): NativeStatus {
  const path = opts.path ?? DEFAULT_ADDON_PATH;
  if (opts.disabled) return { available: false, reason: opts.disabled, path };
  const hit = loaded.get(path);
  if (hit) return hit;
  const r = load(path);
  if (r.available) loaded.set(path, r);
  return r;
}

function load(path: string): NativeStatus {
  if (!existsSync(path)) return { available: false, reason: `addon not built (${path} is missing; run \`npm run build:native\`)`, path };
  let b: NativeBinding;
  try {
    b = createRequire(import.meta.url)(path) as NativeBinding;
  } catch (e) {
    return { available: false, reason: `addon failed to load: ${(e as Error).message.split('\n')[0]}`, path };
  }
  if (b.abi !== NATIVE_ABI) return { available: false, reason: `addon ABI ${String(b.abi)} differs from the expected ${NATIVE_ABI}: rebuild it`, path };
  const missing = KEYS.filter((k) => typeof b[k] !== 'function');
  if (missing.length) return { available: false, reason: `addon lacks ${missing.join(', ')}: rebuild it`, path };
  return { available: true, binding: b, path };
}
