// BC-10: ML-KEM-768 input validation; the modulus check and the length check are separate.
import t from 'tap';
import { mlkemKeygen, mlkemEncapsulate, mlkemDecapsulate, mlkemCheckEk } from '../../../src/crypto/mlkem.js';

t.test('BC-10 (a): a 1,184-byte ek whose first coefficient is 4095 fails the modulus check', async (t) => {
  const { ek } = mlkemKeygen();
  const bad = Buffer.from(ek);
  bad[0] = 0xff;
  bad[1] = (bad[1] & 0xf0) | 0x0f;
  t.equal(bad.length, 1184, 'right length: only the modulus is wrong');
  t.equal(mlkemCheckEk(bad), false);
  t.throws(() => mlkemEncapsulate(bad), { code: 'QKDGW_E_MLKEM_BAD_KEY', message: /modulus/ });
  t.equal(mlkemCheckEk(ek), true, 'the untouched key passes');
});

t.test('BC-10 (b): ek of 1,183 and 1,185 bytes', async (t) => {
  const { ek } = mlkemKeygen();
  for (const len of [1183, 1185]) {
    const e = Buffer.alloc(len);
    ek.copy(e, 0, 0, Math.min(len, ek.length));
    t.equal(mlkemCheckEk(e), false);
    t.throws(() => mlkemEncapsulate(e), { code: 'QKDGW_E_MLKEM_BAD_KEY', message: /1184 bytes/ }, `${len} bytes`);
  }
});

t.test('BC-10 (c): ct of 1,087 and 1,089 bytes', async (t) => {
  const { ek, dk } = mlkemKeygen();
  const { ct } = mlkemEncapsulate(ek);
  for (const len of [1087, 1089]) {
    const c = Buffer.alloc(len);
    ct.copy(c, 0, 0, Math.min(len, ct.length));
    t.throws(() => mlkemDecapsulate(c, dk), { code: 'QKDGW_E_MLKEM_BAD_CIPHERTEXT' }, `${len} bytes`);
  }
});

t.test('BC-10 (d): one flipped bit in a valid ct does not throw (implicit rejection) and gives another secret', async (t) => {
  const { ek, dk } = mlkemKeygen();
  const { ct, ss } = mlkemEncapsulate(ek);
  t.same(mlkemDecapsulate(ct, dk), ss, 'round trip');
  const bad = Buffer.from(ct);
  bad[100] ^= 0x04;
  let out: Buffer | undefined;
  t.doesNotThrow(() => (out = mlkemDecapsulate(bad, dk)));
  t.notSame(out, ss, 'a pseudo-random secret: key confirmation with the peer must fail');
});
