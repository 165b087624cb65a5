// protocol.md s5: nonce = iv XOR (zeros || u64 counter) in the last 8 bytes; s3.5 vector row.
import t from 'tap';
import { nonce } from '../../../src/crypto/nonce.js';
import { isQkdgwError, ErrorCodes } from '../../../src/errors.js';
import { caught } from './helpers.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ivI2R = Buffer.from('82e63e59c6cc75c932a5f3f1', 'hex');

t.test('s3.5 vector: nonce, iv i2r, counter 1', async (t) => {
  t.equal(hex(nonce(ivI2R, 1)), '82e63e59c6cc75c932a5f3f0');
  t.equal(hex(ivI2R), '82e63e59c6cc75c932a5f3f1', 'iv untouched');
});

t.test('counter 0 is the iv itself, fresh buffer', async (t) => {
  const n = nonce(ivI2R, 0);
  t.equal(hex(n), hex(ivI2R));
  n[0] ^= 1;
  t.equal(hex(ivI2R), '82e63e59c6cc75c932a5f3f1');
});

t.test('counter goes big-endian into the last 8 bytes, 12 and 24 byte IVs', async (t) => {
  const rows: Array<[number, number, string]> = [
    [12, 0x0102030405, '0000000000000001' + '02030405'],
    [12, 2 ** 53 - 1, '00000000001fffffffffffff'],
    [24, 1, '000000000000000000000000000000000000000000000001'],
    [24, 2 ** 32, '000000000000000000000000000000000000000100000000'],
  ];
  for (const [len, c, want] of rows) t.equal(hex(nonce(Buffer.alloc(len), c)), want.padStart(len * 2, '0'), `len ${len} counter ${c}`);
  const iv24 = Buffer.alloc(24, 0xff);
  t.equal(hex(nonce(iv24, 1)), 'ff'.repeat(23) + 'fe', 'XOR, not overwrite');
  t.equal(hex(nonce(iv24, 2 ** 40)).slice(0, 32), 'ff'.repeat(16), 'first 16 bytes of a 24-byte iv never change');
});

t.test('writes into out and returns the iv-length view', async (t) => {
  const out = Buffer.alloc(30, 0xaa);
  const n = nonce(ivI2R, 1, out);
  t.equal(n.length, 12);
  t.equal(n.buffer, out.buffer);
  t.equal(hex(out.subarray(0, 12)), '82e63e59c6cc75c932a5f3f0');
  t.equal(out[12], 0xaa, 'bytes past the nonce untouched');
});

t.test('rejects bad inputs with typed errors', async (t) => {
  const bad: Array<[string, () => unknown, string]> = [
    ['iv 8 bytes', () => nonce(Buffer.alloc(8), 0), ErrorCodes.CRYPTO_LENGTH],
    ['iv 16 bytes', () => nonce(Buffer.alloc(16), 0), ErrorCodes.CRYPTO_LENGTH],
    ['negative counter', () => nonce(ivI2R, -1), ErrorCodes.INTERNAL],
    ['fractional counter', () => nonce(ivI2R, 1.5), ErrorCodes.INTERNAL],
    ['counter 2^53', () => nonce(ivI2R, 2 ** 53), ErrorCodes.INTERNAL],
    ['out too small', () => nonce(ivI2R, 0, Buffer.alloc(11)), ErrorCodes.CRYPTO_LENGTH],
    ['out aliases iv', () => nonce(ivI2R, 0, ivI2R), ErrorCodes.INTERNAL],
  ];
  for (const [name, f, code] of bad) {
    const e = caught(f);
    t.ok(isQkdgwError(e, code as never), `${name}: ${(e as Error)?.message}`);
  }
});
