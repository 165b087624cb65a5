import t, { type Test } from 'tap';
import { fromB64Strict } from '../../../src/util/bytes.js';
import { startHarness, UUID_V4_RE, type Harness } from './harness.js';

const stored = async (h: Harness): Promise<number> =>
  (await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).json.stored_key_count;

/** Checks an error answer: status, JSON content type, exact message when given. */
function isError(t: Test, r: { status: number; headers: Record<string, unknown>; json: any }, status: number, message?: string): void {
  t.equal(r.status, status, `status ${status}`);
  t.equal(r.headers['content-type'], 'application/json');
  t.type(r.json?.message, 'string', 'Error body with a message');
  if (message !== undefined) t.equal(r.json.message, message);
}

t.test('etsi014-S11 the three Get key forms have the same semantics', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 100 } });
  const forms: Array<[string, string, unknown]> = [
    ['POST {}', 'POST', {}],
    ['GET (no parameters)', 'GET', undefined],
  ];
  for (const [name, method, body] of forms) {
    const before = await stored(h);
    const r = await h.call(0, 'gw-a', method, '/keys/gw-b/enc_keys', { body });
    t.equal(r.status, 200, name);
    t.equal(r.json.keys.length, 1, `${name}: default number 1`);
    t.equal(fromB64Strict(r.json.keys[0].key)?.length, 32, `${name}: default key_size 256 bits`);
    t.equal(await stored(h), before - 1, `${name}: one key consumed`);
  }
  const viaGet = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/enc_keys?number=3&size=512');
  const viaPost = await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', { body: { number: 3, size: 512 } });
  for (const [name, r] of [['GET ?number=3&size=512', viaGet], ['POST {number:3,size:512}', viaPost]] as const) {
    t.equal(r.status, 200, name);
    t.equal(r.json.keys.length, 3, name);
    t.ok(r.json.keys.every((k: { key: string }) => fromB64Strict(k.key)?.length === 64), `${name}: 64-byte keys`);
  }
  t.equal(await stored(h), 100 - 2 - 2 * 6, 'each 3x512-bit request took 6 pool keys');
  // Slave side sees every key of every form.
  const all = h.sim.deliveries.filter((d) => d.side === 'enc').map((d) => ({ key_ID: d.key_ID }));
  const dec = await h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: all } });
  t.equal(dec.status, 200);
  t.equal(dec.json.keys.length, 8);
});

t.test('etsi014-S12 number N gives exactly N keys with unique UUIDv4 key_IDs and size/8-byte keys', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 1000 } });
  for (const [number, size] of [[1, 256], [5, 256], [128, 64], [2, 1024], [3, 72]]) {
    const r = await h.encKeys('gw-a', 'gw-b', { number, size });
    t.equal(r.status, 200);
    t.equal(r.headers['content-type'], 'application/json');
    t.same(Object.keys(r.json), ['keys']);
    t.equal(r.json.keys.length, number, `${number} keys`);
    const ids = r.json.keys.map((k: { key_ID: string }) => k.key_ID);
    t.equal(new Set(ids).size, number, 'unique key_IDs');
    t.ok(ids.every((id: string) => UUID_V4_RE.test(id)), 'UUIDv4');
    for (const k of r.json.keys) {
      const b = fromB64Strict(k.key);
      t.ok(b && b.length === size / 8, `canonical base64 of ${size / 8} bytes`);
    }
  }
  // The default size follows key_size.
  const h2 = await startHarness(t, { link: { initialKeyCount: 10, keySizeBits: 352 } });
  const r = await h2.encKeys('gw-a', 'gw-b', { number: 2 });
  t.ok(r.json.keys.every((k: { key: string }) => fromB64Strict(k.key)?.length === 44), 'key_size 352 -> 44 bytes');
});

t.test('etsi014-S13 size not a multiple of 8 is 400 "size shall be a multiple of 8" and consumes nothing', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  isError(t, await h.encKeys('gw-a', 'gw-b', { size: 255 }), 400, 'size shall be a multiple of 8');
  isError(t, await h.encKeys('gw-a', 'gw-b', { number: 2, size: 100 }), 400, 'size shall be a multiple of 8');
  isError(t, await h.call(0, 'gw-a', 'GET', '/keys/gw-b/enc_keys?size=257'), 400, 'size shall be a multiple of 8');
  t.equal(await stored(h), 5, 'nothing consumed');
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 5 })).status, 200, 'all 5 keys still there');
});

t.test('etsi014-S14 number out of 1..max_key_per_request or size out of [min,max] is 400 and consumes nothing', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 200 } });
  const bodies: unknown[] = [
    { number: 0 },
    { number: -1 },
    { number: 129 },
    { number: 1.5 },
    { number: '2' },
    { number: null },
    { size: 56 },
    { size: 1032 },
    { size: 0 },
    { size: -8 },
    { size: '256' },
    { size: 1e300 },
  ];
  for (const body of bodies) isError(t, await h.encKeys('gw-a', 'gw-b', body), 400);
  for (const q of ['number=0', 'number=129', 'number=-1', 'number=1.0', 'number=', 'number=x', 'size=56', 'size=1032', 'number=1&number=2']) {
    isError(t, await h.call(0, 'gw-a', 'GET', `/keys/gw-b/enc_keys?${q}`), 400);
  }
  t.equal(await stored(h), 200, 'nothing consumed');
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 128, size: 64 })).status, 200, 'the limits themselves are fine');
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 1, size: 1024 })).status, 200);
});

t.test('etsi014-S15 unsupported extension_mandatory is 400 naming it; unknown extension_optional is ignored', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  const r = await h.encKeys('gw-a', 'gw-b', {
    number: 1,
    extension_mandatory: [{ abc_route_type: 'direct' }, { abc_transfer_method: 'qkd' }],
  });
  isError(t, r, 400, 'not all extension_mandatory parameters are supported');
  t.same(r.json.details, [{ extension_mandatory_unsupported: 'abc_route_type' }, { extension_mandatory_unsupported: 'abc_transfer_method' }]);
  t.equal(await stored(h), 5, 'nothing consumed');
  isError(t, await h.encKeys('gw-a', 'gw-b', { extension_mandatory: ['abc_x'] }), 400);
  isError(t, await h.encKeys('gw-a', 'gw-b', { extension_optional: { abc_x: 1 } }), 400);
  const ok = await h.encKeys('gw-a', 'gw-b', { number: 2, extension_optional: [{ abc_x: 1 }, { xyz_y: { z: [1] } }], extension_mandatory: [] });
  t.equal(ok.status, 200);
  t.equal(ok.json.keys.length, 2);
});

t.test('etsi014-S16 additional_slave_SAE_IDs with max_SAE_ID_count 0 is 400 and consumes nothing', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 3 } });
  isError(t, await h.encKeys('gw-a', 'gw-b', { additional_slave_SAE_IDs: ['gw-c'] }), 400);
  isError(t, await h.encKeys('gw-a', 'gw-b', { additional_slave_SAE_IDs: 'gw-c' }), 400);
  t.equal(await stored(h), 3);
  t.equal((await h.encKeys('gw-a', 'gw-b', { additional_slave_SAE_IDs: [] })).status, 200, 'an empty list asks for nothing extra');
});

t.test('etsi014-S17 too few keys is 503 {"message":"insufficient key material"} and consumes nothing', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 2 } });
  const r = await h.encKeys('gw-a', 'gw-b', { number: 3 });
  t.equal(r.status, 503);
  t.equal(r.headers['content-type'], 'application/json');
  t.equal(r.text, '{"message":"insufficient key material"}');
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/enc_keys?number=3')).status, 503);
  t.equal(await stored(h), 2, 'nothing consumed');
  const ok = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  t.equal(ok.json.keys.length, 2, 'the 2 keys are still there');
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 503, 'empty pool');
  h.clock.advance(26); // 10 kbit/s: 256 bits after 25.6 ms
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 200, 'recovers as the link delivers');
  t.equal(h.sim.stats().responsesByStatus['503'], 3);
});

t.test('etsi014-S17 exhaustion quirk modes for client tests: 400 and partial-200', async (t) => {
  const h400 = await startHarness(t, { link: { initialKeyCount: 2 }, quirks: { exhaustion: '400' } });
  const r = await h400.encKeys('gw-a', 'gw-b', { number: 3 });
  t.equal(r.status, 400);
  t.equal(r.json.message, 'insufficient key material');
  t.equal(await stored(h400), 2);
  const hp = await startHarness(t, { link: { initialKeyCount: 2 }, quirks: { exhaustion: 'partial-200' } });
  const p = await hp.encKeys('gw-a', 'gw-b', { number: 3 });
  t.equal(p.status, 200);
  t.equal(p.json.keys.length, 2, 'short 200, as some KMEs do');
  const empty = await hp.encKeys('gw-a', 'gw-b', { number: 3 });
  t.same(empty.json, { keys: [] });
});

t.test('etsi014-S19 a key returned by enc_keys is never returned again to any master', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 600 } });
  const ids: string[] = [];
  const keys = new Set<string>();
  for (let i = 0; i < 20; i++) {
    for (const [master, slave] of [['gw-a', 'gw-b'], ['gw-b', 'gw-a'], ['gw-c', 'gw-a']]) {
      const r = await h.encKeys(master, slave, { number: 10 });
      t.equal(r.status, 200);
      for (const k of r.json.keys) {
        ids.push(k.key_ID);
        keys.add(k.key);
      }
    }
  }
  t.equal(ids.length, 600);
  t.equal(new Set(ids).size, 600, 'all key_IDs distinct');
  t.equal(keys.size, 600, 'all key values distinct');
  t.equal(h.sim.deliveries.filter((d) => d.side === 'enc').length, 600);
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 503, 'pool exhausted: nothing recycled');
});

t.test('etsi014-S20 unknown top-level members are ignored; malformed JSON is 400, never a default request', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  const ok = await h.encKeys('gw-a', 'gw-b', { number: 2, additional_target_sae_ids: ['gw-c'], master_SAE_ID: 'x', foo: { bar: 1 } });
  t.equal(ok.status, 200);
  t.equal(ok.json.keys.length, 2);
  for (const body of ['{number:1}', '', '{"number":1', 'null', '[]', '"x"', '1', '{"number":1}garbage', '\uFEFF{}']) {
    isError(t, await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', { body }), 400);
  }
  isError(t, await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', { body: '{}', headers: { 'content-type': 'text/plain' } }), 400);
  t.equal((await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', { body: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 200);
  isError(t, await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', { body: 'x'.repeat(70_000) }), 400);
  t.equal(await stored(h), 7, 'only the two valid requests consumed');
});
