import t from 'tap';
import type { Aead } from '../../../src/crypto/aead.js';
import { NODE_BACKEND, type CryptoBackend } from '../../../src/crypto/backend.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { runSelfTest, assertSelfTest } from '../../../src/crypto/selftest.js';
import { gcmKnownAnswerResults } from '../../../src/crypto/selftest-gcm.js';
import { ErrorCodes } from '../../../src/errors.js';
import { eachGcmBackend } from '../../vectors/aead-backends.js';

t.test('every known-answer test passes', async (t) => {
  const r = runSelfTest();
  t.ok(r.length >= 4);
  for (const x of r) t.ok(x.ok, x.name);
  t.doesNotThrow(() => assertSelfTest());
});

t.test('issue 3: the self-test passes on every AES-256-GCM backend', async (t) => {
  eachGcmBackend(t, (t, b) => {
    const backend: CryptoBackend = { name: b.name, description: b.title, aes256gcm: b.factory };
    const r = runSelfTest(backend);
    const gcm = r.filter((x) => x.name.startsWith(`AES-256-GCM on ${b.name}: `));
    t.equal(gcm.length, gcmKnownAnswerResults(nodeGcm).length, 'every AES-256-GCM check ran on this backend');
    t.ok(gcm.length >= 4, 'at least four of them');
    t.same(r.filter((x) => !x.ok).map((x) => x.name), [], 'none failed');
    t.doesNotThrow(() => assertSelfTest(backend));
  });
});

t.test('issue 3: a backend whose seal flips a bit fails the self-test, named check by check', async (t) => {
  // node:crypto with the first output byte of every seal flipped: opens still verify.
  const flipping = (key: Uint8Array): Aead => {
    const a = nodeGcm(key);
    return {
      name: 'flipping',
      nonceLength: 12,
      tagLength: 16,
      seal: (n, p, aad, out) => {
        const s = a.seal(n, p, aad, out);
        s[0]! ^= 1;
        return s;
      },
      open: (n, s, aad, out) => a.open(n, s, aad, out),
      destroy: () => a.destroy(),
    };
  };
  const bad: CryptoBackend = { ...NODE_BACKEND, aes256gcm: flipping };
  const failed = runSelfTest(bad).filter((x) => !x.ok).map((x) => x.name);
  for (const c of ['GCM spec test case 14', 'protocol.md s3.5 carrier record', 'batch of 3 equals single records (protocol.md s5 nonces)']) {
    t.ok(failed.includes(`AES-256-GCM on node: ${c}`), `"${c}" failed`);
  }
  t.notOk(failed.some((f) => f.includes('rejects a flipped tag bit')), 'the open-side check still passed');
  t.notOk(failed.some((f) => !f.startsWith('AES-256-GCM on node: ')), 'no other primitive is blamed');
  let err: { code?: string; message?: string } = {};
  try {
    assertSelfTest(bad);
  } catch (e) {
    err = e as typeof err;
  }
  t.equal(err.code, ErrorCodes.SELFTEST_FAILED);
  t.match(err.message, /GCM spec test case 14.*carrier record.*batch of 3/);
});
