// BC-26 (etsi014-C29, C30): gw-a's KME answers every request with 503 for ~10 s while a
// flow runs and the rekey interval is 1 s. KME calls must not multiply: enc_keys requests
// stay bounded by the backoff, each failed call is ONE `kme_call_failed` line with a
// running count (not one per retry or per record), the responder never starts attempts of
// its own, the epoch in use carries the flow until its hard limit, and when the KME
// recovers exactly one new epoch follows promptly (then the normal interval).
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, eventCount, kmeSection, linesOf, requestTimeline, requestsAt, sampler, stampLines, startEchoStream, totalRequests } from './helpers.js';

const REKEY_MS = 1_000;
const HARD_LIMIT_MS = 5_000;
const OUTAGE_MS = 10_000;
const BACKOFF_MAX_MS = 2_000;
/** KeySource default minimum spacing of KME calls for a peer after a transient failure (key-source.ts). */
const MIN_SPACING_MS = 500;

t.test('BC-26 KME 503 for 10 s with 1 s rekeys: bounded enc_keys, one log line per failed call, hold at the hard limit, one prompt epoch on recovery', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: `${REKEY_MS}ms`,
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: `${HARD_LIMIT_MS}ms`,
    grace: '2s',
    policy: { retry_backoff_min: '200ms', retry_backoff_max: `${BACKOFF_MAX_MS}ms`, hold: '40s', carrier_hold: '40s' },
    editA: kmeSection({ statusInterval: '1s' }),
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  const trB = new EpochTracker(lab.rtB());
  t.teardown(() => (trA.stop(), trB.stop()));
  const stream = await startEchoStream(lab.servicePort);
  const targetBytes = sampler(() => lab.targets[0]?.bytes ?? 0);
  t.teardown(() => targetBytes.stop());
  const sw0 = linesOf(lab.logA, 'epoch_switch').length;
  await until(() => linesOf(lab.logA, 'epoch_switch').length >= sw0 + 2 && stream.received() > 0, 10_000, 'two rekeys with the flow running');

  // ---- the outage
  const enc0 = requestsAt(lab.sim, 'KME_A', 'enc_keys');
  const markA = lab.logA.lines.length;
  const markB = lab.logB.lines.length;
  const encB0 = totalRequests(lab.sim, 'KME_B', 'enc_keys');
  lab.sim.control.setFaults({ kme: 'KME_A', status503: 'always' });
  const outageAt = performance.now();
  const timeline = requestTimeline(lab.sim, 'KME_A', 'enc_keys');
  t.teardown(() => timeline.stop());
  await until(() => linesOf(lab.logA, 'kme_call_failed', markA).length > 0, 10_000, 'the first failed KME call');
  const bytesAtFirstFailure = lab.targets[0].bytes;
  await until(
    () => performance.now() - outageAt >= OUTAGE_MS && eventCount(lab.rtA(), 'epoch_hard_limit') > 0 && eventCount(lab.rtB(), 'epoch_hard_limit') > 0,
    OUTAGE_MS + 15_000,
    `${OUTAGE_MS} ms of outage and the hard limit on both sides`,
  );
  const held = lab.rtA().session.slots.current!;
  const heldB = lab.rtB().session.slots.current!;
  const bytesAtHold = lab.targets[0].bytes;
  lab.sim.control.setFaults({ kme: 'KME_A', status503: 0 });
  const backAt = performance.now();
  const outageMs = backAt - outageAt;
  const outageTimes = timeline.times.filter((x) => x >= outageAt && x <= backAt);
  const enc503 = (requestsAt(lab.sim, 'KME_A', 'enc_keys')['503'] ?? 0) - (enc0['503'] ?? 0);

  // ---- bounded KME calls (BC-26: "no two calls within the minimum spacing")
  // Every enc_keys for the peer is spaced >= MIN_SPACING_MS from the one before: retries
  // inside a call back off >= 500 ms (floor = min spacing), a new call waits at the
  // KeySource's spacing gate, and the key pool keeps at most one enc_keys in flight. So
  // over the outage W: requests <= floor(W / 500 ms) + 1 (21 for 10 s), against one per
  // rekey trigger per record or per 1 s rekey tick without backoff.
  const bound = Math.floor(outageMs / MIN_SPACING_MS) + 1;
  t.ok(enc503 > 0, `${enc503} enc_keys got a 503 during ${Math.round(outageMs)} ms`);
  t.ok(enc503 <= bound, `enc_keys requests bounded by the spacing: ${enc503} <= ${bound}`);
  const gaps = outageTimes.slice(1).map((x, i) => x - outageTimes[i]);
  const minGap = gaps.length ? Math.min(...gaps) : Infinity;
  t.ok(minGap >= MIN_SPACING_MS - 50, `no two enc_keys closer than the minimum spacing (smallest gap ${Math.round(minGap)} ms, sampled every 5 ms)`);
  t.equal(totalRequests(lab.sim, 'KME_B', 'enc_keys') - encB0, 0, 'gw-b never called enc_keys: it does not start attempts of its own');
  t.equal(eventCount(lab.rtB(), 'handshake_failed'), 0, 'gw-b saw no failed handshake (nothing reached it)');

  // ---- one log line per failed call, with a running count
  const failedCalls = linesOf(lab.logA, 'kme_call_failed', markA, (l) => l.op === 'enc_keys' && (l.t as number) <= backAt);
  t.ok(failedCalls.length > 0 && failedCalls.length < enc503, `${failedCalls.length} kme_call_failed lines for ${enc503} failed requests: one per call, not per retry`);
  t.same(
    failedCalls.map((l) => l.consecutiveFailures),
    failedCalls.map((_l, i) => i + 1),
    'consecutiveFailures counts 1, 2, 3, ... (a running count)',
  );
  t.ok(failedCalls.every((l) => l.code === 'QKDGW_E_KMS_UNAVAILABLE' && l.kind === 'transient'), 'each as a transient KMS_UNAVAILABLE');
  const statusFailed = linesOf(lab.logA, 'kme_status_failed', markA, (l) => (l.t as number) <= backAt);
  t.same(statusFailed.map((l) => l.consecutiveFailures), statusFailed.map((_l, i) => i + 1), `status checks: ${statusFailed.length} kme_status_failed lines, one per check, running count`);
  t.ok(statusFailed.length <= Math.ceil(outageMs / 1_000) + 1, 'status checks kept their 1 s interval');

  // ---- the epoch in use carried the flow until its hard limit, then the pair held
  t.ok(bytesAtHold > bytesAtFirstFailure, `the flow kept going after the first failure (${bytesAtFirstFailure} -> ${bytesAtHold} bytes at the target)`);
  const hl = linesOf(lab.logA, 'epoch_hard_limit', markA)[0];
  t.equal(hl.epoch, held.n, `epoch_hard_limit names the epoch in use (${held.n})`);
  const lastSecond = targetBytes.at(hl.t as number) - targetBytes.at((hl.t as number) - 1_000);
  t.ok(lastSecond > 0, `it carried the flow up to its hard limit (${lastSecond} bytes reached the target in the second before it)`);
  t.equal(held.n, heldB.n, `both sides held epoch ${held.n}`);
  t.equal(lab.rtA().sendEpoch(), null, 'gw-a: nothing to seal under (hold)');
  t.notOk(stream.ended(), 'the client flow was not reset');

  // ---- recovery: one new epoch, promptly; then the normal interval
  await until(() => trA.currents.some((n) => n > held.n) && trB.currents.some((n) => n > held.n), 15_000, 'a new epoch after the KME recovered');
  const e1 = trA.byNumber.get(trA.currents.find((n) => n > held.n)!)!;
  const e1At = trA.currentAt.get(e1.n)!;
  t.ok(e1At - backAt < BACKOFF_MAX_MS + 3_000, `new epoch ${e1.n} ${Math.round(e1At - backAt)} ms after recovery (< retry_backoff_max + 3 s)`);
  await until(() => trA.currents.some((n) => n > e1.n), REKEY_MS + 10_000, 'the rekey after it');
  const e2 = trA.currents.find((n) => n > e1.n)!;
  const e2At = trA.currentAt.get(e2)!;
  t.ok(e2At - e1At >= REKEY_MS - 50, `exactly one epoch right after recovery: the next came ${Math.round(e2At - e1At)} ms later, on the ${REKEY_MS} ms interval`);
  const afterBack = linesOf(lab.logA, 'kme_recovered', markA);
  t.equal(afterBack.filter((l) => l.op === 'enc_keys').length, 1, 'one kme_recovered line for enc_keys');
  t.equal(afterBack.find((l) => l.op === 'enc_keys')?.failedCalls, linesOf(lab.logA, 'kme_call_failed', markA, (l) => l.op === 'enc_keys').length, 'naming the length of the failure streak');

  // Every 503 is accounted for: in a failed call's attempts, or in the retries of the
  // call that succeeded once the KME was back.
  const okCalls = lab.logA.lines.slice(markA).filter((l) => l.component === 'keysource' && l.op === 'enc_keys' && Array.isArray(l.keyIds) && typeof l.attempts === 'number');
  const allFailed = linesOf(lab.logA, 'kme_call_failed', markA, (l) => l.op === 'enc_keys');
  const attempts503 = allFailed.reduce((n, l) => n + (l.attempts as number), 0) + okCalls.reduce((n, l) => n + (l.attempts as number) - 1, 0);
  const total503 = (requestsAt(lab.sim, 'KME_A', 'enc_keys')['503'] ?? 0) - (enc0['503'] ?? 0);
  t.equal(attempts503, total503, `the log accounts for every 503 (${total503} requests, ${allFailed.length} failed-call lines)`);

  const r = await stream.finish();
  t.ok(r.intact, `the flow came back intact (${r.sent} bytes each way, end: ${r.how})`);
  for (const [name, rt] of [['gw-a', lab.rtA()], ['gw-b', lab.rtB()]] as const) {
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
    t.equal(rt.stats.authFailures, 0, `${name}: no authentication failure`);
  }
  t.comment(`outage ${Math.round(outageMs)} ms: ${enc503} enc_keys 503s, ${failedCalls.length} failed calls, ${eventCount(lab.rtA(), 'handshake_failed')} failed handshakes, ${linesOf(lab.logB, 'rekey_request_sent', markB).length} REKEY_REQUESTs from gw-b`);
});
