// BC-28 / etsi014-C36 (fail-closed), protocol.md s4 "Hold" and s6 `qkd: required`: while
// the KME works the key_ID and epoch change on every rekey; when the KME store is emptied
// and paused, the current epoch carries traffic until its hard limit and not a record
// longer; then the pair holds (the client's flow is not reset, its writes back up); no
// degraded epoch ever; when keys return a QKD epoch is installed and the flow completes
// with every byte intact. Real gateways, real simulator, real sockets, real time.
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, eventCount, kmeSection, linesOf, sampler, stampLines, startEchoStream } from './helpers.js';

const REKEY_MS = 1_000;
const HARD_LIMIT_MS = 4_000;

t.test('BC-28 etsi014-C36 required: KME outage -> current epoch until its hard limit, then hold; a QKD epoch and every byte after keys return', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: `${REKEY_MS}ms`,
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: `${HARD_LIMIT_MS}ms`,
    grace: '2s',
    // hold/carrier_hold longer than the whole outage (protocol.md s6: raise them to ride out KME outages).
    policy: { hold: '60s', carrier_hold: '60s', retry_backoff_min: '200ms', retry_backoff_max: '1s' },
    // The default pool (3 keys held ahead) stays: the outage first eats the pooled keys.
    editA: kmeSection({ statusInterval: '500ms' }),
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  const trB = new EpochTracker(lab.rtB());
  t.teardown(() => (trA.stop(), trB.stop()));
  const started = performance.now();
  const stream = await startEchoStream(lab.servicePort);
  const targetBytes = sampler(() => lab.targets[0]?.bytes ?? 0);
  t.teardown(() => targetBytes.stop());

  // ---- while the KME works: the key_ID and the epoch change on every rekey (BC-28)
  const sw0 = linesOf(lab.logA, 'epoch_switch').length;
  await until(() => linesOf(lab.logA, 'epoch_switch').length >= sw0 + 3 && stream.received() > 0, 15_000, '3 rekeys with the KME working');
  const working = linesOf(lab.logA, 'epoch_switch');
  const keyIds = working.map((l) => (l.key_IDs as string[])[0]);
  t.equal(new Set(keyIds).size, keyIds.length, `${keyIds.length} epochs, each with its own key_ID`);
  t.ok(working.slice(sw0).every((l, i, a) => i === 0 || (l.epoch as number) > (a[i - 1].epoch as number)), 'epoch numbers only grow');
  t.ok(working.length - sw0 >= 3, 'key_ID/epoch changed at least 3 times while the KME worked');

  // ---- the outage: empty store, no accrual
  lab.sim.control.setLink({ paused: true });
  lab.sim.control.drain();
  const outageAt = performance.now();
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;

  // The first rekey that finds no key fails; the epoch in use keeps carrying the flow.
  await until(() => linesOf(lab.logA, 'handshake_failed', markA).length > 0, 15_000, 'a rekey failing for lack of key material');
  const failed = linesOf(lab.logA, 'handshake_failed', markA)[0];
  t.match(String(failed.reason), /KMS_EXHAUSTED/, `the failed rekey says why: ${String(failed.reason).slice(0, 120)}`);

  await until(
    () => linesOf(lab.logA, 'epoch_hard_limit', markA).length > 0 && linesOf(lab.logB, 'epoch_hard_limit', markB).length > 0,
    HARD_LIMIT_MS + 10_000,
    'epoch_hard_limit on both gateways',
  );
  const heldA = lab.rtA().session.slots.current!;
  const heldB = lab.rtB().session.slots.current!;
  const hlA = linesOf(lab.logA, 'epoch_hard_limit', markA)[0];
  const hlB = linesOf(lab.logB, 'epoch_hard_limit', markB)[0];
  t.equal(hlA.epoch, heldA.n, `gw-a: epoch_hard_limit names the epoch in use (${heldA.n})`);
  t.equal(hlB.epoch, heldB.n, 'gw-b: the same for its epoch');
  t.equal(heldA.n, heldB.n, 'both gateways held the same epoch');
  t.equal(hlA.level, 'error', 'epoch_hard_limit is an error-level alarm');
  t.equal(hlA.qkd, 'required', 'it names the policy');
  // Up to its hard limit: the target kept receiving in the last second before it.
  const before = targetBytes.at((hlA.t as number) - 1_000);
  const atLimit = targetBytes.at(hlA.t as number);
  t.ok(atLimit > before, `the epoch in use carried the flow up to its hard limit (${atLimit - before} bytes reached the target in the second before it)`);
  t.ok(heldA.sealedRecords > 0 && heldB.sealedRecords > 0, `the held epoch carried records both ways (${heldA.sealedRecords} / ${heldB.sealedRecords})`);
  const hlDelay = (hlA.t as number) - (trA.currentAt.get(heldA.n) ?? 0);
  t.ok(hlDelay >= HARD_LIMIT_MS - 50 && hlDelay < HARD_LIMIT_MS + 1_000, `its hard limit came ${Math.round(hlDelay)} ms after it was installed (hard_limit_time ${HARD_LIMIT_MS} ms)`);
  t.equal(lab.rtA().sendEpoch(), null, 'gw-a has no epoch to seal under (hold)');
  t.equal(lab.rtB().sendEpoch(), null, 'gw-b neither');

  // ---- the hold: nothing sealed, the client's writes back up, its flow stays open
  const sealedA = heldA.sealedRecords;
  const sealedB = heldB.sealedRecords;
  await until(() => stream.blocked(), 20_000, 'the client writer to block (the tunnel stops taking bytes)');
  const targetAtBlock = lab.targets[0].bytes;
  const echoed = stream.received();
  // Two more KME status checks of gw-a (500 ms apart) as the yardstick of "a while later".
  const checks0 = linesOf(lab.logA, 'kme_status_checked').length;
  await until(() => linesOf(lab.logA, 'kme_status_checked').length >= checks0 + 2, 10_000, 'two more KME status checks during the hold');
  t.ok(stream.blocked(), 'the client writer is still blocked: its writes back up');
  t.equal(lab.targets[0].bytes, targetAtBlock, 'nothing reached the target during the hold');
  t.equal(stream.received(), echoed, 'nothing came back to the client during the hold');
  t.equal(heldA.sealedRecords, sealedA, 'gw-a sealed no record under the epoch past its hard limit');
  t.equal(heldB.sealedRecords, sealedB, 'gw-b neither');
  t.notOk(stream.ended(), 'the client flow was not reset or closed');
  t.equal(lab.targets[0].ended, null, 'the target connection is still open');

  // ---- keys return
  lab.sim.control.setLink({ paused: false });
  lab.sim.control.addKeys(20);
  const backAt = performance.now();
  await until(
    () => trA.currents.some((n) => n > heldA.n) && trB.currents.some((n) => n > heldB.n),
    35_000,
    'a new epoch on both gateways after keys returned',
  );
  const recoveredA = trA.byNumber.get(trA.currents.find((n) => n > heldA.n)!)!;
  const recoveryMs = (trA.currentAt.get(recoveredA.n) ?? 0) - backAt;
  t.equal(recoveredA.mode & 2, 0, `the epoch after the outage (${recoveredA.n}) is a QKD epoch (mode ${recoveredA.mode})`);
  t.equal(recoveredA.keyIds.length, 1, 'it carries one key_ID');
  t.notOk(keyIds.includes(recoveredA.keyIds[0]), 'a fresh key_ID');
  t.comment(`outage -> hard limit ${Math.round((hlA.t as number) - outageAt)} ms; keys back -> new epoch ${Math.round(recoveryMs)} ms`);
  // Recovery is not held back by the exhaustion backoff (up to 30 s): the next status check
  // (500 ms) reopens the enc_keys gate (kme_exhaustion_cleared). What remains: a call already
  // waiting at the gate sleeps out its wait (at most the 8 s getKey deadline - 1 s), or a
  // suppressed attempt retries after retry_backoff_max (1 s). Hence < 10 s.
  t.ok(recoveryMs < 10_000, `keys back -> QKD epoch in ${Math.round(recoveryMs)} ms (< 10 s)`);
  const cleared = linesOf(lab.logA, 'kme_exhaustion_cleared', markA);
  t.ok(cleared.length >= 1, 'gw-a logged kme_exhaustion_cleared once a status check showed keys');
  const recovered = linesOf(lab.logA, 'kme_recovered', markA).find((l) => l.op === 'enc_keys');
  t.comment(`keys back -> kme_exhaustion_cleared ${Math.round((cleared[0]?.t as number) - backAt)} ms -> first good enc_keys (kme_recovered) ${Math.round((recovered?.t as number) - backAt)} ms`);

  // The flow resumes under the new epoch and finishes intact.
  const resumeFrom = stream.received();
  await until(() => stream.received() > resumeFrom && !stream.blocked(), 15_000, 'the flow to resume');
  const r = await stream.finish();
  t.ok(r.intact, `every byte came back intact after the hold (${r.sent} bytes each way, ${r.stalls} writer stall(s), end: ${r.how})`);
  t.equal(r.how, 'eof', 'a clean end, no reset');

  // ---- no degraded epoch ever, nothing aborted
  for (const [name, tr, rt] of [['gw-a', trA, lab.rtA()], ['gw-b', trB, lab.rtB()]] as const) {
    t.same(tr.all.filter((e) => (e.mode & 2) !== 0).map((e) => e.n), [], `${name}: no degraded epoch was ever held`);
    t.equal(eventCount(rt, 'qkd_degraded'), 0, `${name}: no qkd_degraded`);
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
    t.equal(rt.stats.authFailures, 0, `${name}: no authentication failure`);
  }
  t.notOk(linesOf(lab.logA, 'epoch_switch').some((l) => l.degraded === true) || linesOf(lab.logB, 'epoch_switch').some((l) => l.degraded === true), 'no epoch_switch with degraded: true');
  t.same(linesOf(lab.logA, 'carrier_reset').concat(linesOf(lab.logB, 'carrier_reset')), [], 'no carrier_reset logged (the hold never expired)');
  t.comment(`total ${Math.round(performance.now() - started)} ms`);
});
