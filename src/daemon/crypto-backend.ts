/**
 * The daemon's reading of the crypto backend knobs: config `crypto.backend` and the
 * environment (`QKDGW_NATIVE=0` kill switch, `QKDGW_NATIVE_ADDON` addon path override).
 * Only L5/L6 read process.env (architecture.md), so this lives here, not in src/crypto.
 */
import { selectBackend, type BackendChoice, type BackendRequest } from '../crypto/backend.js';
import { loadNative, type NativeStatus } from '../crypto/native/loader.js';
import { ErrorCodes, QkdgwError } from '../errors.js';

const OFF = new Set(['0', 'false', 'no', 'off']);
const ON = new Set(['1', 'true', 'yes', 'on']);

/**
 * Loads the addon as the environment allows. Throws CRYPTO_BACKEND when QKDGW_NATIVE
 * holds anything but 0/1 (or false/true, no/yes, off/on) or is empty.
 */
export function nativeFromEnv(env: NodeJS.ProcessEnv): NativeStatus {
  const v = env.QKDGW_NATIVE;
  if (v !== undefined && !OFF.has(v.toLowerCase()) && !ON.has(v.toLowerCase())) {
    throw new QkdgwError(ErrorCodes.CRYPTO_BACKEND, `QKDGW_NATIVE=${JSON.stringify(v)} is not understood: use 0 to disable the native addon or 1 to require it`);
  }
  const disabled = v !== undefined && OFF.has(v.toLowerCase()) ? `disabled by QKDGW_NATIVE=${v}` : undefined;
  return loadNative({ path: env.QKDGW_NATIVE_ADDON || undefined, disabled });
}

/**
 * Picks the AES-256-GCM backend for config value `requested` under `env`.
 * QKDGW_NATIVE=1 turns `auto` into `native` (so a missing addon is an error, not a
 * silent fallback); QKDGW_NATIVE=0 with `native` configured is CRYPTO_BACKEND.
 * Throws CRYPTO_BACKEND or SELFTEST_FAILED (see selectBackend).
 */
export function chooseCryptoBackend(requested: BackendRequest, env: NodeJS.ProcessEnv): BackendChoice {
  const native = nativeFromEnv(env);
  const v = env.QKDGW_NATIVE?.toLowerCase();
  const byEnv = requested === 'auto' && v !== undefined && ON.has(v);
  return selectBackend(byEnv ? 'native' : requested, native, byEnv ? `QKDGW_NATIVE=${env.QKDGW_NATIVE}` : 'configuration');
}
