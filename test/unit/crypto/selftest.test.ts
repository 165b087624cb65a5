import t from 'tap';
import type { Aead, AeadFactory, CounterAead } from '../../../src/crypto/aead.js';
import { NODE_BACKEND, type CryptoBackend } from '../../../src/crypto/backend.js';
import { nodeGcm } from '../../../src/crypto/backends/node-gcm.js';
import { runSelfTest, assertSelfTest } from '../../../src/crypto/selftest.js';
import { gcmKnownAnswerResults } from '../../../src/crypto/selftest-gcm.js';
import { nonce } from '../../../src/crypto/nonce.js';
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

/** node:crypto AES-256-GCM wrapped as a CounterAead whose sealAt/openAt take the counter from `counterOf`. */
function counterBackend(counterOf: (c: number) => number): AeadFactory {
  return (key) => {
    const a = nodeGcm(key);
    const at: Aead & CounterAead = {
      name: 'counter-fake',
      nonceLength: 12,
      tagLength: 16,
      seal: (n, p, aad, out) => a.seal(n, p, aad, out),
      open: (n, s, aad, out) => a.open(n, s, aad, out),
      sealAt: (iv, c, p, aad, out) => a.seal(nonce(iv, counterOf(c)), p, aad, out),
      openAt: (iv, c, s, aad, out) => a.open(nonce(iv, counterOf(c)), s, aad, out),
      destroy: () => a.destroy(),
    };
    return at;
  };
}

const AT_CHECK = 'sealAt/openAt equal seal/open under nonce(iv, counter), counters 0 .. 2^53-1';
const LONG_CHECK = 'records of 1,400 B, 8 KiB and 64 KiB equal node:crypto and open back';

/** The AES-256-GCM checks `f` fails, by name (as gcmKnownAnswerResults names them). */
const gcmFailures = (f: AeadFactory): string[] =>
  gcmKnownAnswerResults(f)
    .filter((r) => !r.ok)
    .map((r) => r.name);

t.test('issue 3 review: the self-test has the sealAt/openAt and long-record checks', async (t) => {
  const names = gcmKnownAnswerResults(nodeGcm).map((r) => r.name);
  t.ok(names.includes(AT_CHECK), `"${AT_CHECK}" is a check`);
  t.ok(names.includes(LONG_CHECK), `"${LONG_CHECK}" is a check`);
  t.same(gcmFailures(counterBackend((c) => c)), [], 'control: an honest CounterAead passes every check');
});

t.test('issue 3 review: a native-like backend whose sealAt ignores the counter (one nonce reused) fails the sealAt/openAt check, by name', async (t) => {
  const reuse = counterBackend(() => 0);
  t.same(gcmFailures(reuse), [AT_CHECK], 'exactly the sealAt/openAt check fails (the others never call sealAt with a counter > 0)');
  const failed = runSelfTest({ ...NODE_BACKEND, aes256gcm: reuse }).filter((x) => !x.ok).map((x) => x.name);
  t.same(failed, [`AES-256-GCM on node: ${AT_CHECK}`], 'runSelfTest names it');
  t.throws(() => assertSelfTest({ ...NODE_BACKEND, aes256gcm: reuse }), { code: ErrorCodes.SELFTEST_FAILED }, 'assertSelfTest refuses it');
  // Off by one, and a counter truncated to 32 bits: both caught too.
  t.ok(gcmFailures(counterBackend((c) => c + 1)).includes(AT_CHECK), 'counter + 1 is caught by it (and by the long records, sealed at counter 0)');
  t.same(gcmFailures(counterBackend((c) => c >>> 0)), [AT_CHECK], 'a counter truncated to 32 bits is caught');
});

t.test('issue 3 review: a backend that corrupts records longer than 100 bytes fails the long-records check, by name', async (t) => {
  // The other checks use records of at most 100 bytes: only the long-record check can see this.
  const longBad: AeadFactory = (key) => {
    const a = nodeGcm(key);
    return {
      name: 'long-corrupting',
      nonceLength: 12,
      tagLength: 16,
      seal: (n, p, aad, out) => {
        const s = a.seal(n, p, aad, out);
        if (p.length > 100) s[p.length >> 1]! ^= 0x01;
        return s;
      },
      open: (n, s, aad, out) => a.open(n, s, aad, out),
      destroy: () => a.destroy(),
    };
  };
  t.same(gcmFailures(longBad), [LONG_CHECK], 'exactly the long-records check fails');
  t.throws(() => assertSelfTest({ ...NODE_BACKEND, aes256gcm: longBad }), { code: ErrorCodes.SELFTEST_FAILED, message: /records of 1,400 B/ });
  // The same fault on the counter path (a native-like backend) is caught by the same check.
  const longBadAt: AeadFactory = (key) => {
    const base = counterBackend((c) => c)(key) as Aead & CounterAead;
    const sealAt = base.sealAt;
    return Object.assign(base, {
      sealAt: (iv: Uint8Array, c: number, p: Uint8Array, aad: Uint8Array, out?: Buffer): Buffer => {
        const s = sealAt(iv, c, p, aad, out);
        if (p.length > 100) s[s.length - 1]! ^= 0x01;
        return s;
      },
    });
  };
  t.same(gcmFailures(longBadAt), [LONG_CHECK], 'sealAt corrupting long records: exactly the long-records check fails');
});

t.test('issue 3 review: the real native and node backends pass every check, the two new ones included', async (t) => {
  eachGcmBackend(t, (t, b) => {
    if (b.name === 'noble') {
      t.pass('noble is covered by the test above');
      return;
    }
    const results = gcmKnownAnswerResults(b.factory);
    t.same(results.filter((r) => !r.ok).map((r) => r.name), [], `${b.name}: no check failed`);
    t.ok(results.some((r) => r.name === AT_CHECK && r.ok) && results.some((r) => r.name === LONG_CHECK && r.ok), `${b.name}: the sealAt/openAt and long-record checks ran and passed`);
  });
});
