/**
 * Etsi014KeySource over the real client and a mock KME: field reports BC-02 (key_ID not yet
 * deliverable: 404 three times then 200; and never) and BC-08 (same key_ID on two
 * consecutive enc_keys). Backoff time is virtual (SteppingClock); HTTP is real.
 */
import t from 'tap';
import { Etsi014Client } from '../../../src/kms/etsi014/index.js';
import { Etsi014KeySource } from '../../../src/kms/key-source.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { SteppingClock } from '../../unit/kms/stepping-clock.js';
import { testCerts } from './certs.js';
import { sendJson, startMockKme, statusBody, type MockKme } from './mock-kme.js';
import { rejects } from './client-helpers.js';

const certs = testCerts();
const ID = '9b1f3c2e-0000-4000-8000-00000000a001';
const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => 255 - i));

function keySource(t: { teardown(fn: () => unknown): void }, kme: MockKme, opts: ConstructorParameters<typeof Etsi014KeySource>[1] = {}) {
  const client = new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'B' });
  const ks = new Etsi014KeySource(client, { random: () => 0.5, ...opts });
  t.teardown(() => ks.close());
  return ks;
}


/** dec_keys answers 404 {"message":"key not found"} `misses` times, then the key. */
async function lateKme(t: Parameters<typeof startMockKme>[0], misses: number): Promise<MockKme> {
  const kme = await startMockKme(t);
  let n = 0;
  kme.handler = (req, res) => {
    if (n++ < misses) return sendJson(res, 404, { message: 'key not found' });
    sendJson(res, 200, { keys: [{ key_ID: ID, key: KEY.toString('base64') }] });
  };
  return kme;
}

t.test('BC-02 variant 1: 404 "key not found" three times, then 200 -> key obtained within the 3 s deadline', async (t) => {
  const kme = await lateKme(t, 3);
  const clock = new SteppingClock();
  const ks = keySource(t, kme, { clock, });
  const p = ks.getKeyById('A', ID);
  t.equal(await clock.nextTimer(), 3000);
  for (let i = 0; i < 3; i++) clock.advance(await clock.nextTimer());
  const k = await p;
  t.equal(k.keyId, ID);
  t.ok(k.key.expose().equals(KEY), 'same bytes the master got');
  k.key.wipe();
  t.equal(kme.requests.length, 4);
  for (const r of kme.requests) {
    t.equal(r.url, '/api/v1/keys/A/dec_keys');
    t.same(r.json, { key_IDs: [{ key_ID: ID }] });
  }
  t.ok(clock.now() < 3000);
});

t.test('BC-02: with decKeysAttempts 3 (no 3rd retry) variant 1 gives up (reason key_unavailable)', async (t) => {
  const kme = await lateKme(t, 3);
  const clock = new SteppingClock();
  const ks = keySource(t, kme, { clock, decKeysAttempts: 3 });
  const p = rejects(ks.getKeyById('A', ID));
  await clock.nextTimer();
  for (let i = 0; i < 2; i++) clock.advance(await clock.nextTimer());
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(e.details?.attempts, 3);
  t.equal(e.details?.kmeMessage, 'key not found');
  t.equal(kme.requests.length, 3);
});

t.test('BC-02 variant 2: never deliverable -> KMS_KEY_UNAVAILABLE, bounded number of KME calls', async (t) => {
  const kme = await lateKme(t, Infinity);
  const clock = new SteppingClock();
  const ks = keySource(t, kme, { clock });
  const p = rejects(ks.getKeyById('A', ID));
  await clock.nextTimer();
  for (let i = 0; i < 3; i++) clock.advance(await clock.nextTimer());
  t.equal((await p).code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(kme.requests.length, 4, 'the first try and 3 retries (C28), then key_unavailable');
  t.notOk(ks.wasUsed(ID));
});

t.test('BC-08 mock KME returns the same key_ID (and bytes) on two consecutive enc_keys -> KMS_KEY_REUSED', async (t) => {
  const kme = await startMockKme(t);
  const dupId = 'ffffffff-0000-4000-8000-000000000001';
  kme.handler = (req, res) => {
    if (req.url.endsWith('/status')) return sendJson(res, 200, statusBody({ master_SAE_ID: 'B', slave_SAE_ID: 'C' }));
    sendJson(res, 200, { keys: [{ key_ID: dupId, key: KEY.toString('base64') }] });
  };
  const ks = keySource(t, kme);
  const first = await ks.getKey('C');
  t.equal(first.keyId, dupId);
  const e = await rejects(ks.getKey('C'));
  t.equal(e.code, ErrorCodes.KMS_KEY_REUSED);
  t.notOk(first.key.wiped, 'the key in use stays intact');
  t.same(
    kme.requests.map((r) => r.url.split('/').pop()),
    ['status', 'enc_keys', 'enc_keys'],
  );
});
