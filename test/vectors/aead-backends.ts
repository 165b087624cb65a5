/**
 * The AES-256-GCM backends every suite-1 test runs on (issue 3): native (the C addon, when
 * loadNative() finds it), node (node:crypto), noble (pure JS). Not a test file itself.
 *
 * A missing addon is reported, never silently dropped: the native case becomes a tap skip
 * naming the loader's reason, and a failure when QKDGW_REQUIRE_NATIVE=1 (set it in CI
 * where the addon is built, so a broken build cannot pass as "skipped").
 */
import type { Test } from 'tap';
import type { Aead } from '../../src/crypto/aead.js';
import { NOBLE_BACKEND, NODE_BACKEND, type BackendName } from '../../src/crypto/backend.js';
import { nativeGcmFactory } from '../../src/crypto/backends/native-gcm.js';
import type { NativeBinding } from '../../src/crypto/native/binding.js';
import { loadNative, type NativeStatus } from '../../src/crypto/native/loader.js';

/** True when the environment demands the addon (QKDGW_REQUIRE_NATIVE=1). */
export const REQUIRE_NATIVE = process.env.QKDGW_REQUIRE_NATIVE === '1';

/** One AES-256-GCM backend ready to test. */
export interface GcmBackendCase {
  name: BackendName;
  /** A 32-byte key to an Aead (throws CRYPTO_LENGTH on another key length). */
  factory: (key: Uint8Array) => Aead;
  /** Subtest title: backend name and what it is. */
  title: string;
}

/** A backend that cannot be tested here, and why (the loader's reason for native). */
export interface MissingBackend {
  name: BackendName;
  reason: string;
}

/**
 * The addon as the tests see it: the default build path (or $QKDGW_NATIVE_ADDON, as the
 * daemon reads it), never disabled.
 */
export function nativeStatus(): NativeStatus {
  return loadNative({ path: process.env.QKDGW_NATIVE_ADDON || undefined });
}

/** Every AES-256-GCM backend, in selection order; native is `missing` without the addon. */
export function gcmBackends(native: NativeStatus = nativeStatus()): Array<GcmBackendCase | MissingBackend> {
  const nativeCase: GcmBackendCase | MissingBackend = native.available
    ? { name: 'native', factory: nativeGcmFactory(native.binding), title: `native (addon ${native.path})` }
    : { name: 'native', reason: native.reason };
  return [
    nativeCase,
    { name: 'node', factory: NODE_BACKEND.aes256gcm, title: `node (${NODE_BACKEND.description})` },
    { name: 'noble', factory: NOBLE_BACKEND.aes256gcm, title: `noble (${NOBLE_BACKEND.description})` },
  ];
}

/** The tap message for a missing addon: a skip reason, or a failure under QKDGW_REQUIRE_NATIVE=1. */
export function nativeMissingMessage(reason: string): string {
  return REQUIRE_NATIVE ? `QKDGW_REQUIRE_NATIVE=1 but the native addon is unavailable: ${reason}` : `native addon unavailable: ${reason}`;
}

/**
 * Runs `fn` as one subtest per AES-256-GCM backend (titled with the backend). A missing
 * native addon gives a skipped subtest naming the reason, or a failing one when
 * QKDGW_REQUIRE_NATIVE=1.
 */
export function eachGcmBackend(t: Test, fn: (t: Test, b: GcmBackendCase) => void | Promise<void>, native?: NativeStatus): void {
  for (const b of gcmBackends(native)) {
    if ('factory' in b) {
      t.test(b.title, async (st) => fn(st, b));
    } else if (REQUIRE_NATIVE) {
      t.test(b.name, async (st) => {
        st.fail(nativeMissingMessage(b.reason));
      });
    } else {
      t.test(b.name, { skip: nativeMissingMessage(b.reason) }, async () => {});
    }
  }
}

/**
 * Runs `fn` with the raw addon binding as a subtest titled `title`; without the addon the
 * subtest skips with the loader's reason (fails under QKDGW_REQUIRE_NATIVE=1).
 */
export function withNative(t: Test, title: string, fn: (t: Test, binding: NativeBinding, status: NativeStatus & { available: true }) => void | Promise<void>): void {
  const s = nativeStatus();
  if (s.available) {
    t.test(title, async (st) => fn(st, s.binding, s));
  } else if (REQUIRE_NATIVE) {
    t.test(title, async (st) => {
      st.fail(nativeMissingMessage(s.reason));
    });
  } else {
    t.test(title, { skip: nativeMissingMessage(s.reason) }, async () => {});
  }
}
