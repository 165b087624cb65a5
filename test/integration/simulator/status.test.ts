import t from 'tap';
import { startHarness, msFor } from './harness.js';
import { startKmeSimulator } from '../../../src/kms/simulator/index.js';
import { ErrorCodes } from '../../../src/errors.js';
import { makeTestPki } from '../../helpers/pki.js';

const INT_FIELDS = ['key_size', 'stored_key_count', 'max_key_count', 'max_key_per_request', 'max_key_size', 'min_key_size', 'max_SAE_ID_count'];
const STR_FIELDS = ['source_KME_ID', 'target_KME_ID', 'master_SAE_ID', 'slave_SAE_ID'];

t.test('etsi014-S7 status returns all 11 fields at the T9 types, caller as master and path as slave', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 7 } });
  const a = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status');
  t.equal(a.status, 200);
  t.equal(a.headers['content-type'], 'application/json');
  t.same(Object.keys(a.json).sort(), [...STR_FIELDS, ...INT_FIELDS].sort(), 'exactly the 11 required fields');
  for (const f of STR_FIELDS) t.type(a.json[f], 'string', f);
  for (const f of INT_FIELDS) t.ok(Number.isSafeInteger(a.json[f]), `${f} is an integer`);
  t.match(a.json, {
    source_KME_ID: 'KME_A',
    target_KME_ID: 'KME_B',
    master_SAE_ID: 'gw-a',
    slave_SAE_ID: 'gw-b',
    key_size: 256,
    stored_key_count: 7,
    max_key_count: 1000,
    max_key_per_request: 128,
    max_key_size: 1024,
    min_key_size: 64,
    max_SAE_ID_count: 0,
  });
  // The reverse direction, asked at the other KME, sees the same link pool.
  const b = await h.call(1, 'gw-c', 'GET', '/keys/gw-a/status');
  t.match(b.json, { source_KME_ID: 'KME_B', target_KME_ID: 'KME_A', master_SAE_ID: 'gw-c', slave_SAE_ID: 'gw-a', stored_key_count: 7 });
});

t.test('etsi014-S8 0 <= stored_key_count <= max_key_count as the link fills and drains; limits consistent', async (t) => {
  const h = await startHarness(t, {
    link: { keyRateBps: 1000, maxKeyCount: 10, keySizeBits: 128, minKeySizeBits: 64, maxKeySizeBits: 512, maxKeyPerRequest: 4 },
  });
  const stored = async (kme: 0 | 1 = 0) =>
    (await h.call(kme, kme === 0 ? 'gw-a' : 'gw-b', 'GET', `/keys/${kme === 0 ? 'gw-b' : 'gw-a'}/status`)).json;
  t.equal((await stored()).stored_key_count, 0, 'empty at start');
  h.clock.advance(127); // 127 bits: not yet a whole 128-bit key
  t.equal((await stored()).stored_key_count, 0);
  h.clock.advance(1);
  t.equal((await stored()).stored_key_count, 1, 'a key after 128 ms at 1000 bit/s');
  h.clock.advance(msFor(3, 128, 1000));
  t.equal((await stored(1)).stored_key_count, 4, 'both KMEs see the same pool');
  h.clock.advance(3_600_000);
  const full = await stored();
  t.equal(full.stored_key_count, 10, 'capped at max_key_count after an hour');
  t.ok(full.min_key_size <= full.key_size && full.key_size <= full.max_key_size);
  t.ok(full.max_key_per_request >= 1);
  t.equal(full.max_SAE_ID_count, 0);
  // Drain: 10 keys of 128 bits = 1280 bits; two 512-bit keys take 1024 of them.
  t.equal((await h.encKeys('gw-a', 'gw-b', { size: 512, number: 2 })).status, 200);
  t.equal((await stored()).stored_key_count, 2);
  t.equal((await h.encKeys('gw-a', 'gw-b', { size: 512 })).status, 503);
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 2 })).status, 200);
  t.equal((await stored()).stored_key_count, 0, 'never negative');
  t.equal(h.sim.stats().storedKeyCount, 0);
  // Refilling after a drain counts from the drain, not from the start.
  h.clock.advance(128 * 3);
  t.equal((await stored()).stored_key_count, 3);
});

t.test('etsi014-S8 inconsistent limits are refused at start-up', async (t) => {
  const pki = await makeTestPki(t);
  const kmes = [
    { kmeId: 'KME_A', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['gw-a'] },
    { kmeId: 'KME_B', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['gw-b'] },
  ] as const;
  const bad = [
    { keySizeBits: 2048 },
    { keySizeBits: 32 },
    { keySizeBits: 100 },
    { minKeySizeBits: 512, maxKeySizeBits: 256 },
    { maxKeyPerRequest: 0 },
    { maxKeyCount: 5, initialKeyCount: 6 },
    { keyRateBps: -1 },
    { keyRateBps: 1.5 },
    { maxKeyCount: 10, bogus: 1 },
  ];
  for (const link of bad) {
    await t.rejects(startKmeSimulator({ link: link as object, kmes: [kmes[0], kmes[1]] }), { code: ErrorCodes.KMS_CONFIG }, JSON.stringify(link));
  }
  await t.rejects(startKmeSimulator({ kmes: [kmes[0], { ...kmes[1], saes: ['gw-a'] }] }), { code: ErrorCodes.KMS_CONFIG }, 'SAE on both KMEs');
  await t.rejects(startKmeSimulator({ kmes: [kmes[0], { ...kmes[1], kmeId: 'KME_A' }] }), { code: ErrorCodes.KMS_CONFIG }, 'same KME ID');
  await t.rejects(startKmeSimulator({ kmes: [kmes[0], { ...kmes[1], key: 'junk' }] }), { code: ErrorCodes.KMS_CONFIG }, 'bad key');
});

t.test('etsi014-S10 POST on status is 405 with an Error body; an unknown slave in the path is 400', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 2 } });
  const p = await h.call(0, 'gw-a', 'POST', '/keys/gw-b/status', { body: {} });
  t.equal(p.status, 405);
  t.equal(p.headers['content-type'], 'application/json');
  t.equal(p.headers.allow, 'GET');
  t.type(p.json.message, 'string');
  const put = await h.call(0, 'gw-a', 'PUT', '/keys/gw-b/enc_keys', { body: {} });
  t.equal(put.status, 405);
  t.equal(put.headers.allow, 'GET, POST');
  t.type(put.json.message, 'string');
  for (const slave of ['nobody', 'gw-a' /* attached to this same KME */, 'stranger']) {
    const r = await h.call(0, 'gw-a', 'GET', `/keys/${slave}/status`);
    t.equal(r.status, 400, slave);
    t.equal(r.headers['content-type'], 'application/json');
    t.type(r.json.message, 'string');
    t.same(r.json.details, [{ slave_SAE_ID: slave }]);
  }
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/nothing')).status, 404);
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status/extra')).status, 404);
  t.equal(h.sim.stats().storedKeyCount, 2);
});
