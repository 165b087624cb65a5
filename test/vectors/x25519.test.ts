// Issue 3: X25519 (src/crypto/x25519.ts) against Wycheproof x25519_test.
//
// 'acceptable' cases: the all-zero-shared ones (low-order public keys, RFC 7748 s6.1) must
// throw X25519_LOW_ORDER; the rest (twist points, non-canonical u >= p) are computed as
// RFC 7748 s5 says (mask bit 255, reduce mod p) and must give the listed shared secret.
import t from 'tap';
import { x25519PrivateFromRaw, x25519Shared } from '../../src/crypto/x25519.js';
import { ErrorCodes } from '../../src/errors.js';
import { codeOf, hex, loadVectors, skipReason, type WycheproofFile, type WycheproofTest } from './load.js';

interface XdhGroup { curve: string; tests: (WycheproofTest & { public: string; private: string; shared: string })[] }

const WP = 'wycheproof/x25519_test.json.gz';
const EXPECTED = 518;
const EXPECTED_ZERO = 31;
const EXPECTED_ACCEPTABLE_NONZERO = 223;
const ZERO = '00'.repeat(32);

t.test('Wycheproof x25519_test', { skip: skipReason(WP) }, async (t) => {
  const f = loadVectors<WycheproofFile<XdhGroup>>(WP);
  const failures: string[] = [];
  let valid = 0;
  let zero = 0;
  let acceptable = 0;
  let lengthChecks = 0;
  for (const g of f.testGroups) {
    if (g.curve !== 'curve25519') continue;
    for (const v of g.tests) {
      const priv = x25519PrivateFromRaw(hex(v.private));
      const pub = hex(v.public);
      if (v.shared === ZERO) {
        zero++;
        const c = codeOf(() => x25519Shared(priv, pub));
        if (c !== ErrorCodes.X25519_LOW_ORDER) failures.push(`tcId ${v.tcId} (${v.result}): zero shared secret gave ${c ?? 'no error'}`);
        continue;
      }
      if (v.result === 'valid') valid++;
      else if (v.result === 'acceptable') acceptable++;
      else {
        failures.push(`tcId ${v.tcId}: unexpected result '${v.result}' with a non-zero shared secret`);
        continue;
      }
      try {
        const ss = x25519Shared(priv, pub);
        if (ss.toString('hex') !== v.shared) failures.push(`tcId ${v.tcId} (${v.result}, ${v.flags.join(',')}): shared ${ss.toString('hex')}`);
      } catch (e) {
        failures.push(`tcId ${v.tcId} (${v.result}, ${v.flags.join(',')}): threw ${(e as { code?: string }).code ?? String(e)}`);
      }
      // A public key of the wrong length is refused before any arithmetic.
      if (v.result === 'valid') {
        for (const bad of [pub.subarray(0, 31), Buffer.concat([pub, Buffer.alloc(1)]), Buffer.alloc(0)]) {
          lengthChecks++;
          const c = codeOf(() => x25519Shared(priv, bad));
          if (c !== ErrorCodes.CRYPTO_LENGTH) failures.push(`tcId ${v.tcId}: ${bad.length}-byte public key gave ${c ?? 'no error'}`);
        }
      }
    }
  }
  t.same(failures, [], 'no Wycheproof X25519 vector fails');
  t.equal(valid + zero + acceptable, EXPECTED, `${EXPECTED} vectors checked`);
  t.equal(zero, EXPECTED_ZERO, `${EXPECTED_ZERO} all-zero-shared ('acceptable', LowOrderPublic) cases throw X25519_LOW_ORDER`);
  t.equal(acceptable, EXPECTED_ACCEPTABLE_NONZERO, `${EXPECTED_ACCEPTABLE_NONZERO} other 'acceptable' cases (Twist, NonCanonicalPublic) match the listed secret`);
  t.equal(lengthChecks, valid * 3, `${lengthChecks} wrong-length public keys (31, 33, 0 bytes) throw CRYPTO_LENGTH`);
});

t.test('x25519PrivateFromRaw refuses a private key of the wrong length', async (t) => {
  t.equal(codeOf(() => x25519PrivateFromRaw(Buffer.alloc(31, 1))), ErrorCodes.CRYPTO_LENGTH);
  t.equal(codeOf(() => x25519PrivateFromRaw(Buffer.alloc(33, 1))), ErrorCodes.CRYPTO_LENGTH);
});
