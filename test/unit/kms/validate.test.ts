/**
 * Pure validators: parseStatus / statusInconsistencies (C9, BC-01), parseKeyContainer
 * (C12, C18, BC-03) and key_ID rules; zeroization of every decoded buffer on discard (C32).
 */
import t from 'tap';
import { parseKeyContainer, parseStatus, statusInconsistencies } from '../../../src/kms/etsi014/validate.js';
import { isValidKeyId, normalizeKeyId } from '../../../src/kms/etsi014/key-id.js';
import * as bytes from '../../../src/util/bytes.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';

const good = {
  source_KME_ID: 'A',
  target_KME_ID: 'B',
  master_SAE_ID: 'me',
  slave_SAE_ID: 'you',
  key_size: 256,
  stored_key_count: 1,
  max_key_count: 2,
  max_key_per_request: 1,
  max_key_size: 256,
  min_key_size: 256,
  max_SAE_ID_count: 0,
};

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof QkdgwError ? e.code : 'not-a-QkdgwError';
  }
  return undefined;
}

t.test('etsi014-C9 parseStatus accepts the 11 fields, ignores unknown members, keeps status_extension', async (t) => {
  const s = parseStatus({ ...good, extra: 1, status_extension: { x: 1 } }, 'you', 'me');
  t.same(s, { ...good, status_extension: { x: 1 } });
  t.same(statusInconsistencies(s), []);
  t.same(parseStatus({ ...good, status_extension: null }, 'you'), good, 'null extension tolerated');
});

t.test('BC-01 parseStatus type and identity failures are KMS_STATUS_INVALID', async (t) => {
  const bad: Array<[string, unknown]> = [
    ['array body', [good]],
    ['null body', null],
    ['string ID as number', { ...good, source_KME_ID: 1 }],
    ['key_size "256"', { ...good, key_size: '256' }],
    ['float', { ...good, max_key_count: 2.5 }],
    ['unsafe integer', { ...good, stored_key_count: 2 ** 60 }],
    ['missing field', (({ max_SAE_ID_count: _x, ...r }) => r)(good)],
    ['status_extension array', { ...good, status_extension: [] }],
    ['slave mismatch', { ...good, slave_SAE_ID: 'YOU' }],
    ['master mismatch', { ...good, master_SAE_ID: 'not-me' }],
    ['__proto__ only', JSON.parse('{"__proto__":{"key_size":256}}')],
  ];
  for (const [name, body] of bad) t.equal(code(() => parseStatus(body, 'you', 'me')), ErrorCodes.KMS_STATUS_INVALID, name);
});

t.test('BC-01 statusInconsistencies names each broken relation', async (t) => {
  t.same(statusInconsistencies({ ...good, stored_key_count: 96000, max_key_count: 10 }), ['stored_key_count>max_key_count']);
  t.same(statusInconsistencies({ ...good, min_key_size: 512 }), ['min_key_size>max_key_size', 'key_size outside [min_key_size,max_key_size]']);
  t.same(statusInconsistencies({ ...good, max_key_per_request: 0 }), ['max_key_per_request<1']);
  t.same(statusInconsistencies({ ...good, stored_key_count: -1 }), ['stored_key_count<0']);
  t.same(statusInconsistencies({ ...good, key_size: 252, min_key_size: 64 }), ['key_size not a multiple of 8']);
});

t.test('key_ID rules: 1..64 printable ASCII, compared lower-cased', async (t) => {
  for (const ok of ['a', 'QKD-000001', '550e8400-e29b-41d4-a716-446655440000', 'x'.repeat(64), 'with space', '~!@#$%^&*()']) {
    t.ok(isValidKeyId(ok), JSON.stringify(ok));
  }
  for (const bad of ['', 'x'.repeat(65), 'tab\t', 'nl\n', 'é', '\u0000', 7, null, undefined]) t.notOk(isValidKeyId(bad), JSON.stringify(bad));
  t.equal(normalizeKeyId('ABC-def'), 'abc-def');
});

t.test('BC-03 parseKeyContainer: strict base64, exact length, exact count', async (t) => {
  const k = Buffer.alloc(32, 1).toString('base64');
  const ok = parseKeyContainer({ keys: [{ key_ID: 'a', key: k }] }, { op: 'enc_keys', count: 1, sizeBits: 256 });
  t.equal(ok[0].key.length, 32);
  ok[0].key.wipe();
  const cases: Array<[string, unknown, string]> = [
    ['16 bytes', { keys: [{ key_ID: 'a', key: 'AAECAwQFBgcICQoLDA0ODw==' }] }, ErrorCodes.KMS_KEY_INVALID],
    ['no padding', { keys: [{ key_ID: 'a', key: k.replace(/=+$/, '') }] }, ErrorCodes.KMS_KEY_INVALID],
    ['url alphabet', { keys: [{ key_ID: 'a', key: Buffer.alloc(32, 0xff).toString('base64url') }] }, ErrorCodes.KMS_KEY_INVALID],
    ['space', { keys: [{ key_ID: 'a', key: ` ${k}` }] }, ErrorCodes.KMS_KEY_INVALID],
    ['empty', { keys: [{ key_ID: 'a', key: '' }] }, ErrorCodes.KMS_KEY_INVALID],
    ['two for one', { keys: [{ key_ID: 'a', key: k }, { key_ID: 'b', key: k }] }, ErrorCodes.KMS_PROTOCOL],
    ['both keys and Keys absent', {}, ErrorCodes.KMS_PROTOCOL],
  ];
  for (const [name, body, c] of cases) t.equal(code(() => parseKeyContainer(body, { op: 'enc_keys', count: 1, sizeBits: 256 })), c, name);
  t.equal(
    code(() => parseKeyContainer({ keys: [{ key_ID: 'a', key: '' }] }, { op: 'dec_keys', count: 1, keyIds: ['a'] })),
    ErrorCodes.KMS_KEY_INVALID,
    'empty key refused even when no size is known',
  );
  const u = parseKeyContainer({ keys: [{ key_ID: 'a', key: Buffer.alloc(32, 0xff).toString('base64url') }] }, {
    op: 'enc_keys',
    count: 1,
    sizeBits: 256,
    allowBase64Url: true,
  });
  t.equal(u[0].key.length, 32, 'base64url only with the explicit flag');
});

t.test('dec_keys container must carry exactly the requested key_IDs', async (t) => {
  const k = Buffer.alloc(32, 1).toString('base64');
  const exp = { op: 'dec_keys' as const, count: 2, sizeBits: 256, keyIds: ['A', 'b'] };
  const r = parseKeyContainer({ keys: [{ key_ID: 'B', key: k }, { key_ID: 'a', key: k }] }, exp);
  t.same(
    r.map((x) => x.keyId),
    ['A', 'b'],
  );
  t.equal(code(() => parseKeyContainer({ keys: [{ key_ID: 'a', key: k }, { key_ID: 'c', key: k }] }, exp)), ErrorCodes.KMS_PROTOCOL);
});

t.test('etsi014-C32 every decoded buffer is zeroized when the container is discarded, and after copying', async (t) => {
  const decoded: Buffer[] = [];
  const { parseKeyContainer: parse } = await t.mockImport<typeof import('../../../src/kms/etsi014/validate.js')>(
    '../../../src/kms/etsi014/validate.js',
    {
      '../../../src/util/bytes.js': {
        ...bytes,
        fromB64Strict: (s: string) => {
          const b = bytes.fromB64Strict(s);
          if (b) decoded.push(b);
          return b;
        },
      },
    },
  );
  const k1 = Buffer.alloc(32, 0xaa).toString('base64');
  const k2 = Buffer.alloc(31, 0xbb).toString('base64'); // wrong length, decoded then refused
  t.throws(() => parse({ keys: [{ key_ID: 'a', key: k1 }, { key_ID: 'b', key: k2 }] }, { op: 'enc_keys', count: 2, sizeBits: 256 }), {
    code: ErrorCodes.KMS_KEY_INVALID,
  });
  t.equal(decoded.length, 2);
  for (const b of decoded) t.ok(b.every((x) => x === 0), 'zeroized on discard');

  decoded.length = 0;
  const [ok] = parse({ keys: [{ key_ID: 'a', key: k1 }] }, { op: 'enc_keys', count: 1, sizeBits: 256 });
  t.ok(decoded[0].every((x) => x === 0), 'the decode buffer is wiped once copied into SecretBytes');
  t.ok(ok.key.expose().every((x) => x === 0xaa), 'the SecretBytes holds the key');
  ok.key.wipe();
});
