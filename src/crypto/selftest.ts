/**
 * Start-up known-answer self-test (architecture.md habit 5): the daemon refuses to run
 * when a primitive does not reproduce the protocol.md s3.5 regression rows.
 */
import { ErrorCodes, QkdgwError } from '../errors.js';
import { hkdfExpand, hkdfExtract } from './hkdf.js';
import { NODE_BACKEND, type CryptoBackend } from './backend.js';
import { gcmKnownAnswerResults } from './selftest-gcm.js';
import { xchacha } from './backends/xchacha.js';
import { x25519PrivateFromRaw, x25519PublicOf, x25519Shared } from './x25519.js';

const h = (s: string): Buffer => Buffer.from(s, 'hex');

interface Check {
  name: string;
  run(): boolean;
}

const CHECKS: Check[] = [
  {
    // RFC 5869 A.1
    name: 'HKDF-SHA-256 (RFC 5869 A.1)',
    run: () => {
      const prk = hkdfExtract(h('000102030405060708090a0b0c'), h('0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b'));
      const okm = hkdfExpand(prk, h('f0f1f2f3f4f5f6f7f8f9'), 42);
      return okm.toString('hex') === '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865';
    },
  },
  {
    name: 'XChaCha20-Poly1305 (protocol.md s3.5 suite 2 record)',
    run: () => {
      const a = xchacha(h('9cd0020992fb0896cf555141454a274343bf51bff6f15461f022f079705b109b'));
      const aad = h('0200000000000001000000000000000000000015');
      const iv = h('00d5e95ef2aa5264bd4bb3ed15bc67e3dbe6bac85cc21b6a');
      const sealed = a.seal(iv, Buffer.from('hello'), aad);
      return sealed.toString('hex') === 'dccf47fc99115635306a97f13d15d82820f3d01128' && a.open(iv, sealed, aad)?.toString() === 'hello';
    },
  },
  {
    // RFC 7748 s6.1
    name: 'X25519 (RFC 7748 s6.1)',
    run: () => {
      const a = x25519PrivateFromRaw(h('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'));
      const b = x25519PrivateFromRaw(h('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'));
      return (
        x25519PublicOf(a).toString('hex') === '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a' &&
        x25519Shared(a, x25519PublicOf(b)).toString('hex') === '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'
      );
    },
  },
];

/**
 * Runs every known-answer test, AES-256-GCM on `backend` (default node:crypto);
 * returns their results.
 */
export function runSelfTest(backend: CryptoBackend = NODE_BACKEND): Array<{ name: string; ok: boolean }> {
  const general = CHECKS.map((c) => {
    let ok = false;
    try {
      ok = c.run();
    } catch {
      ok = false;
    }
    return { name: c.name, ok };
  });
  const gcm = gcmKnownAnswerResults(backend.aes256gcm).map((r) => ({ name: `AES-256-GCM on ${backend.name}: ${r.name}`, ok: r.ok }));
  return [...general, ...gcm];
}

/** Throws SELFTEST_FAILED naming every failed check. */
export function assertSelfTest(backend: CryptoBackend = NODE_BACKEND): void {
  const failed = runSelfTest(backend).filter((r) => !r.ok);
  if (failed.length) throw new QkdgwError(ErrorCodes.SELFTEST_FAILED, `crypto self-test failed: ${failed.map((f) => f.name).join(', ')}`);
}
