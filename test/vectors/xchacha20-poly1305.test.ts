// Issue 3: XChaCha20-Poly1305 backend (src/crypto/backends/xchacha.ts) against Wycheproof.
import t from 'tap';
import { xchacha } from '../../src/crypto/backends/xchacha.js';
import { ErrorCodes } from '../../src/errors.js';
import { codeOf, hex, loadVectors, skipReason, type WycheproofFile, type WycheproofTest } from './load.js';

interface WpAeadGroup { keySize: number; ivSize: number; tagSize: number; tests: (WycheproofTest & { key: string; iv: string; aad: string; msg: string; ct: string; tag: string })[] }

const WP = 'wycheproof/xchacha20_poly1305_test.json.gz';
const EXPECTED = 306; // ivSize 192, tagSize 128
const EXPECTED_OTHER_NONCE = 9; // groups with 0..256-bit nonces: not expressible, must be refused

t.test('Wycheproof xchacha20_poly1305_test: 192-bit nonce, 128-bit tag', { skip: skipReason(WP) }, async (t) => {
  const f = loadVectors<WycheproofFile<WpAeadGroup>>(WP);
  const failures: string[] = [];
  let valid = 0;
  let invalid = 0;
  for (const g of f.testGroups) {
    if (g.keySize !== 256 || g.ivSize !== 192 || g.tagSize !== 128) continue;
    for (const v of g.tests) {
      const aead = xchacha(hex(v.key));
      const iv = hex(v.iv);
      const aad = hex(v.aad);
      const msg = hex(v.msg);
      const sealed = Buffer.concat([hex(v.ct), hex(v.tag)]);
      if (v.result === 'valid') {
        valid++;
        const s = aead.seal(iv, msg, aad);
        if (!s.equals(sealed)) failures.push(`tcId ${v.tcId}: seal gave ${s.toString('hex')}`);
        const o = aead.open(iv, sealed, aad);
        if (!o || !o.equals(msg)) failures.push(`tcId ${v.tcId}: open of a valid vector gave ${o ? 'other plaintext' : 'null'}`);
        if (aead.open(iv, sealed.subarray(0, sealed.length - 1), aad) !== null) failures.push(`tcId ${v.tcId}: 15-byte tag accepted`);
      } else {
        invalid++;
        if (aead.open(iv, sealed, aad) !== null) failures.push(`tcId ${v.tcId} (${v.result}, ${v.flags.join(',')}): open returned plaintext`);
      }
      aead.destroy();
    }
  }
  t.same(failures, [], 'no Wycheproof XChaCha20-Poly1305 vector fails');
  t.equal(valid + invalid, EXPECTED, `${EXPECTED} vectors checked (${valid} valid, ${invalid} invalid)`);
  t.ok(valid > 0 && invalid > 0, 'both valid and invalid vectors present');
});

t.test('Wycheproof xchacha20_poly1305_test: groups with other nonce sizes are refused (CRYPTO_LENGTH)', { skip: skipReason(WP) }, async (t) => {
  const f = loadVectors<WycheproofFile<WpAeadGroup>>(WP);
  const failures: string[] = [];
  const sizes: number[] = [];
  for (const g of f.testGroups) {
    if (g.ivSize === 192) continue;
    for (const v of g.tests) {
      sizes.push(g.ivSize);
      const aead = xchacha(hex(v.key));
      const c1 = codeOf(() => aead.open(hex(v.iv), Buffer.concat([hex(v.ct), hex(v.tag)]), hex(v.aad)));
      const c2 = codeOf(() => aead.seal(hex(v.iv), hex(v.msg), hex(v.aad)));
      if (c1 !== ErrorCodes.CRYPTO_LENGTH || c2 !== ErrorCodes.CRYPTO_LENGTH) failures.push(`tcId ${v.tcId} (ivSize ${g.ivSize}): open -> ${c1}, seal -> ${c2}`);
    }
  }
  t.same(failures, [], 'the interface cannot express these nonces: both directions refuse them');
  t.equal(sizes.length, EXPECTED_OTHER_NONCE, `${EXPECTED_OTHER_NONCE} vectors (nonce bits ${sizes.join(',')}) not run as AEAD vectors`);
});
