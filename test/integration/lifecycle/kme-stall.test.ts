// etsi014-C30: a hung KME cannot stall the data plane. gw-a's KME answers enc_keys with
// status 200, headers and a first piece of body, then nothing (stallMidBody). The rekey's
// enc_keys must fail within its deadline (kme.timeout per request, one re-send of a
// possibly-served request, inside the KeySource's total deadline) and be logged; the
// epoch in use keeps carrying a running flow; once the fault is cleared the next rekey
// succeeds. Real gateways, real simulator, real sockets, real time.
import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, kmeSection, linesOf, requestsAt, stampLines, startEchoStream } from './helpers.js';

const REKEY_MS = 2_000;
const KME_TIMEOUT_MS = 2_000;
/** KeySource default: total deadline of one getKey, all retries included (key-source.ts). */
const GET_KEY_DEADLINE_MS = 8_000;
const BACKOFF_MAX_MS = 1_000;

t.test('etsi014-C30 KME stalls mid-body: the rekey enc_keys fails within its deadline, the epoch in use carries the flow, the next rekey succeeds', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: `${REKEY_MS}ms`,
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '20s',
    grace: '2s',
    policy: { retry_backoff_min: '200ms', retry_backoff_max: `${BACKOFF_MAX_MS}ms` },
    // pool 0: the rekey itself calls enc_keys (no key held ahead hides the stall).
    editA: kmeSection({ pool: 0, timeout: `${KME_TIMEOUT_MS}ms` }),
  });
  stampLines(lab.logA);
  stampLines(lab.logB);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  t.teardown(() => trA.stop());
  const stream = await startEchoStream(lab.servicePort);

  // Start the stall right after a switch, so the next rekey is the first to meet it.
  const sw0 = linesOf(lab.logA, 'epoch_switch').length;
  await until(() => linesOf(lab.logA, 'epoch_switch').length > sw0 && stream.received() > 0, 10_000, 'an epoch switch with the flow running');
  lab.sim.control.setFaults({ kme: 'KME_A', stallMidBody: true });
  const stallAt = performance.now();
  const inUse = lab.rtA().session.slots.current!;
  const stalled0 = requestsAt(lab.sim, 'KME_A', 'enc_keys').stalled ?? 0;
  const markA = lab.logA.lines.length;
  const sealedAtStall = inUse.sealedRecords;
  const targetAtStall = lab.targets[0].bytes;

  await until(() => linesOf(lab.logA, 'handshake_failed', markA).length > 0, REKEY_MS + GET_KEY_DEADLINE_MS + 5_000, 'the rekey to fail');
  lab.sim.control.setFaults({ kme: 'KME_A', stallMidBody: false });
  const clearAt = performance.now();
  const failed = linesOf(lab.logA, 'handshake_failed', markA)[0];
  const started = linesOf(lab.logA, 'handshake_started', markA).find((l) => l.epoch === failed.epoch);
  const callFailed = linesOf(lab.logA, 'kme_call_failed', markA).filter((l) => l.op === 'enc_keys');
  t.equal(callFailed.length, 1, 'one kme_call_failed line for the failed enc_keys call');
  t.equal(callFailed[0]?.code, 'QKDGW_E_KMS_TIMEOUT', 'with the timeout code');
  t.match(String(failed.reason), /QKDGW_E_KMS_TIMEOUT/, `handshake_failed says why: ${String(failed.reason).slice(0, 140)}`);
  const took = (failed.t as number) - (started!.t as number);
  // One request times out after kme.timeout; a possibly-served enc_keys is re-sent at most
  // once (after a backoff of <= 625 ms): so between kme.timeout and 2 x kme.timeout + 625 ms,
  // and never past the KeySource's total deadline.
  t.ok(took >= KME_TIMEOUT_MS - 50, `the call waited for its per-request deadline (${Math.round(took)} ms >= kme.timeout ${KME_TIMEOUT_MS} ms)`);
  t.ok(took <= 2 * KME_TIMEOUT_MS + 625 + 500 && took <= GET_KEY_DEADLINE_MS, `and failed within its deadline (${Math.round(took)} ms <= 2 x ${KME_TIMEOUT_MS} + 625 ms + 500 ms slack)`);
  const stalled = (requestsAt(lab.sim, 'KME_A', 'enc_keys').stalled ?? 0) - stalled0;
  t.ok(stalled >= 1 && stalled <= 2, `the simulator left ${stalled} enc_keys hanging (the request and at most one re-send)`);
  t.equal(callFailed[0]?.attempts, stalled, 'the failed line counts those attempts');

  // The epoch in use carried the flow the whole time.
  t.equal(lab.rtA().session.slots.current, inUse, `epoch ${inUse.n} is still current`);
  t.ok(lab.rtA().sendEpoch() !== null, 'and still seals (no hold)');
  t.ok(inUse.sealedRecords > sealedAtStall, `it sealed ${inUse.sealedRecords - sealedAtStall} more records during the stall`);
  t.ok(lab.targets[0].bytes > targetAtStall, `the target got ${lab.targets[0].bytes - targetAtStall} more bytes during the stall`);

  // After the fault is cleared the next rekey succeeds.
  await until(() => trA.currents.some((n) => n > inUse.n) && lab.rtB().session.slots.current!.n > inUse.n, 15_000, 'the next epoch');
  const next = trA.byNumber.get(trA.currents.find((n) => n > inUse.n)!)!;
  const nextAt = trA.currentAt.get(next.n)!;
  t.equal(next.mode & 2, 0, `epoch ${next.n} is a QKD epoch`);
  t.ok(nextAt - clearAt < BACKOFF_MAX_MS + 3_000, `installed ${Math.round(nextAt - clearAt)} ms after the fault was cleared`);
  const total = nextAt - stallAt;
  t.ok(total < REKEY_MS + GET_KEY_DEADLINE_MS + BACKOFF_MAX_MS + 3_000, `stall -> new epoch in ${Math.round(total)} ms (bounded)`);

  const r = await stream.finish();
  t.ok(r.intact, `the flow came back intact (${r.sent} bytes each way, end: ${r.how})`);
  for (const [name, rt] of [['gw-a', lab.rtA()], ['gw-b', lab.rtB()]] as const) {
    t.equal(rt.events.get('epoch_hard_limit') ?? 0, 0, `${name}: never on hold`);
    t.equal(rt.stats.carrierAborts, 0, `${name}: no carrier aborted`);
    t.equal(rt.stats.authFailures, 0, `${name}: no authentication failure`);
  }
  t.equal(lab.rtB().events.get('handshake_failed') ?? 0, 0, 'gw-b saw no failed handshake (the failure never left gw-a)');
});
