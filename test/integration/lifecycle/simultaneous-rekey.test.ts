// etsi014-C33 / BC-25: exactly one gateway of a pair (the initiator, gw-a) is the master
// SAE of every rekey. When both gateways cross a data-volume trigger at the same moment
// (an echo flow pushes the same bytes both ways, rekey_after_bytes small on both), the
// responder's REKEY_REQUEST is merged into the initiator's own rekey or ignored: exactly
// one enc_keys (at gw-a's KME) and one dec_keys (at gw-b's KME) per new epoch, no epoch
// number burned, no failed handshake, and the flow stays intact.
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { eventCount, kmeSection, linesOf, requestsAt, startEchoStream, totalRequests } from './helpers.js';

t.test('etsi014-C33 both gateways start at once: one enc_keys for the first epoch, at the initiator only', async (t) => {
  // pool 0: every enc_keys is a handshake's own (no keys fetched ahead).
  const lab = await startLab(t, { editA: kmeSection({ pool: 0 }) });
  await lab.ready();
  t.equal(lab.rtA().session.slots.current!.n, 1, 'one epoch, number 1');
  t.same(requestsAt(lab.sim, 'KME_A', 'enc_keys'), { 200: 1 }, 'gw-a (master SAE) made exactly one enc_keys');
  t.equal(totalRequests(lab.sim, 'KME_B', 'enc_keys'), 0, 'gw-b never called enc_keys');
  t.same(requestsAt(lab.sim, 'KME_B', 'dec_keys'), { 200: 1 }, 'gw-b (slave SAE) made exactly one dec_keys');
  t.equal(totalRequests(lab.sim, 'KME_A', 'dec_keys'), 0, 'gw-a never called dec_keys');
  t.equal(eventCount(lab.rtA(), 'handshake_started'), 1, 'one handshake');
});

t.test('BC-25 etsi014-C33 both sides cross rekey_after_bytes together: one enc_keys per new epoch, the REKEY_REQUEST merged or ignored', async (t) => {
  const EPOCHS = 12;
  const lab = await startLab(t, {
    rekeyAfterTime: '60s',
    rekeyJitter: '0s',
    hardLimitTime: '120s',
    policy: { rekey_after_bytes: '512KiB' },
    editA: kmeSection({ pool: 0 }),
  });
  await lab.ready();
  const encA0 = requestsAt(lab.sim, 'KME_A', 'enc_keys')['200'] ?? 0;
  const decB0 = requestsAt(lab.sim, 'KME_B', 'dec_keys')['200'] ?? 0;
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;
  const first = lab.rtA().session.slots.current!.n;

  const stream = await startEchoStream(lab.servicePort);
  await until(() => lab.rtA().session.slots.current!.n >= first + EPOCHS, 30_000, `${EPOCHS} byte-triggered rekeys`);
  const r = await stream.finish();
  // Let the last handshake (if one is in flight) end and gw-b catch up before counting.
  await until(
    () => !lab.rtA().session.handshakeInFlight && !lab.rtB().session.handshakeInFlight && lab.rtB().session.slots.current?.n === lab.rtA().session.slots.current?.n && lab.rtB().session.slots.next === null,
    10_000,
    'both sides idle on the same epoch',
  );

  const switchesA = linesOf(lab.logA, 'epoch_switch', markA);
  const switchesB = linesOf(lab.logB, 'epoch_switch', markB);
  const started = linesOf(lab.logA, 'handshake_started', markA);
  const enc = (requestsAt(lab.sim, 'KME_A', 'enc_keys')['200'] ?? 0) - encA0;
  const dec = (requestsAt(lab.sim, 'KME_B', 'dec_keys')['200'] ?? 0) - decB0;
  t.ok(switchesA.length >= EPOCHS, `${switchesA.length} new epochs`);
  t.equal(enc, switchesA.length, `exactly one enc_keys per new epoch (${enc} enc_keys, ${switchesA.length} epochs)`);
  t.equal(dec, switchesA.length, 'exactly one dec_keys per new epoch');
  t.equal(totalRequests(lab.sim, 'KME_A', 'enc_keys') - encA0, enc, 'no enc_keys failed or was retried');
  t.equal(totalRequests(lab.sim, 'KME_B', 'enc_keys'), 0, 'gw-b (responder) never called enc_keys: it never became master');
  t.equal(started.length, switchesA.length, 'every handshake started became an epoch');
  t.same(switchesB.map((l) => l.epoch), switchesA.map((l) => l.epoch), 'gw-b installed the same epochs');
  const nums = switchesA.map((l) => l.epoch as number);
  t.ok(nums.every((n, i) => i === 0 || n === nums[i - 1] + 1), `epoch numbers consecutive (${nums[0]}..${nums[nums.length - 1]}): none burned by a collision`);
  const keyIds = switchesA.map((l) => (l.key_IDs as string[])[0]);
  t.equal(new Set(keyIds).size, keyIds.length, 'each epoch with its own key_ID');

  // Both sides did cross their trigger: gw-b asked, gw-a merged or ignored every request.
  const requested = linesOf(lab.logB, 'rekey_request_sent', markB).length;
  const honoured = linesOf(lab.logA, 'rekey_requested', markA).length;
  const ignored = linesOf(lab.logA, 'rekey_request_ignored', markA).length;
  t.ok(requested > 0, `gw-b crossed its own trigger and sent ${requested} REKEY_REQUEST(s)`);
  t.equal(honoured + ignored, requested, `gw-a accounted for every request (${honoured} acted on: they started or joined the one wanted rekey; ${ignored} ignored: stale epoch or handshake in flight)`);
  t.equal(lab.rtA().session.counters.get('rekey_request_ignored') ?? 0, ignored, 'the session counter agrees');
  const reasons = new Map<string, number>();
  for (const l of started) reasons.set(String(l.reason), (reasons.get(String(l.reason)) ?? 0) + 1);
  t.comment(`handshake reasons: ${[...reasons].map(([k, v]) => `${k} x${v}`).join(', ')}`);
  t.ok(started.every((l) => /bytes/.test(String(l.reason))), 'every rekey was byte-triggered (own trigger or the peer request)');

  for (const [name, rt, log] of [['gw-a', lab.rtA(), lab.logA], ['gw-b', lab.rtB(), lab.logB]] as const) {
    t.equal(eventCount(rt, 'handshake_failed'), 0, `${name}: no failed handshake`);
    t.equal(linesOf(log, 'alert_sent').length + linesOf(log, 'alert_received').length, 0, `${name}: no ALERT either way`);
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
    t.equal(rt.stats.authFailures, 0, `${name}: no authentication failure`);
  }
  t.ok(r.intact, `the flow came back intact (${r.sent} bytes each way, end: ${r.how})`);
});
