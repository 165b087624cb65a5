// etsi014-S37 the in-process control API (sim.control): link, keys, reset, state, logging.
import t from 'tap';
import { ErrorCodes } from '../../../src/errors.js';
import { FAULT_DEFAULTS, LINK_DEFAULTS, QUIRK_DEFAULTS } from '../../../src/kms/simulator/index.js';
import { msFor, startHarness, type Harness } from './harness.js';

const stored = async (h: Harness, kme: 0 | 1 = 0): Promise<number> =>
  (await h.call(kme, kme === 0 ? 'gw-a' : 'gw-b', 'GET', `/keys/${kme === 0 ? 'gw-b' : 'gw-a'}/status`)).json.stored_key_count;

t.test('etsi014-S37 paused stops accrual; resuming restores it without making up the paused time', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 10_000 } });
  h.clock.advance(msFor(4));
  t.equal(await stored(h), 4, 'accrues while running');
  h.sim.control.setLink({ paused: true });
  h.clock.advance(msFor(50));
  t.equal(await stored(h), 4, 'nothing accrues while paused');
  t.equal(await stored(h, 1), 4, 'on either KME');
  t.equal(h.sim.control.state().link.paused, true);
  h.sim.control.setLink({ paused: false });
  t.equal(await stored(h), 4, 'the paused time is not made up on resume');
  h.clock.advance(msFor(3));
  t.equal(await stored(h), 7, 'accrual is back at the link rate');
});

t.test('etsi014-S37 a link that starts paused (link.paused) holds its initial keys until resumed', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 10_000, initialKeyCount: 2, paused: true } });
  h.clock.advance(msFor(100));
  t.equal(await stored(h), 2);
  h.sim.control.setLink({ paused: false });
  h.clock.advance(msFor(1));
  t.equal(await stored(h), 3);
});

t.test('etsi014-S37 keyRateBps and maxKeyCount change from now on; S8 stored <= max holds after shrinking', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 10_000 } });
  h.clock.advance(msFor(10));
  h.sim.control.setLink({ keyRateBps: 20_000 });
  t.equal(await stored(h), 10, 'the first 10 accrued at the old rate');
  h.clock.advance(msFor(10));
  t.equal(await stored(h), 30, 'twice as fast from the change on');
  const st = h.sim.control.setLink({ maxKeyCount: 12 });
  t.same(st.link, { keyRateBps: 20_000, maxKeyCount: 12, paused: false, keySizeBits: 256 });
  const s = (await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).json;
  t.equal(s.max_key_count, 12, 'Status max_key_count follows');
  t.equal(s.stored_key_count, 12, 'the excess was dropped');
  t.equal(h.sim.stats().maxKeyCount, 12);
  h.clock.advance(msFor(100));
  t.equal(await stored(h), 12, 'capped at the new maximum');
  h.sim.control.setLink({ maxKeyCount: 0, keyRateBps: 0 });
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 503, 'a pool of 0 keys: S36 exhaustion');
});

t.test('etsi014-S37 drain empties the pool (and with pending: true the undelivered keys); addKeys refills at once', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 0, initialKeyCount: 10 } });
  const enc = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  const enc2 = await h.encKeys('gw-b', 'gw-a', { number: 1 });
  let st = h.sim.control.state();
  t.same(st.stored, { 'KME_A->KME_B': 7, 'KME_B->KME_A': 7 }, 'one pool, seen from both directions');
  t.same(st.pending, { 'KME_A->KME_B': 2, 'KME_B->KME_A': 1 }, 'pending keys by direction');

  st = h.sim.control.drain();
  t.same(st.stored, { 'KME_A->KME_B': 0, 'KME_B->KME_A': 0 });
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 503, 'drained: exhaustion');
  t.same(st.pending, { 'KME_A->KME_B': 2, 'KME_B->KME_A': 1 }, 'a plain drain keeps pending keys');
  const dec = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${enc.json.keys[0].key_ID}`);
  t.equal(dec.status, 200, 'so an announced key can still be fetched');

  st = h.sim.control.drain({ pending: true });
  t.same(st.pending, { 'KME_A->KME_B': 0, 'KME_B->KME_A': 0 });
  const gone = await h.call(0, 'gw-a', 'GET', `/keys/gw-b/dec_keys?key_ID=${enc2.json.keys[0].key_ID}`);
  t.equal(gone.status, 400, 'drain pending: the announced key is gone');

  st = h.sim.control.addKeys(3);
  t.equal(st.stored['KME_A->KME_B'], 3);
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 3 })).status, 200, 'the added keys are deliverable');
  h.sim.control.setLink({ maxKeyCount: 5 });
  t.equal(h.sim.control.addKeys(100).stored['KME_A->KME_B'], 5, 'addKeys stops at max_key_count');
  t.throws(() => h.sim.control.addKeys(-1), { code: ErrorCodes.KMS_CONFIG, message: /addKeys\.count/ });
  t.throws(() => h.sim.control.addKeys(undefined as never), { code: ErrorCodes.KMS_CONFIG, message: /addKeys\.count: is required/ });
  t.throws(() => h.sim.control.drain({ all: true } as never), { code: ErrorCodes.KMS_CONFIG, message: /drain\.all: unknown member/ });
});

t.test('etsi014-S37 reset returns link, faults and quirks to the startup settings and zeroes the counters', async (t) => {
  const h = await startHarness(t, { link: { keyRateBps: 10_000, initialKeyCount: 4 } });
  const initial = h.sim.control.state();
  t.same(initial.link, { keyRateBps: 10_000, maxKeyCount: LINK_DEFAULTS.maxKeyCount, paused: false, keySizeBits: 256 });
  t.same(initial.faults, { KME_A: FAULT_DEFAULTS, KME_B: FAULT_DEFAULTS });
  t.same(initial.quirks, QUIRK_DEFAULTS);
  t.same(initial.requests, { KME_A: {}, KME_B: {} });

  const enc = await h.encKeys('gw-a', 'gw-b');
  h.sim.control.setLink({ keyRateBps: 5, maxKeyCount: 50, paused: true });
  h.sim.control.setFaults({ latencyMs: 1, status503: 'always', mismatchNext: 3, stallMidBody: false });
  h.sim.control.setQuirks({ exhaustion: 'partial-200', unknownId404: true, decKeysNonConsuming: true, sizeAsBytes: true, decKeysPathSlave: true, htmlErrors: true });
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).status, 503);

  const st = h.sim.control.reset();
  t.same(st.link, initial.link, 'link settings as at start');
  t.same(st.faults, initial.faults, 'no faults');
  t.same(st.quirks, initial.quirks, 'spec behaviour');
  t.same(st.requests, initial.requests, 'counters zeroed');
  t.same(st.injected, initial.injected);
  t.same(st.pending, { 'KME_A->KME_B': 1, 'KME_B->KME_A': 0 }, 'keys are kept by a plain reset');
  const r = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${enc.json.keys[0].key_ID}`);
  t.equal(r.status, 200, 'and behave per spec again');
  t.equal(r.headers['content-type'], 'application/json');

  h.clock.advance(msFor(1000));
  const hard = h.sim.control.reset({ keys: true });
  t.equal(hard.stored['KME_A->KME_B'], 4, 'reset keys: the pool holds initialKeyCount again');
  t.same(hard.pending, { 'KME_A->KME_B': 0, 'KME_B->KME_A': 0 });
});

t.test('etsi014-S37 reset returns to startup faults and quirks, not to bare defaults', async (t) => {
  const h = await startHarness(t, { quirks: { exhaustion: '400', htmlErrors: true } });
  h.sim.control.setQuirks({ exhaustion: '503', htmlErrors: false });
  t.same(h.sim.control.reset().quirks, { ...QUIRK_DEFAULTS, exhaustion: '400', htmlErrors: true });
});

t.test('etsi014-S37 every change is one kme_sim_admin log line; setLink validates strictly', async (t) => {
  const h = await startHarness(t);
  h.sim.control.setLink({ paused: true });
  h.sim.control.setFaults({ kme: 'KME_B', latencyMs: 7 });
  h.sim.control.setQuirks({ htmlErrors: true });
  h.sim.control.drain();
  h.sim.control.addKeys(1);
  h.sim.control.reset();
  h.sim.control.state();
  const lines = h.logger.lines.filter((l) => l.event === 'kme_sim_admin');
  t.same(lines.map((l) => l.action), ['set_link', 'set_faults', 'set_quirks', 'drain', 'add_keys', 'reset'], 'state() logs nothing');
  t.match(lines[0], { level: 'info', set: { paused: true }, link: { paused: true } });
  t.match(lines[1], { kmes: ['KME_B'], set: { latencyMs: 7 } });
  t.match(lines[2], { set: { htmlErrors: true } });
  const before = h.sim.control.state().link;
  const bad: Array<[unknown, RegExp]> = [
    [{ rate: 1 }, /link\.rate: unknown member/],
    [{ key_rate_bps: 1 }, /link\.key_rate_bps: unknown member/],
    [{ keyRateBps: -1 }, /link\.keyRateBps: must be an integer from 0/],
    [{ keyRateBps: '10k' }, /link\.keyRateBps/],
    [{ maxKeyCount: 1e10 }, /link\.maxKeyCount/],
    [{ paused: 'true' }, /link\.paused: must be true or false/],
    [{ paused: false, keySizeBits: 128 }, /link\.keySizeBits: unknown member/],
  ];
  for (const [input, re] of bad) t.throws(() => h.sim.control.setLink(input as never), { code: ErrorCodes.KMS_CONFIG, message: re });
  t.same(h.sim.control.state().link, before, 'nothing changed');
  const snap = h.sim.control.state();
  snap.quirks.htmlErrors = true;
  snap.faults.KME_A.latencyMs = 99;
  t.equal(h.sim.control.state().faults.KME_A.latencyMs, 0, 'a snapshot is a copy');
  t.same(JSON.parse(JSON.stringify(h.sim.control.state())), h.sim.control.state(), 'JSON-able');
});
