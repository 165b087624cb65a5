/**
 * Status handling: checklist C5 (percent-encoded SAE IDs), C9 (clamping to advertised
 * limits) and field report BC-01 (inconsistent or mistyped status) with every variant.
 */
import t from 'tap';
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { testCerts } from './certs.js';
import { sendJson, startMockKme, statusBody, type MockKme } from './mock-kme.js';
import { mockClient, rejects } from './client-helpers.js';

const certs = testCerts();

const client = (t: { teardown(fn: () => unknown): void }, kme: MockKme, over: Partial<Etsi014ClientOptions> = {}) => mockClient(t, kme, '1', over);


/** The exact body of BC-01 (thomasarmel/qkd_kme_server issue #1). */
const BC01 = {
  source_KME_ID: '1',
  target_KME_ID: '2',
  master_SAE_ID: '1',
  slave_SAE_ID: '3',
  key_size: 256,
  stored_key_count: 96000,
  max_key_count: 10,
  max_key_per_request: 1,
  max_key_size: 256,
  min_key_size: 256,
  max_SAE_ID_count: 0,
};

/** A KME answering `status` with `body` and enc_keys with as many 32-byte keys as asked. */
async function kmeWith(t: Parameters<typeof startMockKme>[0], body: unknown): Promise<MockKme> {
  const kme = await startMockKme(t);
  let n = 0;
  kme.handler = (req, res) => {
    if (req.url.endsWith('/status')) return sendJson(res, 200, body);
    const { number: want, size } = req.json as { number: number; size: number };
    sendJson(res, 200, {
      keys: Array.from({ length: want }, () => ({ key_ID: `k-${++n}`, key: Buffer.alloc(size / 8, n).toString('base64') })),
    });
  };
  return kme;
}

t.test('BC-01 stored_key_count > max_key_count: one warning naming the fields, requests clamped to max_key_per_request=1', async (t) => {
  const kme = await kmeWith(t, BC01);
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  const s = await c.status('3');
  t.equal(s.stored_key_count, 96000, 'status returned as advisory, not fatal');
  await c.status('3');
  const warns = log.lines.filter((l) => l.level === 'warn');
  t.equal(warns.length, 1, 'logged once, not on every read');
  t.match(String(warns[0].msg), /stored_key_count>max_key_count/);
  t.same(warns[0].inconsistent, ['stored_key_count>max_key_count']);

  const keys = await c.getKeys('3', { number: 5, sizeBits: 256 });
  t.equal(keys.length, 1, 'asked for 5, clamped to max_key_per_request');
  t.same(kme.requests.at(-1)?.json, { number: 1, size: 256 }, 'never asks more than max_key_per_request');
  keys.forEach((k) => k.key.wipe());

  const e = await rejects(c.getKeys('3', { number: 1, sizeBits: 512 }));
  t.equal(e.code, ErrorCodes.KMS_CONFIG, 'a size outside [min,max] is never asked');
  t.match(e.message, /512 bits is outside .*min_key_size=256, max_key_size=256/);
  t.equal(kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length, 1, 'nothing sent for it');
});

t.test('BC-01 variant: key_size given as the string "256" -> KMS_STATUS_INVALID', async (t) => {
  const kme = await kmeWith(t, { ...BC01, key_size: '256' });
  const c = client(t, kme);
  const e = await rejects(c.status('3'));
  t.equal(e.code, ErrorCodes.KMS_STATUS_INVALID);
  t.match(e.message, /key_size is not an integer/);
  t.equal(c.lastStatus('3'), undefined, 'an invalid status is not cached');
});

t.test('BC-01 variant: non-integer numbers (256.5, 1e400, null, missing) -> KMS_STATUS_INVALID', async (t) => {
  for (const [field, value] of [
    ['max_key_per_request', 256.5],
    ['stored_key_count', null],
    ['max_key_count', true],
  ] as const) {
    const kme = await kmeWith(t, { ...BC01, [field]: value });
    const e = await rejects(client(t, kme).status('3'));
    t.equal(e.code, ErrorCodes.KMS_STATUS_INVALID, `${field}=${JSON.stringify(value)}`);
    t.match(e.message, new RegExp(field));
  }
  const kme = await startMockKme(t);
  kme.handler = (_r, res) => sendJson(res, 200, JSON.stringify(BC01).replace('"key_size":256', '"key_size":1e400'));
  t.equal((await rejects(client(t, kme).status('3'))).code, ErrorCodes.KMS_STATUS_INVALID, 'key_size=1e400 (Infinity)');
  const { min_key_size: _drop, ...missing } = BC01;
  const kme2 = await kmeWith(t, missing);
  const e2 = await rejects(client(t, kme2).status('3'));
  t.equal(e2.code, ErrorCodes.KMS_STATUS_INVALID);
  t.match(e2.message, /min_key_size is missing/);
});

t.test('BC-01 variant: max_key_per_request = 0 -> warned, and no key is ever requested', async (t) => {
  const kme = await kmeWith(t, { ...BC01, stored_key_count: 5, max_key_per_request: 0 });
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  await c.status('3');
  t.match(String(log.lines.find((l) => l.level === 'warn')?.msg), /max_key_per_request<1/);
  const e = await rejects(c.getKeys('3', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_CONFIG);
  t.match(e.message, /max_key_per_request=0/);
  t.equal(kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length, 0);
});

t.test('BC-01 variant: min_key_size 512 > max_key_size 256 -> warned, no size can be asked', async (t) => {
  const kme = await kmeWith(t, { ...BC01, stored_key_count: 5, min_key_size: 512, max_key_size: 256 });
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  await c.status('3');
  const w = log.lines.filter((l) => l.level === 'warn');
  t.equal(w.length, 1);
  t.match(String(w[0].msg), /min_key_size>max_key_size/);
  for (const size of [256, 512]) {
    t.equal((await rejects(c.getKeys('3', { number: 1, sizeBits: size }))).code, ErrorCodes.KMS_CONFIG, `size ${size}`);
  }
  t.equal(kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length, 0);
});

t.test('BC-01 variant: slave_SAE_ID not the one we asked for -> KMS_STATUS_INVALID (blocks rotation)', async (t) => {
  const kme = await kmeWith(t, { ...BC01, slave_SAE_ID: '4' });
  const c = client(t, kme);
  const e = await rejects(c.status('3'));
  t.equal(e.code, ErrorCodes.KMS_STATUS_INVALID);
  t.match(e.message, /slave_SAE_ID "4" is not the requested slave "3"/);
  // and a getKeys that needs the status (no explicit size) fails the same way, sending no enc_keys
  t.equal((await rejects(c.getKeys('3'))).code, ErrorCodes.KMS_STATUS_INVALID);
  t.equal(kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length, 0);
});

t.test('status with master_SAE_ID other than our SAE ID -> KMS_STATUS_INVALID', async (t) => {
  const kme = await kmeWith(t, { ...BC01, master_SAE_ID: 'someone-else' });
  const e = await rejects(client(t, kme).status('3'));
  t.equal(e.code, ErrorCodes.KMS_STATUS_INVALID);
  t.match(e.message, /master_SAE_ID/);
});

t.test('etsi014-C9 consistent status: no warning; number above max_key_per_request is clamped; default size = key_size', async (t) => {
  const kme = await kmeWith(t, statusBody({ master_SAE_ID: '1', slave_SAE_ID: 'B', max_key_per_request: 2, key_size: 256 }));
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  await c.status('B');
  t.equal(log.lines.filter((l) => l.level === 'warn').length, 0);
  const keys = await c.getKeys('B', { number: 3 });
  t.equal(keys.length, 2);
  t.same(kme.requests.at(-1)?.json, { number: 2, size: 256 });
  keys.forEach((k) => k.key.wipe());
});

t.test('etsi014-C9 getKeys without a size and without a cached status reads status first', async (t) => {
  const kme = await kmeWith(t, statusBody({ master_SAE_ID: '1', slave_SAE_ID: 'B', key_size: 512, max_key_size: 1024 }));
  const c = client(t, kme);
  const [k] = await c.getKeys('B');
  t.equal(k.key.length, 64);
  k.key.wipe();
  t.same(
    kme.requests.map((r) => r.method + ' ' + r.url),
    ['GET /api/v1/keys/B/status', 'POST /api/v1/keys/B/enc_keys'],
  );
});

t.test('etsi014-C5 SAE IDs with "/", space, "%" and ".." are percent-encoded path segments', async (t) => {
  const kme = await startMockKme(t);
  const seen: string[] = [];
  kme.handler = (req, res) => {
    seen.push(req.url);
    const m = /^\/api\/v1\/keys\/([^/]+)\/status$/.exec(req.url);
    const slave = m ? decodeURIComponent(m[1]) : '?';
    sendJson(res, 200, statusBody({ master_SAE_ID: '1', slave_SAE_ID: slave }));
  };
  const c = client(t, kme);
  for (const id of ['a/b', 'SAE B', '50%', '..', 'é-ü', 'q?x#y']) {
    const s = await c.status(id);
    t.equal(s.slave_SAE_ID, id, `round trip ${JSON.stringify(id)}`);
  }
  t.same(seen, [
    '/api/v1/keys/a%2Fb/status',
    '/api/v1/keys/SAE%20B/status',
    '/api/v1/keys/50%25/status',
    '/api/v1/keys/%2E%2E/status',
    '/api/v1/keys/%C3%A9-%C3%BC/status',
    '/api/v1/keys/q%3Fx%23y/status',
  ]);
});

t.test('A18 base URL prefix is configurable (and a trailing slash is ignored)', async (t) => {
  const kme = await kmeWith(t, statusBody({ master_SAE_ID: '1', slave_SAE_ID: 'B' }));
  const c = client(t, kme, { baseUrl: kme.url.replace('/api/v1', '/v1/') });
  await c.status('B');
  t.equal(kme.requests[0].url, '/v1/keys/B/status');
});
