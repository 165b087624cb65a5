/**
 * The daemon's reading of the crypto backend knobs: config `crypto.backend` and the
 * environment (`QKDGW_NATIVE=0` kill switch, `QKDGW_NATIVE_ADDON` addon path override).
 * Only L5/L6 read process.env (architecture.md), so this lives here, not in src/crypto.
 */
import { selectBackend, type BackendChoice, type BackendRequest } from '../crypto/backend.js';
import { DEFAULT_ADDON_PATH, loadNative, type NativeStatus } from '../crypto/native/loader.js';
import { ErrorCodes, QkdgwError } from '../errors.js';

/**
 * QKDGW_NATIVE: '0' disables the addon, '1' requires it, unset or empty leaves the choice
 * to crypto.backend. Throws CRYPTO_BACKEND on any other value (no guessing at `no` or `2`).
 */
export function nativeSwitch(env: NodeJS.ProcessEnv): 'off' | 'on' | null {
  const v = env.QKDGW_NATIVE;
  if (v === undefined || v === '') return null;
  if (v === '0') return 'off';
  if (v === '1') return 'on';
  throw new QkdgwError(ErrorCodes.CRYPTO_BACKEND, `QKDGW_NATIVE=${JSON.stringify(v)} is not understood: use 0 to disable the native addon or 1 to require it`);
}

/**
 * Loads the addon as the environment allows (QKDGW_NATIVE_ADDON: another build, a path
 * relative to the working directory). Throws CRYPTO_BACKEND on a bad QKDGW_NATIVE.
 */
export function nativeFromEnv(env: NodeJS.ProcessEnv): NativeStatus {
  const disabled = nativeSwitch(env) === 'off' ? 'disabled by QKDGW_NATIVE=0' : undefined;
  return loadNative({ path: env.QKDGW_NATIVE_ADDON || undefined, disabled });
}

/**
 * Picks the AES-256-GCM backend for `requested` (config `crypto.backend`, or `--backend`
 * when `forcedBy` says so) under `env`. QKDGW_NATIVE=1 turns `auto` into `native` (a
 * missing addon is then an error, not a silent fallback). The addon is not even loaded
 * when node or noble is forced. Throws CRYPTO_BACKEND or SELFTEST_FAILED (selectBackend).
 */
export function chooseCryptoBackend(requested: BackendRequest, env: NodeJS.ProcessEnv, forcedBy = 'crypto.backend'): BackendChoice {
  const sw = nativeSwitch(env);
  const byEnv = requested === 'auto' && sw === 'on';
  const native: NativeStatus =
    requested === 'node' || requested === 'noble' ? { available: false, reason: `not loaded: ${forcedBy} is ${requested}`, path: env.QKDGW_NATIVE_ADDON || DEFAULT_ADDON_PATH } : nativeFromEnv(env);
  return selectBackend(byEnv ? 'native' : requested, native, byEnv ? 'QKDGW_NATIVE=1' : forcedBy);
}
