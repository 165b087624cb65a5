/**
 * Backoff math (src/kms/backoff.ts) and the per-peer KME gates (src/kms/kme-health.ts)
 * that the KeySource and the KeyPool use: etsi014-C29 (jittered capped exponential
 * backoff), BC-26 (minimum spacing after a transient failure; exhaustion backs off on its
 * own schedule). Table tests, no clock.
 */
import t from 'tap';
import { backoffDelay } from '../../../src/kms/backoff.js';
import { KmeHealth } from '../../../src/kms/kme-health.js';

t.test('etsi014-C29 backoffDelay: exponential, jittered, capped, floored', async (t) => {
  const p = { baseMs: 500, maxMs: 2000, floorMs: 0 };
  const rows: Array<[number, number, number]> = [
    // [retry n, r, want]
    [1, 0.5, 500],
    [2, 0.5, 1000],
    [3, 0.5, 2000],
    [4, 0.5, 2000], // capped
    [1, 0, 375], // jitter x0.75
    [1, 0.999999, 624.99975], // jitter just under x1.25
    [3, 0.999999, 2000], // the cap is hard even with jitter
    [100, 0.5, 2000], // huge exponent: cap, not Infinity/NaN
    [0, 0.5, 500], // n < 1 behaves as the first retry
  ];
  for (const [n, r, want] of rows) t.ok(Math.abs(backoffDelay(p, n, r) - want) < 1e-6, `n=${n} r=${r}: ${backoffDelay(p, n, r)} ~ ${want}`);
  t.equal(backoffDelay({ baseMs: 100, maxMs: 2000, floorMs: 500 }, 1, 0), 500, 'the floor (minimum spacing) wins');
  t.equal(backoffDelay({ baseMs: 100, maxMs: 300, floorMs: 500 }, 5, 0.5), 500, 'floor above the cap: floor');
  t.equal(backoffDelay({ baseMs: 1000, maxMs: 30_000, jitter: 0 }, 3, 0.9), 4000, 'jitter 0');
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay({ baseMs: 1000, maxMs: 30_000 }, 1 + (i % 8), Math.random());
    t.ok(d >= 0 && d <= 30_000 && Number.isFinite(d));
  }
});

t.test('BC-26 KmeHealth: spacing gate after a transient failure, exhaustion gate on its own schedule', async (t) => {
  const h = new KmeHealth({ minSpacingMs: 500, exhausted: { baseMs: 1000, maxMs: 30_000 }, random: () => 0.5 });
  t.equal(h.waitMs('B', 'enc_keys', 0), 0, 'unknown peer: open');
  h.attemptFailed('B', 'transient', 'QKDGW_E_KMS_UNAVAILABLE', 1000, { op: 'enc_keys' });
  t.equal(h.waitMs('B', 'enc_keys', 1000), 500);
  t.equal(h.waitMs('B', 'status', 1200), 300, 'the spacing applies to every call for the peer');
  t.equal(h.waitMs('C', 'enc_keys', 1000), 0, 'other peers are not affected');
  t.equal(h.gateCode('B', 'enc_keys'), 'QKDGW_E_KMS_UNAVAILABLE');
  // non-retryable kinds do not close a gate
  h.attemptFailed('D', 'auth', 'QKDGW_E_KMS_AUTH', 0, { op: 'enc_keys' });
  t.equal(h.waitMs('D', 'enc_keys', 0), 0);

  // exhaustion of a single-key enc_keys: 1 s, 2 s, 4 s ... capped at 30 s
  const waits: number[] = [];
  for (let i = 0; i < 7; i++) waits.push(h.attemptFailed('E', 'exhausted', 'QKDGW_E_KMS_EXHAUSTED', 0, { op: 'enc_keys', keys: 1 }));
  t.same(waits, [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  t.equal(h.waitMs('E', 'status', 0), 500, 'status is only spaced, never held back by exhaustion (it is how recovery is seen)');
  t.equal(h.gateCode('E', 'enc_keys'), 'QKDGW_E_KMS_EXHAUSTED');
  t.equal(h.snapshot('E').consecutiveExhausted, 7);
  // a batch refused as exhausted says nothing about single keys: spacing only
  h.attemptFailed('F', 'exhausted', 'QKDGW_E_KMS_EXHAUSTED', 0, { op: 'enc_keys', keys: 4 });
  t.equal(h.waitMs('F', 'enc_keys', 0), 500);
  t.equal(h.snapshot('F').consecutiveExhausted, 0);
  // a delivered key ends the exhaustion backoff and the failure streak
  h.callFailed('E', { op: 'enc_keys', code: 'QKDGW_E_KMS_EXHAUSTED', kind: 'exhausted', message: 'x', at: 0 });
  h.callFailed('E', { op: 'enc_keys', code: 'QKDGW_E_KMS_EXHAUSTED', kind: 'exhausted', message: 'x', at: 0 });
  t.equal(h.callSucceeded('E', 'enc_keys'), 2, 'returns the streak that ended');
  const s = h.snapshot('E');
  t.same([s.consecutiveFailures, s.totalFailures, s.consecutiveExhausted, s.encNotBefore], [0, 2, 0, 0]);
  t.equal(h.callSucceeded('nobody', 'enc_keys'), 0);
});
