// etsi014-C34 (protocol.md s3.4, s4): gw-b's KME hands gw-b DIFFERENT bytes under the key_ID
// gw-a got (a mis-keying KME). Key confirmation must catch it: tag_R fails at gw-a
// (`handshake_failed` bad_tag), gw-a sends ALERT bad_tag, gw-b discards the `next` it
// derived; the mismatched epoch is never installed on gw-a, never promoted on gw-b, and no
// record is ever sealed or opened under it. The next epoch succeeds and the flow is intact.
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, eventCount, kmeSection, linesOf, stampLines, startEchoStream } from './helpers.js';

t.test('etsi014-C34 mismatched QKD key at the slave KME: key confirmation fails, ALERT, the epoch is never used; the next epoch works', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: '1s',
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '10s',
    grace: '2s',
    policy: { retry_backoff_min: '200ms', retry_backoff_max: '1s' },
    // pool 0: the mismatch is armed for the next key enc_keys hands out, i.e. the next rekey's.
    editA: kmeSection({ pool: 0 }),
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  const trB = new EpochTracker(lab.rtB());
  t.teardown(() => (trA.stop(), trB.stop()));
  const stream = await startEchoStream(lab.servicePort);
  const sw0 = linesOf(lab.logA, 'epoch_switch').length;
  await until(() => linesOf(lab.logA, 'epoch_switch').length > sw0 && stream.received() > 0, 10_000, 'an epoch switch with the flow running');

  // gw-b's KME (the slave SAE's) returns other bytes for the next key.
  lab.sim.control.setFaults({ kme: 'KME_B', mismatchNext: 1 });
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;
  const good = lab.rtA().session.slots.current!;

  await until(() => linesOf(lab.logA, 'handshake_failed', markA).length > 0, 10_000, 'key confirmation to fail at gw-a');
  const failed = linesOf(lab.logA, 'handshake_failed', markA)[0];
  const bad = failed.epoch as number;
  const badKeyId = (failed.key_IDs as string[])[0];
  t.match(String(failed.reason), /bad_tag \(tag_R\)/, `gw-a: handshake_failed, ${String(failed.reason)}`);
  t.equal(lab.sim.control.state().injected.KME_B.mismatch, 1, 'the simulator mis-keyed exactly one key');
  t.ok(typeof badKeyId === 'string' && badKeyId.length > 0, `the failed handshake names its key_ID ${badKeyId}`);

  await until(() => linesOf(lab.logB, 'alert_received', markB).some((l) => l.epoch === bad), 5_000, 'gw-b to receive the ALERT');
  const got = linesOf(lab.logB, 'alert_received', markB).find((l) => l.epoch === bad)!;
  t.equal(got.code, 'bad_tag', 'gw-b: alert_received bad_tag for that epoch');
  t.equal(got.fatal, false, 'a tag_R failure is handshake-only: the control connection stays');
  // The sender side: the ALERT gw-a sent must be visible in its log too.
  const sent = linesOf(lab.logA, 'alert_sent', markA).find((l) => l.epoch === bad);
  t.ok(sent, 'gw-a: alert_sent bad_tag for that epoch');
  t.equal(sent?.code, 'bad_tag');
  const derivedB = linesOf(lab.logB, 'epoch_next', markB).find((l) => l.epoch === bad);
  t.ok(derivedB, `gw-b derived epoch ${bad} as next (receive-capable) from its wrong key`);
  t.ok(linesOf(lab.logB, 'epoch_discarded', markB).some((l) => l.epoch === bad), 'gw-b discarded it on the ALERT');

  // The next epoch succeeds.
  await until(() => trA.currents.some((n) => n > bad) && trB.currents.some((n) => n > bad), 10_000, 'the next epoch on both sides');
  const next = trA.byNumber.get(trA.currents.find((n) => n > bad)!)!;
  t.not(next.keyIds[0], badKeyId, `epoch ${next.n} uses a fresh key_ID`);
  t.equal(next.mode & 2, 0, 'and is a QKD epoch');
  const r = await stream.finish();
  t.ok(r.intact, `the flow came back intact (${r.sent} bytes each way, end: ${r.how})`);

  // The mismatched epoch was never used.
  t.notOk(trA.byNumber.has(bad), `gw-a never held epoch ${bad} in any slot`);
  t.notOk(trB.currents.includes(bad), `gw-b never made epoch ${bad} current`);
  const heldB = trB.byNumber.get(bad);
  t.ok(heldB, 'gw-b held it as next (seen by the tracker)');
  t.equal(heldB?.openedRecords, 0, 'gw-b opened no record under it');
  t.equal(heldB?.sealedRecords, 0, 'gw-b sealed no record under it');
  t.ok(heldB?.wiped, 'its secrets are zeroized');
  for (const [name, log] of [['gw-a', lab.logA], ['gw-b', lab.logB]] as const) {
    t.equal(linesOf(log, 'epoch_switch').filter((l) => l.epoch === bad).length, 0, `${name}: no epoch_switch to epoch ${bad}`);
  }
  t.equal(lab.rtA().stats.authFailures + lab.rtB().stats.authFailures, 0, 'zero authentication failures: no record ever met the bad key');
  t.equal(lab.rtA().stats.carrierAborts + lab.rtB().stats.carrierAborts, 0, 'zero carrier aborts');
  t.equal(eventCount(lab.rtA(), 'handshake_failed'), 1, 'gw-a: exactly one failed handshake');
  t.ok(good.n < bad, `the epoch in use before (${good.n}) carried the flow meanwhile`);
});
