// Breaker finding: during a KME outage past the hard limit the pair has no epoch, so neither
// side can send even a KEEPALIVE; an idle flow must then wait for the hold (protocol.md s4),
// not die of the carrier's dead_after. Real gateways, real simulator, real time.
import t from 'tap';
import { connect } from 'node:net';
import { startLab, until } from '../../helpers/lab.js';
import { kmeSection, linesOf } from './helpers.js';

t.test('an idle flow outlives dead_after while the pair holds for keys, and carries data again after', async (t) => {
  const lab = await startLab(t, {
    rekeyAfterTime: '1s',
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '4s',
    grace: '2s',
    policy: { keepalive: '500ms', dead_after: '2s', hold: '60s', carrier_hold: '60s', retry_backoff_min: '200ms', retry_backoff_max: '1s' },
    editA: kmeSection({ statusInterval: '500ms' }),
  });
  await lab.ready();
  const c = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  let echo = '';
  let ended: string | null = null;
  c.on('data', (d: Buffer) => (echo += d.toString()));
  c.on('error', (e: NodeJS.ErrnoException) => (ended = e.code ?? 'error'));
  c.on('close', () => (ended ??= 'closed'));
  c.write('before;');
  await until(() => echo === 'before;', 10_000, 'first echo');

  lab.sim.control.setLink({ paused: true });
  lab.sim.control.drain();
  const mark = lab.logA.lines.length;
  await until(() => lab.rtA().sendEpoch() === null && lab.rtB().sendEpoch() === null, 20_000, 'both sides on hold (hard limit passed)');
  // 8 status checks 500 ms apart: 4 s on hold, twice dead_after.
  const checks0 = linesOf(lab.logA, 'kme_status_checked', mark).length + linesOf(lab.logA, 'kme_status_failed', mark).length;
  await until(() => linesOf(lab.logA, 'kme_status_checked', mark).length + linesOf(lab.logA, 'kme_status_failed', mark).length >= checks0 + 8, 20_000, '4 s of hold');
  t.equal(ended, null, 'the idle flow is still open after twice dead_after on hold');
  t.notOk(lab.logB.lines.some((l) => l.event === 'carrier_reset' && /liveness/.test(String(l.reason))), 'no carrier died of liveness on gw-b');

  lab.sim.control.setLink({ paused: false });
  lab.sim.control.addKeys(20);
  await until(() => lab.rtA().sendEpoch() !== null && lab.rtB().sendEpoch() !== null, 30_000, 'an epoch again');
  c.write('after;');
  await until(() => echo === 'before;after;', 15_000, 'echo on the same flow after the outage');
  t.equal(ended, null, 'the same flow carried data again');
  c.destroy();
});
