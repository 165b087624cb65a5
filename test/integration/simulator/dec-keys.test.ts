import t from 'tap';
import { startHarness, type Harness } from './harness.js';

const NOT_FOUND = 'one or more keys specified are not found on KME';

/** gw-a (at KME_A) is master, gw-b (at KME_B) slave; returns the n keys gw-a got. */
async function masterKeys(h: Harness, n: number, size?: number): Promise<Array<{ key_ID: string; key: string }>> {
  const r = await h.encKeys('gw-a', 'gw-b', { number: n, ...(size ? { size } : {}) });
  if (r.status !== 200) throw new Error(`enc_keys failed: ${r.status} ${r.text}`);
  return r.json.keys;
}

const decPost = (h: Harness, ids: unknown[], as = 'gw-b', master = 'gw-a') =>
  h.call(1, as, 'POST', `/keys/${master}/dec_keys`, { body: { key_IDs: ids } });
const decGet = (h: Harness, id: string, as = 'gw-b', master = 'gw-a') =>
  h.call(1, as, 'GET', `/keys/${master}/dec_keys?key_ID=${encodeURIComponent(id)}`);

t.test('etsi014-S21 the slave gets the same bytes and key_ID as the master (POST and GET forms)', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 50 } });
  const keys = await masterKeys(h, 3, 512);
  const viaPost = await decPost(h, [{ key_ID: keys[0].key_ID }, { key_ID: keys[1].key_ID }]);
  t.equal(viaPost.status, 200);
  t.equal(viaPost.headers['content-type'], 'application/json');
  t.same(viaPost.json, { keys: [keys[0], keys[1]] }, 'same key_IDs and bytes, in request order');
  const viaGet = await decGet(h, keys[2].key_ID);
  t.equal(viaGet.status, 200);
  t.same(viaGet.json, { keys: [keys[2]] });

  // Deliveries: one record per key and side, and one log line per request, never bytes.
  const recs = h.sim.deliveries.map(({ key_ID, master, slave, kme, side }) => ({ key_ID, master, slave, kme, side }));
  t.same(recs, [
    ...keys.map((k) => ({ key_ID: k.key_ID, master: 'gw-a', slave: 'gw-b', kme: 'KME_A', side: 'enc' })),
    ...keys.map((k) => ({ key_ID: k.key_ID, master: 'gw-a', slave: 'gw-b', kme: 'KME_B', side: 'dec' })),
  ]);
  const lines = h.logger.lines.filter((l) => l.event === 'kme_delivery');
  t.same(lines, [
    { level: 'info', event: 'kme_delivery', kme: 'KME_A', side: 'enc', master_SAE_ID: 'gw-a', slave_SAE_ID: 'gw-b', key_IDs: keys.map((k) => k.key_ID) },
    { level: 'info', event: 'kme_delivery', kme: 'KME_B', side: 'dec', master_SAE_ID: 'gw-a', slave_SAE_ID: 'gw-b', key_IDs: [keys[0].key_ID, keys[1].key_ID] },
    { level: 'info', event: 'kme_delivery', kme: 'KME_B', side: 'dec', master_SAE_ID: 'gw-a', slave_SAE_ID: 'gw-b', key_IDs: [keys[2].key_ID] },
  ]);
  const logText = JSON.stringify(h.logger.lines) + JSON.stringify(h.sim.deliveries);
  for (const k of keys) t.notOk(logText.includes(k.key), 'no key bytes in logs or delivery records');
  t.match(h.sim.stats(), { encDelivered: 3, decDelivered: 3, delivered: 6, pendingKeyCount: 0 });

  // The 'delivery' event fires per key.
  const seen: string[] = [];
  h.sim.on('delivery', (r) => seen.push(`${r.side}:${r.key_ID}`));
  const [k4] = await masterKeys(h, 1);
  await decGet(h, k4.key_ID);
  t.same(seen, [`enc:${k4.key_ID}`, `dec:${k4.key_ID}`]);
});

t.test('etsi014-S22 a key_ID already delivered is 400 "not found" and nothing else is consumed', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1, k2] = await masterKeys(h, 2);
  t.equal((await decGet(h, k1.key_ID)).status, 200);
  for (const r of [await decGet(h, k1.key_ID), await decPost(h, [{ key_ID: k1.key_ID }])]) {
    t.equal(r.status, 400);
    t.equal(r.headers['content-type'], 'application/json');
    t.equal(r.json.message, NOT_FOUND);
  }
  t.equal(h.sim.stats().pendingKeyCount, 1, 'k2 untouched');
  const r2 = await decPost(h, [{ key_ID: k2.key_ID }]);
  t.same(r2.json.keys, [k2]);
  t.equal((await decGet(h, '00000000-0000-4000-8000-000000000000')).json.message, NOT_FOUND, 'never-issued ID');
});

t.test('etsi014-S23 a multi-ID request with an unknown, used or duplicated ID is 400 and consumes none', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1, k2, k3, used] = await masterKeys(h, 4);
  t.equal((await decGet(h, used.key_ID)).status, 200);
  const cases: Array<[string, string[]]> = [
    ['unknown', [k1.key_ID, k2.key_ID, 'a6c0b1b4-0000-4000-8000-000000000000']],
    ['already used', [k1.key_ID, used.key_ID, k2.key_ID]],
    ['duplicated', [k1.key_ID, k2.key_ID, k1.key_ID]],
  ];
  for (const [name, ids] of cases) {
    const r = await decPost(h, ids.map((key_ID) => ({ key_ID })));
    t.equal(r.status, 400, name);
    t.equal(r.json.message, NOT_FOUND, name);
    t.ok(Array.isArray(r.json.details) && r.json.details.length === 1, `${name}: details name the culprit`);
  }
  t.equal(h.sim.stats().pendingKeyCount, 3, 'k1, k2, k3 all still pending');
  const ok = await decPost(h, [{ key_ID: k3.key_ID }, { key_ID: k1.key_ID }, { key_ID: k2.key_ID }]);
  t.equal(ok.status, 200);
  t.same(ok.json.keys, [k3, k1, k2], 'all three, in request order');
});

t.test('etsi014-S24 dec_keys by an SAE that is not the key\'s slave is 401 without body; the slave still gets it', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1, k2] = await masterKeys(h, 2);
  // gw-c is a legitimate SAE of KME_B, but not the slave of these keys.
  for (const r of [await decGet(h, k1.key_ID, 'gw-c'), await decPost(h, [{ key_ID: k1.key_ID }, { key_ID: k2.key_ID }], 'gw-c')]) {
    t.equal(r.status, 401);
    t.equal(r.text, '');
  }
  // The master itself asking its own KME for its key as if it were the slave.
  const self = await h.call(0, 'gw-a', 'GET', `/keys/gw-a/dec_keys?key_ID=${k1.key_ID}`);
  t.equal(self.status, 401);
  t.equal(self.text, '');
  t.same((await decPost(h, [{ key_ID: k1.key_ID }, { key_ID: k2.key_ID }])).json.keys, [k1, k2], 'rightful slave gets both');
});

t.test('etsi014-S25 the wrong master SAE ID in the path is 400 and consumes nothing', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1] = await masterKeys(h, 1);
  for (const master of ['gw-b' /* the caller itself: slave-ID-in-path quirk */, 'gw-c', 'nobody']) {
    const r = await decGet(h, k1.key_ID, 'gw-b', master);
    t.equal(r.status, 400, master);
    t.equal(r.json.message, NOT_FOUND);
  }
  t.same((await decGet(h, k1.key_ID)).json.keys, [k1]);
});

t.test('etsi014-S26 GET with two key_IDs, bare-string key_IDs and an empty key_IDs are 400', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1, k2] = await masterKeys(h, 2);
  const bad: Array<[string, Promise<{ status: number; json: any; headers: Record<string, unknown> }>]> = [
    ['GET two key_ID', h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k1.key_ID}&key_ID=${k2.key_ID}`)],
    ['GET same key_ID twice', h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k1.key_ID}&key_ID=${k1.key_ID}`)],
    ['GET no key_ID', h.call(1, 'gw-b', 'GET', '/keys/gw-a/dec_keys')],
    ['GET empty key_ID', h.call(1, 'gw-b', 'GET', '/keys/gw-a/dec_keys?key_ID=')],
    ['GET key_IDs (plural)', h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_IDs=${k1.key_ID}`)],
    ['POST bare strings', decPost(h, [k1.key_ID, k2.key_ID])],
    ['POST one bare string among objects', decPost(h, [{ key_ID: k1.key_ID }, k2.key_ID])],
    ['POST empty array', decPost(h, [])],
    ['POST key_ID not a string', decPost(h, [{ key_ID: 42 }])],
    ['POST key_IDs missing', h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_ID: k1.key_ID } })],
    ['POST key_IDs an object', h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: { key_ID: k1.key_ID } } })],
    ['POST malformed JSON', h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: '{"key_IDs":[' })],
    ['POST 129 IDs', decPost(h, Array.from({ length: 129 }, (_, i) => ({ key_ID: `id-${i}` })))],
  ];
  for (const [name, p] of bad) {
    const r = await p;
    t.equal(r.status, 400, name);
    t.equal(r.headers['content-type'], 'application/json', name);
    t.type(r.json?.message, 'string', name);
  }
  t.equal(h.sim.stats().pendingKeyCount, 2, 'nothing consumed');
  t.equal((await decPost(h, [{ key_ID: k1.key_ID }, { key_ID: k2.key_ID }])).status, 200);
});

t.test('etsi014-S27 unknown members inside key_IDs entries (QuKayDee master_SAE_ID) are ignored', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const [k1, k2] = await masterKeys(h, 2);
  const r = await h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', {
    body: {
      key_IDs: [
        { key_ID: k1.key_ID, master_SAE_ID: 'gw-a' },
        { key_ID: k2.key_ID, key_ID_extension: { abc: 1 }, vendor: [1, 2] },
      ],
      key_IDs_extension: { abc: true },
      something_else: 1,
    },
  });
  t.equal(r.status, 200);
  t.same(r.json.keys, [k1, k2]);
});
