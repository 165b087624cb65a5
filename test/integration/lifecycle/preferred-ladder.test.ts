// etsi014-C36 (degrade), protocol.md s6 `qkd: preferred`: when the KME runs dry the
// initiator steps down to degraded epochs (mode bit1: ML-KEM + X25519 only, alarm on both
// sides) that keep the flow going and rekey after `degraded_lifetime`; when keys return,
// `recovery_checks` good status checks in a row bring back a QKD epoch (`qkd_restored`).
// One outage = one step down, one alarm and one restore per side: no flapping.
// Variant: a `required` responder refuses the degraded INIT (ALERT policy_refused): the
// pair holds instead of degrading.
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, edits, eventCount, kmeSection, linesOf, qkdPolicy, stampLines, startEchoStream } from './helpers.js';

const MODE_DEGRADED = 2;
const MODE_CHAINED = 1;

t.test('etsi014-C36 preferred: KME dry -> degraded epochs carry the flow; keys back -> recovery checks -> QKD epoch; one alarm, one restore per side', async (t) => {
  const REKEY_MS = 4_000;
  const DEGRADED_MS = 1_500;
  const STATUS_MS = 300;
  const CHECKS = 3;
  const lab = await startLab(t, {
    rekeyAfterTime: `${REKEY_MS}ms`,
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '8s',
    grace: '2s',
    policy: { degraded_lifetime: `${DEGRADED_MS}ms`, recovery_checks: String(CHECKS), retry_backoff_min: '200ms', retry_backoff_max: '1s', hold: '30s', carrier_hold: '30s' },
    // pool 0: the rekey after the drain is the first to find no key (no keys held ahead).
    editA: edits(qkdPolicy('preferred'), kmeSection({ pool: 0, statusInterval: `${STATUS_MS}ms` })),
    editB: qkdPolicy('preferred'),
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  const trB = new EpochTracker(lab.rtB());
  t.teardown(() => (trA.stop(), trB.stop()));
  const stream = await startEchoStream(lab.servicePort);
  await until(() => stream.received() > 0, 10_000, 'the flow to carry data');

  // ---- keys run out
  lab.sim.control.setLink({ paused: true });
  lab.sim.control.drain();
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;
  await until(() => eventCount(lab.rtA(), 'qkd_degraded') > 0 && eventCount(lab.rtB(), 'qkd_degraded') > 0, REKEY_MS + 10_000, 'qkd_degraded on both sides');
  const stepDown = linesOf(lab.logA, 'qkd_step_down', markA);
  t.equal(stepDown.length, 1, 'gw-a (initiator) stepped down once');
  t.match(String(stepDown[0]?.reason), /enc_keys failed/, `because enc_keys failed: ${String(stepDown[0]?.cause).slice(0, 100)}`);
  t.equal(eventCount(lab.rtB(), 'qkd_step_down'), 0, 'gw-b (responder) has no ladder of its own: it follows the INIT');
  for (const [name, log, mark] of [['gw-a', lab.logA, markA], ['gw-b', lab.logB, markB]] as const) {
    const alarm = linesOf(log, 'qkd_degraded', mark)[0];
    t.equal(alarm.level, 'error', `${name}: qkd_degraded is an error-level alarm`);
  }

  // Degraded epochs carry the flow and rekey after degraded_lifetime, not rekey_after_time.
  await until(() => trA.all.filter((e) => (e.mode & MODE_DEGRADED) !== 0).length >= 3, 3 * DEGRADED_MS + 10_000, 'three degraded epochs');
  const degradedA = trA.all.filter((e) => (e.mode & MODE_DEGRADED) !== 0);
  t.ok(degradedA.every((e) => e.mode === (MODE_DEGRADED | MODE_CHAINED) && e.keyIds.length === 0), 'degraded epochs: mode bit1 (and chained), no key_ID');
  const gaps = degradedA.slice(1, 3).map((e, i) => (trA.currentAt.get(e.n) ?? 0) - (trA.currentAt.get(degradedA[i].n) ?? 0));
  t.ok(gaps.every((g) => g >= DEGRADED_MS - 50 && g < DEGRADED_MS + 1_000), `degraded epochs rekey after degraded_lifetime ${DEGRADED_MS} ms (gaps ${gaps.map(Math.round).join(', ')} ms), not after rekey_after_time ${REKEY_MS} ms`);
  const carried = degradedA.slice(0, 2);
  t.ok(carried.every((e) => e.sealedRecords > 0), `gw-a sealed the flow under degraded epochs (${carried.map((e) => e.sealedRecords).join(', ')} records)`);
  const degradedB = trB.all.filter((e) => (e.mode & MODE_DEGRADED) !== 0).slice(0, 2);
  t.ok(degradedB.length === 2 && degradedB.every((e) => e.sealedRecords > 0 && e.openedRecords > 0), `gw-b opened and sealed (the echo) under degraded epochs (${degradedB.map((e) => `${e.openedRecords}/${e.sealedRecords}`).join(', ')})`);
  t.equal(eventCount(lab.rtA(), 'qkd_recovery_ready'), 0, 'no recovery while the store stays empty');

  // ---- keys return: recovery_checks good status checks, then a QKD epoch
  const checksBefore = linesOf(lab.logA, 'kme_status_checked').length;
  lab.sim.control.setLink({ paused: false });
  lab.sim.control.addKeys(20);
  const backAt = performance.now();
  await until(() => eventCount(lab.rtA(), 'qkd_recovery_ready') > 0, 10_000, 'qkd_recovery_ready');
  const ready = linesOf(lab.logA, 'qkd_recovery_ready')[0];
  t.equal(ready.good_checks, CHECKS, `qkd_recovery_ready after ${CHECKS} good checks`);
  const goodChecks = linesOf(lab.logA, 'kme_status_checked').slice(checksBefore).filter((l) => (l.t as number) <= (ready.t as number));
  t.ok(goodChecks.length >= CHECKS, `${goodChecks.length} status checks since keys returned, the last ${CHECKS} with stored keys`);
  t.ok(goodChecks.slice(-CHECKS).every((l) => (l.kmeStoredKeyCount as number) >= 1), 'each showed stored_key_count >= 1');
  await until(() => eventCount(lab.rtA(), 'qkd_restored') > 0 && eventCount(lab.rtB(), 'qkd_restored') > 0, DEGRADED_MS + 10_000, 'qkd_restored on both sides');
  const restored = linesOf(lab.logA, 'qkd_restored')[0];
  const restoredEpoch = trA.byNumber.get(restored.epoch as number)!;
  t.equal(restoredEpoch.mode & MODE_DEGRADED, 0, `the restoring epoch ${restoredEpoch.n} is a QKD epoch (mode ${restoredEpoch.mode})`);
  t.equal(restoredEpoch.keyIds.length, 1, 'with one key_ID');
  t.ok((restored.t as number) >= (ready.t as number), 'restored only after recovery was ready (hysteresis)');
  t.comment(`keys back -> recovery ready ${Math.round((ready.t as number) - backAt)} ms -> restored ${Math.round((restored.t as number) - backAt)} ms`);

  // One more QKD rekey on the normal interval: the ladder does not flap back.
  await until(() => trA.currents.some((n) => n > restoredEpoch.n) && trB.currents.some((n) => n > restoredEpoch.n), REKEY_MS + 10_000, 'the next QKD rekey');
  const after = trA.byNumber.get(trA.currents.find((n) => n > restoredEpoch.n)!)!;
  t.equal(after.mode & MODE_DEGRADED, 0, 'the next epoch is QKD too');
  const r = await stream.finish();
  t.ok(r.intact, `the flow came back intact across QKD -> degraded -> QKD (${r.sent} bytes each way, end: ${r.how})`);

  for (const [name, rt] of [['gw-a', lab.rtA()], ['gw-b', lab.rtB()]] as const) {
    t.equal(eventCount(rt, 'qkd_degraded'), 1, `${name}: exactly one qkd_degraded for one outage`);
    t.equal(eventCount(rt, 'qkd_restored'), 1, `${name}: exactly one qkd_restored`);
    t.equal(eventCount(rt, 'epoch_hard_limit'), 0, `${name}: never on hold (no epoch reached its hard limit)`);
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
    t.equal(rt.stats.authFailures, 0, `${name}: no authentication failure`);
  }
  t.equal(eventCount(lab.rtA(), 'qkd_step_down'), 1, 'gw-a: exactly one qkd_step_down');
  t.equal(eventCount(lab.rtA(), 'qkd_recovery_ready'), 1, 'gw-a: exactly one qkd_recovery_ready');
  t.equal(eventCount(lab.rtA(), 'qkd_recovery_lost'), 0, 'gw-a: no qkd_recovery_lost');
});

t.test('etsi014-C36 preferred initiator, required responder: degraded INIT refused (ALERT policy_refused), the pair holds, never degrades', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: '2s',
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '5s',
    grace: '2s',
    policy: { retry_backoff_min: '200ms', retry_backoff_max: '1s', hold: '40s', carrier_hold: '40s' },
    editA: edits(qkdPolicy('preferred'), kmeSection({ pool: 0, statusInterval: '300ms' })),
    // gw-b keeps the lab's `qkd: required`.
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  const trB = new EpochTracker(lab.rtB());
  t.teardown(() => (trA.stop(), trB.stop()));
  const stream = await startEchoStream(lab.servicePort);
  await until(() => stream.received() > 0, 10_000, 'the flow to carry data');

  lab.sim.control.setLink({ paused: true });
  lab.sim.control.drain();
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;
  await until(() => eventCount(lab.rtB(), 'degraded_refused') > 0 && eventCount(lab.rtA(), 'degraded_refused_by_peer') > 0, 15_000, 'the degraded INIT refused');
  const refused = linesOf(lab.logB, 'degraded_refused', markB)[0];
  t.match(String(refused.reason), /requires a QKD key/, `gw-b: degraded_refused (${String(refused.reason)})`);
  const alert = linesOf(lab.logA, 'alert_received', markA).find((l) => l.code === 'policy_refused');
  t.ok(alert, 'gw-a received ALERT policy_refused');
  t.equal(alert?.epoch, refused.epoch, 'naming the refused epoch');
  t.equal(alert?.fatal, false, 'handshake-only: the control connection stays');
  const byPeer = linesOf(lab.logA, 'degraded_refused_by_peer', markA)[0];
  t.equal(byPeer.level, 'error', 'gw-a: degraded_refused_by_peer is an error-level alarm');
  t.ok(eventCount(lab.rtA(), 'qkd_step_down') >= 1, 'gw-a stepped down before (its QKD attempt failed)');

  // The pair holds at the hard limit instead of degrading.
  await until(() => eventCount(lab.rtA(), 'epoch_hard_limit') > 0 && eventCount(lab.rtB(), 'epoch_hard_limit') > 0, 15_000, 'epoch_hard_limit on both sides');
  const held = lab.rtA().session.slots.current!;
  await until(() => stream.blocked(), 20_000, 'the client writer to block (traffic held)');
  const targetBytes = lab.targets[0].bytes;
  const checks0 = linesOf(lab.logA, 'kme_status_checked').length;
  await until(() => linesOf(lab.logA, 'kme_status_checked').length >= checks0 + 2, 10_000, 'two more status checks during the hold');
  t.equal(lab.targets[0].bytes, targetBytes, 'traffic held: nothing reached the target');
  t.equal(lab.rtA().sendEpoch(), null, 'gw-a holds');
  t.notOk(stream.ended(), 'the client flow is not reset');

  lab.sim.control.setLink({ paused: false });
  lab.sim.control.addKeys(20);
  await until(() => trA.currents.some((n) => n > held.n) && trB.currents.some((n) => n > held.n), 35_000, 'a new epoch after keys returned');
  const next = trA.byNumber.get(trA.currents.find((n) => n > held.n)!)!;
  t.equal(next.mode & MODE_DEGRADED, 0, `the epoch after the outage (${next.n}) is QKD`);
  const r = await stream.finish();
  t.ok(r.intact, `the flow came back intact after the hold (${r.sent} bytes each way, end: ${r.how})`);

  for (const [name, tr, rt, log] of [['gw-a', trA, lab.rtA(), lab.logA], ['gw-b', trB, lab.rtB(), lab.logB]] as const) {
    t.same(tr.all.filter((e) => (e.mode & MODE_DEGRADED) !== 0).map((e) => e.n), [], `${name}: no degraded epoch was ever held`);
    t.equal(eventCount(rt, 'qkd_degraded'), 0, `${name}: no qkd_degraded`);
    t.equal(linesOf(log, 'epoch_next').filter((l) => ((l.mode as number) & MODE_DEGRADED) !== 0).length, 0, `${name}: no degraded epoch derived`);
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
  }
  t.comment(`refusals: gw-b ${eventCount(lab.rtB(), 'degraded_refused')}, step-downs at gw-a ${eventCount(lab.rtA(), 'qkd_step_down')}, failed handshakes at gw-a ${lab.rtA().stats.handshakeFailures}`);
});
