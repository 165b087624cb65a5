// Issue 4: rekey triggers and hard limits of protocol.md s6 (time with jitter, records,
// bytes), per epoch and direction, enforced on send and receive; backoff bounds. No sockets.
import t from 'tap';
import { Pair } from '../../helpers/session-pair.js';

const started = (p: Pair): Array<Record<string, unknown>> => p.events(p.A, 'handshake_started');

t.test('BC-16: crossing rekey_after_records starts one rekey; at hard_limit_records the sender stops; the successor starts at 0', async (t) => {
  const p = new Pair({ rekeyAfterRecords: 10, hardLimitRecords: 20 }, { rekeyAfterRecords: 10, hardLimitRecords: 20 });
  p.connect();
  const e1 = p.A.s.slots.current!;
  const calls0 = p.encCalls;
  p.holdKeys = true; // the rekey cannot complete: the KME does not answer yet
  const now = (): number => p.clock.now();
  for (let i = 0; i < 9; i++) p.apply(p.A, p.A.s.noteSealed(e1, 100, now()));
  t.equal(started(p).length, 1, 'no trigger before the 10th record');
  for (let i = 0; i < 3; i++) p.apply(p.A, p.A.s.noteSealed(e1, 100, now()));
  t.equal(p.encCalls - calls0, 1, 'crossing rekey_after_records asks the KME exactly once');
  for (let i = 0; i < 7; i++) t.ok(p.A.s.sendEpoch(now()), `record ${13 + i} may still be sealed`);
  for (let i = 0; i < 7; i++) p.A.s.noteSealed(e1, 100, now());
  t.equal(e1.sealedRecords, 19);
  t.ok(p.A.s.sendEpoch(now()), 'the 20th record (counter 19) may be sealed');
  const acts = p.A.s.noteSealed(e1, 100, now());
  t.equal(p.A.s.sendEpoch(now()), null, 'no 21st record: sealing stops at hard_limit_records');
  t.ok(acts.some((a) => a.type === 'log' && a.event === 'epoch_hard_limit' && a.fields.limit === 'records'), 'alarm');
  t.ok(acts.some((a) => a.type === 'epochs-changed'), 'the data plane is told to re-check (and hold)');
  p.holdKeys = false;
  p.advance(20_000); // the stuck handshake times out; the retry completes
  const e2 = p.A.s.slots.current!;
  t.ok(e2.n > e1.n, `a successor epoch ${e2.n} is installed`);
  t.equal(e2.sealedRecords, 0, 'the successor starts at record 0');
  t.equal(p.A.s.sendEpoch(now()), e2, 'sealing resumes under it');
});

t.test('a receiver refuses records past the hard limit of the epoch (per epoch and direction)', async (t) => {
  const p = new Pair({ hardLimitRecords: 5, rekeyAfterRecords: 4 }, { hardLimitRecords: 5, rekeyAfterRecords: 4 });
  p.connect();
  const e = p.B.s.slots.current ?? p.B.s.slots.next!;
  const now = p.clock.now();
  t.equal(p.B.s.newCarrierEpoch(e.low32, now), e, 'accepts new carriers at first');
  for (let i = 0; i < 4; i++) p.B.s.onAuthenticatedRecord(e, now);
  t.equal(p.B.s.carrierEpoch(e.low32, e, now), e, 'the 5th record is still accepted');
  p.B.s.onAuthenticatedRecord(e, now);
  t.equal(p.B.s.carrierEpoch(e.low32, e, now), null, 'past the limit: refused for a pinned carrier');
  t.equal(p.B.s.carrierEpoch(e.low32, null, now), null, 'and for any carrier');
  t.equal(p.B.s.newCarrierEpoch(e.low32, now), null, 'and for new carriers');
  t.ok(p.B.s.sendEpoch(now), 'our own sending direction is counted apart and goes on');
});

t.test('bytes: crossing rekey_after_bytes triggers once; a responder asks with REKEY_REQUEST once per epoch', async (t) => {
  const p = new Pair({ rekeyAfterBytes: 1000 }, { rekeyAfterBytes: 1000 });
  p.connect();
  const eB = p.B.s.slots.current!;
  p.holdKeys = true;
  for (let i = 0; i < 30; i++) p.apply(p.B, p.B.s.noteSealed(eB, 100, p.clock.now()));
  p.pump();
  const requests = p.B.actions.filter((a) => a.type === 'send' && a.msg.type === 'REKEY_REQUEST');
  t.equal(requests.length, 1, 'one REKEY_REQUEST for the epoch');
  t.match(requests[0], { msg: { reason: 'bytes', epoch: eB.n } });
});

t.test('simultaneous triggers on both sides: exactly one enc_keys (C33, BC-25)', async (t) => {
  const p = new Pair({ rekeyAfterRecords: 3, hardLimitRecords: 100 }, { rekeyAfterRecords: 3, hardLimitRecords: 100 });
  p.connect();
  const before = p.encCalls;
  const eA = p.A.s.slots.current!;
  const eB = p.B.s.slots.current!;
  p.holdKeys = true;
  // Both cross their record trigger in the same instant; the responder's request arrives while A's handshake is in flight.
  for (let i = 0; i < 3; i++) p.apply(p.A, p.A.s.noteSealed(eA, 1, p.clock.now()));
  for (let i = 0; i < 3; i++) p.apply(p.B, p.B.s.noteSealed(eB, 1, p.clock.now()));
  p.pump();
  t.equal(p.B.actions.filter((x) => x.type === 'send' && x.msg.type === 'REKEY_REQUEST').length, 1, 'the responder asked');
  t.equal(p.A.s.counters.get('rekey_request_ignored'), 1, 'the initiator ignored the request: its own handshake is in flight');
  t.equal(p.encCalls - before, 1, 'one enc_keys for the two triggers');
  p.holdKeys = false;
  p.advance(15_000);
  t.equal(p.A.s.slots.current!.n, p.B.s.slots.current!.n, 'both on one epoch');
  t.equal(p.events(p.A, 'epoch_switch').length, 2, 'exactly one new epoch (plus the first)');
});

t.test('time trigger: rekey at rekey_after_time + jitter, the jitter drawn in [0, rekey_jitter)', async (t) => {
  for (const [r, expectAt] of [
    [0, 120_000],
    [0.5, 125_000],
    [0.9999, 129_999],
  ] as const) {
    const p = new Pair({ rekeyJitterMs: 10_000, random: () => r }, {});
    p.connect();
    const t0 = p.clock.now();
    p.advance(expectAt - 1);
    t.equal(started(p).length, 1, `random ${r}: no rekey 1 ms before ${expectAt} ms`);
    p.advance(1);
    t.equal(started(p).length, 2, `random ${r}: rekey at ${expectAt} ms`);
    t.equal(p.clock.now() - t0, expectAt);
  }
});

t.test('retry backoff follows retry_backoff_min/max, jittered in [base/2, base]', async (t) => {
  const p = new Pair({ backoffMinMs: 1_000, backoffMaxMs: 8_000, random: () => 0.999 }, {});
  p.encFail = 'QKDGW_E_KMS_UNAVAILABLE';
  p.connect();
  p.advance(80_000);
  const waits = p.events(p.A, 'handshake_failed').map((f) => Number(f.retry_in_ms));
  t.same(waits.slice(0, 5), [1_000, 1_999, 3_998, 7_996, 7_996], 'doubling from 1 s, capped at 8 s (jitter factor 0.9995; never under the minimum)');
  t.ok(waits.every((w) => w >= 1_000 && w <= 8_000), 'every wait inside the bounds');
});

t.test('a degraded epoch under preferred rekeys after min(degraded_lifetime, rekey_after_time)', async (t) => {
  const p = new Pair({ qkd: 'preferred', degradedLifetimeMs: 500_000, rekeyAfterTimeMs: 30_000, hardLimitTimeMs: 60_000 }, { qkd: 'preferred', hardLimitTimeMs: 60_000 });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.connect();
  const n = p.A.s.slots.current!.n;
  p.advance(30_000);
  t.ok(p.A.s.slots.current!.n > n, 'rekeyed at rekey_after_time, not at the longer degraded_lifetime');
});
