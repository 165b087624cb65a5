/**
 * AES-256-GCM backends (suite 1) and the choice among them (issue 3; architecture.md L1).
 *
 * `native` (C addon over the node binary's OpenSSL, batching), `node` (node:crypto),
 * `noble` (pure JS). Every candidate must pass the AES-256-GCM known-answer test before
 * it is used; `auto` takes the first of native, node, noble that is available and passes.
 * Suite 2 (XChaCha20-Poly1305) has a single backend and is checked by the general self-test.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import type { AeadFactory } from './aead.js';
import { nativeGcmFactory } from './backends/native-gcm.js';
import { nobleGcm } from './backends/noble-gcm.js';
import { nodeGcm } from './backends/node-gcm.js';
import { xchacha } from './backends/xchacha.js';
import type { NativeStatus } from './native/loader.js';
import { gcmKnownAnswerFailures } from './selftest-gcm.js';
import type { SuiteId } from './suites.js';

export type BackendName = 'native' | 'node' | 'noble';
export type BackendRequest = 'auto' | BackendName;
export const BACKEND_NAMES: readonly BackendName[] = ['native', 'node', 'noble'];

export interface CryptoBackend {
  readonly name: BackendName;
  /** One line for logs and `qkdgw selftest`. */
  readonly description: string;
  /** AES-256-GCM (suite 1) bound to a 32-byte key. */
  readonly aes256gcm: AeadFactory;
}

/** What was found out about one backend. */
export interface BackendReport {
  name: BackendName;
  available: boolean;
  /** Why it is unavailable, or what it is. */
  detail: string;
  /** null when not tested (unavailable); else the failed checks (empty = passed). */
  selftestFailures: string[] | null;
}

export interface BackendChoice {
  backend: CryptoBackend;
  requested: BackendRequest;
  /** One sentence: which backend and why (logged as `crypto_backend`). */
  why: string;
  reports: BackendReport[];
}

/** node:crypto AES-256-GCM, tag length fixed at 16. */
export const NODE_BACKEND: CryptoBackend = { name: 'node', description: 'node:crypto AES-256-GCM', aes256gcm: nodeGcm };
/** @noble/ciphers AES-256-GCM, pure JavaScript. */
export const NOBLE_BACKEND: CryptoBackend = { name: 'noble', description: '@noble/ciphers AES-256-GCM (pure JS)', aes256gcm: nobleGcm };

/** The AEAD factory of `suite` on `backend` (suite 2 is always XChaCha20-Poly1305). */
export function aeadForSuite(suite: SuiteId, backend: CryptoBackend): AeadFactory {
  return suite === 2 ? xchacha : backend.aes256gcm;
}

function candidate(name: BackendName, native: NativeStatus): { backend: CryptoBackend | null; detail: string } {
  if (name === 'node') return { backend: NODE_BACKEND, detail: NODE_BACKEND.description };
  if (name === 'noble') return { backend: NOBLE_BACKEND, detail: NOBLE_BACKEND.description };
  if (!native.available) return { backend: null, detail: native.reason };
  return {
    backend: { name: 'native', description: `native addon AES-256-GCM over the node binary's OpenSSL (${native.path})`, aes256gcm: nativeGcmFactory(native.binding) },
    detail: `addon ${native.path}`,
  };
}

/** Availability and known-answer results of every backend (for `qkdgw selftest`). */
export function surveyBackends(native: NativeStatus): BackendReport[] {
  return BACKEND_NAMES.map((name) => {
    const c = candidate(name, native);
    return { name, available: c.backend !== null, detail: c.detail, selftestFailures: c.backend ? gcmKnownAnswerFailures(c.backend.aes256gcm) : null };
  });
}

/**
 * Picks the AES-256-GCM backend for `requested`, testing each candidate it considers.
 * `forcedBy` names who forced a non-auto choice (for the `why` line).
 * Throws CRYPTO_BACKEND when a forced backend is unavailable, SELFTEST_FAILED when a
 * forced backend (or, under `auto`, every backend) fails its known-answer test.
 */
export function selectBackend(requested: BackendRequest, native: NativeStatus, forcedBy = 'crypto.backend'): BackendChoice {
  const order: BackendName[] = requested === 'auto' ? [...BACKEND_NAMES] : [requested];
  const reports: BackendReport[] = [];
  const skipped: string[] = [];
  for (const name of order) {
    const c = candidate(name, native);
    const failures = c.backend ? gcmKnownAnswerFailures(c.backend.aes256gcm) : null;
    reports.push({ name, available: c.backend !== null, detail: c.detail, selftestFailures: failures });
    if (c.backend && failures && failures.length === 0) {
      const how = requested === 'auto' ? `auto chose ${name}` : `${name} forced by ${forcedBy}`;
      const prior = skipped.length ? ` (${skipped.join('; ')})` : '';
      return { backend: c.backend, requested, why: `${how}: ${c.backend.description} passed its self-test${prior}`, reports };
    }
    skipped.push(c.backend ? `${name} failed its self-test: ${failures!.join(', ')}` : `${name} unavailable: ${c.detail}`);
  }
  if (requested !== 'auto' && !reports[0]!.available) {
    const hint = forcedBy === 'crypto.backend' ? ' (crypto.backend: auto falls back to node)' : forcedBy === 'QKDGW_NATIVE=1' ? ' (unset QKDGW_NATIVE to fall back to node)' : '';
    throw new QkdgwError(ErrorCodes.CRYPTO_BACKEND, `AES-256-GCM backend ${requested} (forced by ${forcedBy}) is unavailable: ${reports[0]!.detail}${hint}`);
  }
  throw new QkdgwError(ErrorCodes.SELFTEST_FAILED, `no AES-256-GCM backend passed its self-test: ${skipped.join('; ')}`);
}
