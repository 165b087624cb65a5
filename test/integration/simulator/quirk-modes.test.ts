// etsi014-S37 quirk modes (etsi014.md table 1.8), observed by an ETSI 014 client over mTLS.
import t from 'tap';
import { fromB64Strict } from '../../../src/util/bytes.js';
import { ErrorCodes } from '../../../src/errors.js';
import { MSG_INSUFFICIENT, MSG_KEYS_NOT_FOUND, QUIRK_DEFAULTS } from '../../../src/kms/simulator/index.js';
import { startHarness } from './harness.js';

const UNKNOWN = '00000000-0000-4000-8000-000000000000';

t.test('etsi014-S37 A5 exhaustion switches at run time: 503 -> 400 -> partial-200 -> 503', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 3, keyRateBps: 0 } });
  const ask = () => h.encKeys('gw-a', 'gw-b', { number: 5 });
  let r = await ask();
  t.equal(r.status, 503, 'default 503');
  t.same(r.json, { message: MSG_INSUFFICIENT });
  h.sim.control.setQuirks({ exhaustion: '400' });
  r = await ask();
  t.equal(r.status, 400, '400 mode');
  t.same(r.json, { message: MSG_INSUFFICIENT });
  t.equal(h.sim.stats().storedKeyCount, 3, 'refusals consumed nothing');
  h.sim.control.setQuirks({ exhaustion: 'partial-200' });
  r = await ask();
  t.equal(r.status, 200, 'partial-200 mode: a short 200');
  t.equal(r.json.keys.length, 3, 'as many keys as there were, fewer than the 5 asked for');
  h.sim.control.setQuirks({ exhaustion: '503' });
  t.equal((await ask()).status, 503, 'back to 503');
});

t.test('etsi014-S37 A6 unknownId404: unknown or used key_IDs give 404 {"message":"key not found"}', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  const dec = (id: string) => h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${id}`);
  let r = await dec(UNKNOWN);
  t.equal(r.status, 400, 'spec 400 by default');
  t.equal(r.json.message, MSG_KEYS_NOT_FOUND);
  h.sim.control.setQuirks({ unknownId404: true });
  r = await dec(UNKNOWN);
  t.equal(r.status, 404, 'unknown key_ID: 404');
  t.same(r.json, { message: 'key not found' });
  const enc = await h.encKeys('gw-a', 'gw-b');
  const id = enc.json.keys[0].key_ID;
  t.equal((await dec(id)).status, 200, 'a known key is still served');
  r = await dec(id);
  t.equal(r.status, 404, 'an already delivered key: 404');
  const dup = await h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: [{ key_ID: UNKNOWN }, { key_ID: UNKNOWN }] } });
  t.equal(dup.status, 400, 'a duplicate within one request is still a 400 format error');
  h.sim.control.setQuirks({ unknownId404: false });
  t.equal((await dec(UNKNOWN)).status, 400, 'off again: 400');
});

t.test('etsi014-S37 A8 decKeysNonConsuming: the slave can fetch the same key_ID again and gets the same bytes', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  h.sim.control.setQuirks({ decKeysNonConsuming: true });
  const enc = await h.encKeys('gw-a', 'gw-b');
  const id = enc.json.keys[0].key_ID;
  const first = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${id}`);
  const second = await h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: [{ key_ID: id }] } });
  t.equal(first.status, 200);
  t.equal(second.status, 200, 'the second fetch succeeds');
  t.equal(second.json.keys[0].key, enc.json.keys[0].key, 'same bytes as the master got');
  t.equal(first.json.keys[0].key, second.json.keys[0].key);
  t.equal(h.sim.control.state().pending['KME_A->KME_B'], 1, 'the key stays pending');
  t.equal((await h.call(1, 'gw-c', 'GET', `/keys/gw-a/dec_keys?key_ID=${id}`)).status, 401, 'still only for its slave');
  h.sim.control.setQuirks({ decKeysNonConsuming: false });
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${id}`)).status, 200, 'consumed on this fetch');
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${id}`)).status, 400, 'and gone after it');
});

t.test('etsi014-S37 sizeAsBytes: size (and the default key_size) are read as bytes', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 1000 } });
  h.sim.control.setQuirks({ sizeAsBytes: true });
  let r = await h.encKeys('gw-a', 'gw-b', { size: 256 });
  t.equal(r.status, 200);
  t.equal(fromB64Strict(r.json.keys[0].key)?.length, 256, 'size 256 -> 256 bytes, not 32');
  r = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/enc_keys?size=100');
  t.equal(r.status, 200, 'a size that is no multiple of 8 is fine in bytes');
  t.equal(fromB64Strict(r.json.keys[0].key)?.length, 100);
  r = await h.encKeys('gw-a', 'gw-b', {});
  t.equal(fromB64Strict(r.json.keys[0].key)?.length, 256, 'default key_size 256 -> 256 bytes');
  r = await h.encKeys('gw-a', 'gw-b', { size: 2048 });
  t.equal(r.status, 400, 'the range check still applies, in the KME\'s unit');
  t.match(r.json.message, /64 to 1024 bytes/);
  const st = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status');
  t.equal(st.json.key_size, 256, 'Status numbers are unchanged');
  // 2048 + 800 + 2048 bits taken = 19.125 keys of 256 bits; the refused request took nothing.
  t.equal(st.json.stored_key_count, 980, 'the pool paid for bytes, not bits');
  h.sim.control.setQuirks({ sizeAsBytes: false });
  r = await h.encKeys('gw-a', 'gw-b', { size: 256 });
  t.equal(fromB64Strict(r.json.keys[0].key)?.length, 32, 'off: bits again');
});

t.test('etsi014-S37 A1 decKeysPathSlave: dec_keys wants the slave\'s own SAE ID in the path', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  h.sim.control.setQuirks({ decKeysPathSlave: true });
  const enc = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  const [k1, k2] = enc.json.keys;
  const specForm = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k1.key_ID}`);
  t.equal(specForm.status, 400, 'the spec form (master ID in the path) finds nothing');
  t.equal(specForm.json.message, MSG_KEYS_NOT_FOUND);
  const idq = await h.call(1, 'gw-b', 'GET', `/keys/gw-b/dec_keys?key_ID=${k1.key_ID}`);
  t.equal(idq.status, 200, 'the slave\'s own ID in the path works');
  t.equal(idq.json.keys[0].key, k1.key, 'same bytes as the master got');
  t.match(h.sim.deliveries.at(-1), { side: 'dec', master: 'gw-a', slave: 'gw-b', key_ID: k1.key_ID }, 'the delivery names the real master');
  t.equal((await h.call(1, 'gw-c', 'GET', `/keys/gw-c/dec_keys?key_ID=${k2.key_ID}`)).status, 401, 'another slave still gets 401');
  h.sim.control.setQuirks({ decKeysPathSlave: false });
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-b/dec_keys?key_ID=${k2.key_ID}`)).status, 400, 'off: the own ID is refused again (S25)');
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k2.key_ID}`)).status, 200, 'and the spec form works');
});

t.test('etsi014-S37 A15 htmlErrors: error answers are text/html pages, 401 included; 200s stay JSON', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  h.sim.control.setQuirks({ htmlErrors: true });
  const bad = await h.encKeys('gw-a', 'gw-b', { size: 255 });
  t.equal(bad.status, 400);
  t.equal(bad.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(bad.json, undefined, 'not JSON');
  t.match(bad.text, /^<!doctype html>/);
  t.match(bad.text, /<title>400 Bad Request<\/title>/);
  t.match(bad.text, /size shall be a multiple of 8/);
  const unauth = await h.call(0, 'stranger', 'GET', '/keys/gw-b/status');
  t.equal(unauth.status, 401);
  t.match(unauth.text, /<title>401 Unauthorized<\/title>/, '401 with an HTML page, as Flask abort(401)');
  const notAllowed = await h.call(0, 'gw-a', 'POST', '/keys/gw-b/status', { body: {} });
  t.equal(notAllowed.status, 405);
  t.equal(notAllowed.headers.allow, 'GET', 'the Allow header is kept');
  h.sim.control.setFaults({ status503: 1 });
  const down = await h.encKeys('gw-a', 'gw-b');
  t.equal(down.status, 503);
  t.match(down.text, /<title>503 Service Unavailable<\/title>/, 'injected 503s are HTML too');
  const ok = await h.encKeys('gw-a', 'gw-b');
  t.equal(ok.status, 200);
  t.equal(ok.headers['content-type'], 'application/json');
  h.sim.control.setQuirks({ htmlErrors: false });
  const json = await h.encKeys('gw-a', 'gw-b', { size: 255 });
  t.equal(json.headers['content-type'], 'application/json', 'off: JSON again');
});

t.test('etsi014-S37 quirks given at start apply from the first request; setQuirks validates strictly', async (t) => {
  const h = await startHarness(t, { quirks: { unknownId404: true, htmlErrors: false } });
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${UNKNOWN}`)).status, 404);
  t.same(h.sim.control.state().quirks, { ...QUIRK_DEFAULTS, unknownId404: true });
  const bad: Array<[unknown, RegExp]> = [
    [{ exhaustion: 'short' }, /quirks\.exhaustion: must be '503', '400' or 'partial-200'/],
    [{ unknownId404: 'yes' }, /quirks\.unknownId404: must be true or false/],
    [{ unknown_id_404: true }, /did you mean unknownId404\?/],
    [{ nonConsuming: true }, /quirks\.nonConsuming: unknown member; known: exhaustion, unknownId404/],
    ['x', /quirks: must be a JSON object/],
  ];
  for (const [input, re] of bad) {
    t.throws(() => h.sim.control.setQuirks(input as never), { code: ErrorCodes.KMS_CONFIG, message: re }, JSON.stringify(input));
  }
  t.equal(h.sim.control.setQuirks({ exhaustion: 400 as never }).quirks.exhaustion, '400', 'a bare 400 as in YAML');
});
