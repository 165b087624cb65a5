// KmeHealth gates (src/kms/kme-health.ts): the exhaustion gate of enc_keys backs off 1 s
// doubling, and a status check that shows stored keys opens it at once, so a KME outage
// does not outlive the keys' return by up to 30 s (found by the kme-outage demo).
import t from 'tap';
import { KmeHealth } from '../../../src/kms/kme-health.js';

const policy = { minSpacingMs: 500, exhausted: { baseMs: 1_000, maxMs: 30_000, jitter: 0 }, random: () => 0.5 };

t.test('exhaustion gate: backs off, and opens when a status check shows stored keys', async (t) => {
  const h = new KmeHealth(policy);
  let now = 0;
  for (let i = 0; i < 5; i++) {
    h.attemptFailed('gw-b', 'exhausted', 'QKDGW_E_KMS_EXHAUSTED', now, { op: 'enc_keys', keys: 1 });
    now += 1;
  }
  const wait = h.waitMs('gw-b', 'enc_keys', now);
  t.ok(wait >= 15_000, `after 5 exhausted calls enc_keys waits ${wait} ms`);
  t.equal(h.waitMs('gw-b', 'status', now + 600), 0, 'status calls only wait for the 500 ms spacing');
  t.equal(h.keysAvailable('gw-b'), true, 'a status with stored keys opens the gate');
  t.equal(h.waitMs('gw-b', 'enc_keys', now + 600), 0, 'enc_keys may go at once (after the spacing)');
  t.equal(h.snapshot('gw-b').consecutiveExhausted, 0);
  t.equal(h.keysAvailable('gw-b'), false, 'a second call reports nothing to clear');
  t.equal(h.keysAvailable('never-seen'), false);
});
