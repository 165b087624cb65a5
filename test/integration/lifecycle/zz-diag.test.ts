import t from 'tap';
import { startLab, until } from '../../helpers/lab.js';
import { EpochTracker, kmeSection, linesOf, requestTimeline, stampLines, startEchoStream } from './helpers.js';
t.test('diag', async (t) => {
  const lab = await startLab(t, { rekeyAfterTime: '1s', rekeyJitter: '0s', handshakeTimeout: '1s', hardLimitTime: '4s', grace: '2s',
    policy: { hold: '60s', carrier_hold: '60s', retry_backoff_min: '200ms', retry_backoff_max: '1s' }, editA: kmeSection({ statusInterval: '500ms' }) });
  stampLines(lab.logA);
  await lab.ready();
  const trA = new EpochTracker(lab.rtA());
  t.teardown(() => trA.stop());
  const stream = await startEchoStream(lab.servicePort);
  await until(() => stream.received() > 0);
  const tl = requestTimeline(lab.sim, 'KME_A', 'enc_keys');
  t.teardown(() => tl.stop());
  lab.sim.control.setLink({ paused: true }); lab.sim.control.drain();
  const t0 = performance.now(); const mark = lab.logA.lines.length;
  await until(() => (lab.rtA().events.get('epoch_hard_limit') ?? 0) > 0, 20000);
  const held = lab.rtA().session.slots.current!.n;
  await until(() => performance.now() - t0 > 9000, 20000);
  lab.sim.control.setLink({ paused: false }); lab.sim.control.addKeys(20);
  const back = performance.now() - t0;
  await until(() => trA.currents.some((n) => n > held), 40000);
  const rel = (x: number) => Math.round(x - t0);
  t.comment(`keys back at ${Math.round(back)}`);
  t.comment(`enc_keys requests at ${tl.times.map(rel).join(', ')}`);
  for (const l of lab.logA.lines.slice(mark)) {
    if (['kme_call_failed','handshake_started','handshake_failed','epoch_switch','epoch_hard_limit','kme_recovered','key_pool_refill_failed'].includes(String(l.event)) || (l.event === 'kme_status_checked'))
      t.comment(`${rel(l.t as number)} ${l.event} ${JSON.stringify({ epoch: l.epoch, code: l.code, retryInMs: l.retryInMs, consecutiveFailures: l.consecutiveFailures, stored: l.kmeStoredKeyCount, reason: typeof l.reason === 'string' ? l.reason.slice(0, 90) : undefined })}`);
  }
  await stream.finish();
});
