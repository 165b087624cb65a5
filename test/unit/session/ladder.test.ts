// Issue 4: the degradation ladder of protocol.md s6 (`required | preferred | off`), driven
// through two PeerSessions back to back (no sockets, ManualClock).
import t from 'tap';
import { Pair, type Side } from '../../helpers/session-pair.js';

const modes = (p: Pair): unknown[] => p.events(p.A, 'handshake_started').map((f) => f.mode);
const current = (x: Side): { n: number; degraded: boolean } | null => {
  const c = x.s.slots.current;
  return c ? { n: c.n, degraded: (c.mode & 2) !== 0 } : null;
};
const status = (p: Pair, stored: number | null, times = 1): void => {
  for (let i = 0; i < times; i++) p.feed(p.A, { type: 'kme-status', storedKeyCount: stored });
};

t.test('preferred: enc_keys fails at first start -> a degraded INIT at once, alarm on both sides', async (t) => {
  const p = new Pair({ qkd: 'preferred' }, { qkd: 'preferred' });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.connect();
  t.same(modes(p), ['qkd', 'degraded'], 'one QKD attempt, then degraded with no backoff');
  t.equal(p.encCalls, 1, 'one enc_keys call');
  t.same(current(p.A), { n: 2, degraded: true }, 'initiator on degraded epoch 2 (1 was burned)');
  t.same(current(p.B), { n: 2, degraded: true }, 'responder on the same epoch');
  t.equal(p.events(p.A, 'qkd_step_down').length, 1, 'step down logged once');
  t.match(p.events(p.A, 'qkd_step_down')[0], { reason: /enc_keys failed/ });
  t.equal(p.events(p.A, 'qkd_degraded').length, 1, 'initiator alarm');
  t.equal(p.events(p.B, 'qkd_degraded').length, 1, 'responder alarm');
  t.equal(p.events(p.B, 'degraded_unchained').length, 1, 'unchained degraded first epoch is flagged (s3.3)');
  t.equal(p.A.s.ladder.mode, 'degraded');
});

t.test('preferred: a degraded epoch rekeys after degraded_lifetime and stays degraded without good checks', async (t) => {
  const p = new Pair({ qkd: 'preferred', degradedLifetimeMs: 60_000 }, { qkd: 'preferred' });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.connect();
  p.encFail = null; // keys are back, but nobody has checked yet
  p.advance(59_999);
  t.equal(current(p.A)?.n, 2, 'no rekey before 60 s');
  p.advance(1);
  t.same(current(p.A), { n: 3, degraded: true }, 'rekeyed at 60 s, still degraded: 0 good checks');
  t.equal(p.events(p.A, 'epoch_switch').at(-1)?.chained, true, 'the degraded successor is chained (s3.3)');
  t.equal(p.encCalls, 1, 'no QKD attempt while the checks are not good');
});

t.test('preferred: back to QKD only after N consecutive good status checks (hysteresis)', async (t) => {
  const p = new Pair({ qkd: 'preferred', recoveryChecks: 3 }, { qkd: 'preferred' });
  p.encFail = 'QKDGW_E_KMS_UNAVAILABLE';
  p.connect();
  p.encFail = null;
  status(p, 5, 2);
  status(p, 0); // one empty check resets the count
  status(p, 5, 2);
  t.equal(p.A.s.ladder.goodChecks, 2);
  t.equal(p.events(p.A, 'qkd_recovery_ready').length, 0, 'not ready after 2 good checks');
  p.advance(60_000);
  t.same(current(p.A), { n: 3, degraded: true }, 'still degraded at the next rekey');
  status(p, 7);
  t.equal(p.events(p.A, 'qkd_recovery_ready').length, 1, 'ready after the 3rd consecutive good check');
  p.advance(60_000);
  t.same(current(p.A), { n: 4, degraded: false }, 'QKD epoch at the next rekey');
  t.same(current(p.B), { n: 4, degraded: false });
  t.equal(p.events(p.A, 'qkd_restored').length, 1, 'restored logged (initiator)');
  t.equal(p.events(p.B, 'qkd_restored').length, 1, 'restored logged (responder)');
  t.equal(p.A.s.ladder.mode, 'qkd');
  // A QKD epoch rekeys on the normal timer again.
  p.advance(60_000);
  t.equal(current(p.A)?.n, 4, 'no rekey at 60 s under QKD');
  p.advance(60_000);
  t.equal(current(p.A)?.n, 5, 'rekey at rekey_after_time');
});

t.test('preferred: a failed QKD attempt after recovery steps down again, and needs fresh good checks', async (t) => {
  const p = new Pair({ qkd: 'preferred', recoveryChecks: 2 }, { qkd: 'preferred' });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.connect();
  status(p, 3, 2);
  p.advance(60_000); // QKD attempt fails (encFail still set) -> degraded again at once
  t.same(modes(p), ['qkd', 'degraded', 'qkd', 'degraded']);
  t.same(current(p.A), { n: 4, degraded: true });
  t.equal(p.A.s.ladder.goodChecks, 0, 'stepping down resets the good checks');
  t.equal(p.events(p.A, 'qkd_degraded').length, 1, 'the alarm is raised once while degraded, not per epoch');
});

t.test('preferred: key_unavailable on 3 consecutive QKD INITs -> degraded (C28, s6)', async (t) => {
  const p = new Pair({ qkd: 'preferred' }, { qkd: 'preferred' });
  p.decFail = true;
  p.connect();
  p.advance(60_000); // backoff between the failures
  t.same(modes(p).slice(0, 4), ['qkd', 'qkd', 'qkd', 'degraded'], 'three QKD INITs, then degraded');
  t.equal(p.encCalls, 3, 'each refused key is discarded and a new one fetched (never reused)');
  t.equal(p.events(p.B, 'handshake_failed').filter((f) => String(f.reason).startsWith('key_unavailable')).length, 3);
  t.same(current(p.A), { n: 4, degraded: true });
  t.match(p.events(p.A, 'qkd_step_down')[0], { reason: /3 QKD INITs in a row got key_unavailable/ });
});

t.test('required responder refuses a degraded INIT; both sides log it; no epoch', async (t) => {
  const p = new Pair({ qkd: 'preferred' }, { qkd: 'required' });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.connect();
  t.equal(current(p.A), null);
  t.equal(current(p.B), null);
  t.equal(p.events(p.B, 'degraded_refused').length, 1, 'responder logs the refusal');
  t.equal(p.events(p.A, 'degraded_refused_by_peer').length, 1, 'initiator logs the refusal');
  t.ok(p.wire.some((w) => w.from === 'B' && w.msg.type === 'ALERT' && w.msg.code === 'policy_refused'), 'ALERT policy_refused on the wire');
});

t.test('required: no degraded INIT ever; at the hard limit the pair holds, alarm; resumes when keys return', async (t) => {
  const p = new Pair({ qkd: 'required' }, { qkd: 'required' });
  p.connect();
  t.same(current(p.A), { n: 1, degraded: false });
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.advance(180_000);
  t.notOk(p.wire.some((w) => w.msg.type === 'INIT' && (w.msg.mode & 2) !== 0), 'no degraded INIT on the wire');
  t.ok(modes(p).every((m) => m === 'qkd'));
  t.equal(p.A.s.sendEpoch(p.clock.now()), null, 'initiator seals nothing past the hard limit');
  t.equal(p.B.s.sendEpoch(p.clock.now()), null, 'responder seals nothing past the hard limit');
  t.match(p.events(p.A, 'epoch_hard_limit'), [{ epoch: 1, limit: 'time', qkd: 'required' }]);
  const failures = p.events(p.A, 'handshake_failed').length;
  t.ok(failures >= 3 && failures <= 12, `bounded retries with backoff while the KME is empty (${failures} in 60 s)`);
  p.encFail = null;
  p.advance(31_000);
  t.same(current(p.A), { n: p.A.s.maxEpoch, degraded: false }, 'a QKD epoch once keys are back');
  t.not(p.A.s.sendEpoch(p.clock.now()), null, 'sealing resumes');
});

t.test('off: every epoch is degraded, with no enc_keys call', async (t) => {
  const p = new Pair({ qkd: 'off' }, { qkd: 'off' });
  p.connect();
  p.advance(120_000);
  t.ok(modes(p).length >= 2 && modes(p).every((m) => m === 'degraded'));
  t.equal(p.encCalls, 0);
  t.equal(current(p.A)?.degraded, true);
});

t.test('the ladder ignores KME status on the responder and under required', async (t) => {
  const p = new Pair({ qkd: 'required' }, { qkd: 'preferred' });
  p.connect();
  p.feed(p.B, { type: 'kme-status', storedKeyCount: 9 });
  status(p, 9, 5);
  t.equal(p.events(p.A, 'qkd_recovery_ready').length, 0);
  t.equal(p.events(p.B, 'qkd_recovery_ready').length, 0);
});
