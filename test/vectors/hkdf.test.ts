// Issue 3: HKDF-SHA-256 (src/crypto/hkdf.ts, RFC 5869) against Wycheproof hkdf_sha256_test.
import t from 'tap';
import { hkdfExpand, hkdfExtract } from '../../src/crypto/hkdf.js';
import { ErrorCodes } from '../../src/errors.js';
import { codeOf, hex, loadVectors, skipReason, type WycheproofFile, type WycheproofTest } from './load.js';

interface HkdfGroup { keySize: number; tests: (WycheproofTest & { ikm: string; salt: string; info: string; size: number; okm: string })[] }

const WP = 'wycheproof/hkdf_sha256_test.json.gz';
const EXPECTED = 86;

t.test('Wycheproof hkdf_sha256_test: extract then expand', { skip: skipReason(WP) }, async (t) => {
  const f = loadVectors<WycheproofFile<HkdfGroup>>(WP);
  const failures: string[] = [];
  let valid = 0;
  let invalid = 0;
  for (const g of f.testGroups) {
    for (const v of g.tests) {
      const prk = hkdfExtract(hex(v.salt), hex(v.ikm));
      if (v.result === 'valid') {
        valid++;
        try {
          const okm = hkdfExpand(prk, hex(v.info), v.size);
          if (okm.toString('hex') !== v.okm.toLowerCase()) failures.push(`tcId ${v.tcId}: okm mismatch`);
        } catch (e) {
          failures.push(`tcId ${v.tcId}: threw ${(e as { code?: string }).code ?? String(e)}`);
        }
      } else {
        // Only SizeTooLarge (L > 255*32) is invalid in this file.
        invalid++;
        const c = codeOf(() => hkdfExpand(prk, hex(v.info), v.size));
        if (c !== ErrorCodes.CRYPTO_LENGTH) failures.push(`tcId ${v.tcId} (${v.flags.join(',')}, size ${v.size}): gave ${c ?? 'no error'}`);
      }
    }
  }
  t.same(failures, [], 'no Wycheproof HKDF-SHA-256 vector fails');
  t.equal(valid + invalid, EXPECTED, `${EXPECTED} vectors checked (${valid} valid, ${invalid} invalid)`);
  t.ok(invalid > 0, 'SizeTooLarge cases present');
});
