/**
 * enc_keys / dec_keys containers: checklist C12, C18, C32, ambiguities A1, A2, A9 and
 * field report BC-03 (every variant). Decision for BC-03 (e): a container with more keys
 * than requested is rejected as a whole (see src/kms/etsi014/validate.ts).
 */
import t from 'tap';
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { testCerts } from './certs.js';
import { sendJson, startMockKme, type MockKme } from './mock-kme.js';
import { mockClient, rejects } from './client-helpers.js';

const certs = testCerts();
const K32 = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff));
const K32_B64 = K32.toString('base64');
const UUID = '9b1f3c2e-0000-4000-8000-00000000a001';

const client = (t: { teardown(fn: () => unknown): void }, kme: MockKme, over: Partial<Etsi014ClientOptions> = {}) => mockClient(t, kme, 'SAE_A', over);


/** A KME whose enc_keys/dec_keys answer is `body` (200). */
async function answering(t: Parameters<typeof startMockKme>[0], body: unknown): Promise<MockKme> {
  const kme = await startMockKme(t);
  kme.handler = (_req, res) => sendJson(res, 200, body);
  return kme;
}

t.test('etsi014-C12 POST number N returns N keys with unique key_IDs of size/8 bytes', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = (req, res) => {
    const { number, size } = req.json as { number: number; size: number };
    sendJson(res, 200, {
      keys: Array.from({ length: number }, (_, i) => ({
        key_ID: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        key: Buffer.alloc(size / 8, i + 1).toString('base64'),
        key_ID_extension: null,
        key_extension: { note: 'ok' },
      })),
      key_container_extension: {},
    });
  };
  const keys = await client(t, kme).getKeys('SAE_B', { number: 3, sizeBits: 512 });
  t.equal(keys.length, 3);
  t.same(new Set(keys.map((k) => k.keyId)).size, 3);
  for (const [i, k] of keys.entries()) {
    t.equal(k.key.length, 64);
    t.equal(k.key.expose()[0], i + 1);
    k.key.wipe();
  }
  t.same(kme.requests[0].json, { number: 3, size: 512 });
  t.equal(kme.requests[0].url, '/api/v1/keys/SAE_B/enc_keys');
});

t.test('BC-03 (a) 16 bytes returned for a 256-bit request -> KMS_KEY_INVALID', async (t) => {
  const kme = await answering(t, { keys: [{ key_ID: UUID, key: 'AAECAwQFBgcICQoLDA0ODw==' }] });
  const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_KEY_INVALID);
  t.match(e.message, /is 16 bytes, expected 32/);
});

t.test('BC-03 (b) base64url without padding -> KMS_KEY_INVALID unless allowBase64Url', async (t) => {
  // pick a key whose base64 has both '+' and '/' so the url form differs in alphabet and padding
  const k = Buffer.alloc(32, 0xfb);
  k[31] = 0xff;
  const url = k.toString('base64url');
  t.match(url, /[-_]/);
  t.notMatch(url, /=/);
  const kme = await answering(t, { keys: [{ key_ID: UUID, key: url }] });
  const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_KEY_INVALID);
  t.match(e.message, /not canonical RFC 4648 base64/);
  const [ok] = await client(t, kme, { allowBase64Url: true }).getKeys('SAE_B', { number: 1, sizeBits: 256 });
  t.ok(ok.key.expose().equals(k), 'explicit opt-in decodes it');
  ok.key.wipe();
});

t.test('BC-03 (c) embedded space or newline in the key -> KMS_KEY_INVALID', async (t) => {
  for (const bad of [`${K32_B64.slice(0, 10)} ${K32_B64.slice(10)}`, `${K32_B64.slice(0, 20)}\n${K32_B64.slice(20)}`, `${K32_B64}\n`]) {
    const kme = await answering(t, { keys: [{ key_ID: UUID, key: bad }] });
    const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
    t.equal(e.code, ErrorCodes.KMS_KEY_INVALID, JSON.stringify(bad.slice(8, 24)));
  }
});

t.test('BC-03 (d) empty key -> KMS_KEY_INVALID', async (t) => {
  const kme = await answering(t, { keys: [{ key_ID: UUID, key: '' }] });
  const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_KEY_INVALID);
  t.match(e.message, /0 bytes/);
});

t.test('BC-03 (e) two keys when one was requested -> whole response rejected (KMS_PROTOCOL)', async (t) => {
  const kme = await answering(t, {
    keys: [
      { key_ID: UUID, key: K32_B64 },
      { key_ID: 'another', key: K32_B64 },
    ],
  });
  const log = new MemoryLogger();
  const e = await rejects(client(t, kme, { logger: log }).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_PROTOCOL);
  t.match(e.message, /2 entries, 1 requested/);
  t.ok(log.lines.some((l) => l.level === 'error' && /rejected and zeroized/.test(String(l.msg))), 'alarm logged');
});

t.test('BC-03 (f) 400 "unsupported size: 256" -> configuration error naming the size', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = (_req, res) => sendJson(res, 400, { message: 'unsupported size: 256' });
  const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_CONFIG);
  t.match(e.message, /key size 256 bits/);
  t.match(e.message, /unsupported size: 256/);
  t.equal(e.details?.status, 400);
  t.equal(e.details?.retryable, false);
});

t.test('etsi014-C18 short 200 (fewer keys than asked, A5 thomasarmel) -> KMS_PROTOCOL, never used', async (t) => {
  const kme = await answering(t, { keys: [{ key_ID: UUID, key: K32_B64 }] });
  const e = await rejects(client(t, kme).getKeys('SAE_B', { number: 2, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_PROTOCOL);
  t.match(e.message, /1 entries, 2 requested/);
});

t.test('etsi014-C18 structural violations are each rejected', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['empty keys', { keys: [] }, ErrorCodes.KMS_PROTOCOL],
    ['keys missing', { key: K32_B64 }, ErrorCodes.KMS_PROTOCOL],
    ['keys not an array', { keys: { key_ID: UUID, key: K32_B64 } }, ErrorCodes.KMS_PROTOCOL],
    ['body an array', [{ key_ID: UUID, key: K32_B64 }], ErrorCodes.KMS_PROTOCOL],
    ['entry not an object', { keys: [K32_B64, K32_B64] }, ErrorCodes.KMS_PROTOCOL],
    ['duplicate key_ID (case-insensitive)', { keys: [{ key_ID: 'ABC', key: K32_B64 }, { key_ID: 'abc', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key_ID missing', { keys: [{ key: K32_B64 }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key_ID empty', { keys: [{ key_ID: '', key: K32_B64 }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key_ID 65 chars', { keys: [{ key_ID: 'a'.repeat(65), key: K32_B64 }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key_ID non-ASCII', { keys: [{ key_ID: 'clé', key: K32_B64 }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key_ID a number', { keys: [{ key_ID: 7, key: K32_B64 }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
    ['key not a string', { keys: [{ key_ID: 'y', key: [1, 2] }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_KEY_INVALID],
    ['non-canonical padding bits', { keys: [{ key_ID: 'y', key: K32_B64 }, { key_ID: 'x', key: `${K32_B64.slice(0, 42)}B=` }] }, ErrorCodes.KMS_KEY_INVALID],
    ['second key wrong length', { keys: [{ key_ID: 'y', key: K32_B64 }, { key_ID: 'x', key: Buffer.alloc(31).toString('base64') }] }, ErrorCodes.KMS_KEY_INVALID],
    ['key_extension a string', { keys: [{ key_ID: 'y', key: K32_B64, key_extension: 'x' }, { key_ID: 'x', key: K32_B64 }] }, ErrorCodes.KMS_PROTOCOL],
  ];
  const kme = await startMockKme(t);
  let body: unknown;
  kme.handler = (_req, res) => sendJson(res, 200, body);
  const c = client(t, kme);
  for (const [name, b, code] of cases) {
    body = b;
    const e = await rejects(c.getKeys('SAE_B', { number: 2, sizeBits: 256 }));
    t.equal(e.code, code, `${name}: ${e.message}`);
  }
});

t.test('A2 a container using "Keys" (capital K, spec table T11) is read', async (t) => {
  const kme = await answering(t, { Keys: [{ key_ID: UUID, key: K32_B64 }] });
  const [k] = await client(t, kme).getKeys('SAE_B', { number: 1, sizeBits: 256 });
  t.ok(k.key.expose().equals(K32));
  k.key.wipe();
});

t.test('dec_keys: master SAE in the path, key_IDs as objects, returned ID must be the requested one', async (t) => {
  const kme = await startMockKme(t);
  let reply: unknown = { keys: [{ key_ID: UUID.toUpperCase(), key: K32_B64 }] };
  kme.handler = (_req, res) => sendJson(res, 200, reply);
  const c = client(t, kme);
  const [k] = await c.getKeysWithIds('SAE_MASTER', [UUID], { sizeBits: 256 });
  t.equal(k.keyId, UUID, 'compared case-insensitively, returned as requested');
  t.ok(k.key.expose().equals(K32));
  k.key.wipe();
  t.equal(kme.requests[0].url, '/api/v1/keys/SAE_MASTER/dec_keys');
  t.equal(kme.requests[0].method, 'POST');
  t.equal(kme.requests[0].headers['content-type'], 'application/json');
  t.same(kme.requests[0].json, { key_IDs: [{ key_ID: UUID }] });

  reply = { keys: [{ key_ID: 'ffffffff-0000-4000-8000-000000000001', key: K32_B64 }] };
  const e = await rejects(c.getKeysWithIds('SAE_MASTER', [UUID], { sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_PROTOCOL);
  t.match(e.message, /not the requested/);

  reply = { keys: [{ key_ID: UUID, key: Buffer.alloc(16).toString('base64') }] };
  t.equal((await rejects(c.getKeysWithIds('SAE_MASTER', [UUID], { sizeBits: 256 }))).code, ErrorCodes.KMS_KEY_INVALID);
});

t.test('A9 dec_keys de-duplicates key_IDs before sending; order of the reply follows the request', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = (_req, res) =>
    sendJson(res, 200, {
      keys: [
        { key_ID: 'b', key: Buffer.alloc(32, 2).toString('base64') },
        { key_ID: 'a', key: Buffer.alloc(32, 1).toString('base64') },
      ],
    });
  const keys = await client(t, kme).getKeysWithIds('M', ['a', 'A', 'b', 'a'], { sizeBits: 256 });
  t.same(kme.requests[0].json, { key_IDs: [{ key_ID: 'a' }, { key_ID: 'b' }] });
  t.same(
    keys.map((k) => [k.keyId, k.key.expose()[0]]),
    [
      ['a', 1],
      ['b', 2],
    ],
  );
  keys.forEach((k) => k.key.wipe());
});

t.test('dec_keys refuses bad key_IDs locally, sending nothing', async (t) => {
  const kme = await answering(t, {});
  const c = client(t, kme);
  for (const ids of [[], [''], ['a'.repeat(65)], ['tab\there'], ['ü']]) {
    t.equal((await rejects(c.getKeysWithIds('M', ids))).code, ErrorCodes.KMS_REQUEST, JSON.stringify(ids));
  }
  t.equal(kme.requests.length, 0);
});

t.test('A1 decKeysPathSae "self" puts our own SAE ID in the dec_keys path (Cerberis quirk)', async (t) => {
  const kme = await answering(t, { keys: [{ key_ID: UUID, key: K32_B64 }] });
  const [k] = await client(t, kme, { decKeysPathSae: 'self' }).getKeysWithIds('SAE_MASTER', [UUID], { sizeBits: 256 });
  k.key.wipe();
  t.equal(kme.requests[0].url, '/api/v1/keys/SAE_A/dec_keys');
  t.throws(() => client(t, kme, { decKeysPathSae: 'slave' as 'self' }), { code: ErrorCodes.KMS_CONFIG });
});

t.test('etsi014-C32 key bytes never appear in logs, error messages or error details', async (t) => {
  const b64 = K32_B64;
  const hex = K32.toString('hex');
  const kme = await startMockKme(t);
  let body: unknown;
  kme.handler = (_req, res) => sendJson(res, 200, body);
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  const errors: QkdgwError[] = [];
  const bodies: unknown[] = [
    { keys: [{ key_ID: UUID, key: b64 }, { key_ID: UUID, key: b64 }] }, // count mismatch
    { keys: [{ key_ID: UUID, key: b64 }, { key_ID: 'x', key: b64.slice(0, -4) }] }, // short second key
    { keys: [{ key_ID: UUID, key: b64 }, { key_ID: 'x', key: ` ${b64}` }] }, // whitespace
    { keys: [{ key_ID: UUID, key: b64 }, { key_ID: UUID.toUpperCase(), key: b64 }] }, // duplicate IDs
  ];
  for (const b of bodies) {
    body = b;
    errors.push(await rejects(c.getKeys('SAE_B', { number: 2, sizeBits: 256 })));
  }
  body = { keys: [{ key_ID: UUID, key: b64 }] };
  const [ok] = await c.getKeys('SAE_B', { number: 1, sizeBits: 256 });
  t.equal(String(ok.key), 'SecretBytes(32)', 'the key prints as its length only');
  t.equal(JSON.stringify(ok), JSON.stringify({ keyId: UUID, key: 'SecretBytes(32)' }));
  ok.key.wipe();
  t.ok(ok.key.wiped);

  const haystack = JSON.stringify(log.lines) + errors.map((e) => `${e.message} ${JSON.stringify(e.details)} ${e.stack}`).join('\n');
  t.ok(log.lines.length > 0 && errors.length === 4);
  for (const needle of [b64, b64.slice(0, 16), hex, hex.slice(0, 16)]) t.notOk(haystack.includes(needle), `no ${needle.slice(0, 6)}...`);
  t.ok(haystack.includes(UUID), 'key_IDs are logged');
});
