// The session state machine without sockets (protocol.md s2-s4).
import t from 'tap';
import { Pair } from '../../helpers/session-pair.js';
import { roleOf } from '../../../src/tunnel/core/session.js';

const flowsMatch = (p: Pair) => {
  const a = p.A.s.slots.current!;
  const b = p.B.s.slots.current!;
  return a.n === b.n && a.flowSend.expose().equals(b.flowRecv.expose()) && a.flowRecv.expose().equals(b.flowSend.expose());
};

t.test('roles: the byte-wise smaller identity initiates; a proper prefix is smaller', async (t) => {
  t.equal(roleOf('gw-a', 'gw-b'), 'initiator');
  t.equal(roleOf('gw-b', 'gw-a'), 'responder');
  t.equal(roleOf('SAE', 'SAE_A'), 'initiator');
  t.equal(roleOf('Z', 'a'), 'initiator', 'byte order, not locale order');
});

t.test('first epoch at start: HELLO, INIT, RESP, CONFIRM', async (t) => {
  const p = new Pair();
  p.connect();
  t.equal(p.encCalls, 1, 'one enc_keys');
  t.equal(p.decCalls, 1, 'one dec_keys');
  t.equal(p.A.s.slots.current?.n, 1);
  t.equal(p.B.s.slots.current?.n, 1, 'responder promoted on CONFIRM');
  t.ok(flowsMatch(p), 'flow secrets cross-match');
  t.equal(p.A.s.slots.current!.mode & 1, 0, 'first epoch unchained');
  t.same(p.wire.map((w) => `${w.from}:${w.msg.type}`), ['A:HELLO', 'B:HELLO', 'A:INIT', 'B:RESP', 'A:CONFIRM']);
  t.equal(p.A.s.peerReceiverIndex, 0x0b0b0b0b);
  t.equal(p.B.s.peerReceiverIndex, 0x0a0a0a0a);
  const sw = p.events(p.A, 'epoch_switch')[0];
  t.equal(sw.epoch, 1);
  t.equal((sw.key_IDs as string[]).length, 1, 'epoch switch logs its key_ID');
  t.equal(sw.suite, 1);
});

t.test('rekey on the timer: chained, make-before-break slots', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000 }, { rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000 });
  p.connect();
  const e1 = p.A.s.slots.current!;
  p.advance(2_100);
  t.equal(p.A.s.slots.current?.n, 2);
  t.equal(p.B.s.slots.current?.n, 2);
  t.equal(p.A.s.slots.previous, e1, 'old current kept as previous');
  t.equal(p.A.s.slots.current!.mode & 1, 1, 'chained');
  t.ok(flowsMatch(p));
  p.advance(2_000 * 3 + 100);
  t.equal(p.A.s.slots.current?.n, 5, 'three more rekeys');
  t.ok(e1.wiped, 'evicted epoch zeroized');
  t.equal(p.encCalls, 5);
});

t.test('lost CONFIRM: the first authenticated record promotes next', async (t) => {
  const p = new Pair();
  p.drop = (from, m) => m.type === 'CONFIRM';
  p.connect();
  t.equal(p.A.s.slots.current?.n, 1);
  t.equal(p.B.s.slots.current, null);
  const next = p.B.s.slots.next!;
  t.equal(next.n, 1);
  t.equal(p.B.s.sendEpoch(p.clock.now()), null, 'responder does not seal under next');
  t.equal(p.B.s.newCarrierEpoch(1, p.clock.now()), next, 'next is receive-capable');
  p.B.s.onAuthenticatedRecord(next, p.clock.now());
  t.equal(p.B.s.slots.current, next, 'promoted by record');
  t.ok(flowsMatch(p));
});

t.test('lost CONFIRM: the reconnect HELLO promotes next', async (t) => {
  const p = new Pair();
  p.drop = (from, m) => m.type === 'CONFIRM';
  p.connect();
  p.drop = () => false;
  p.disconnect();
  p.connect();
  t.equal(p.B.s.slots.current?.n, 1, 'promoted by the initiator HELLO naming it');
  t.equal(p.encCalls, 1, 'no new handshake: the chain is shared');
});

t.test('reconnect mid-handshake: the in-flight handshake fails, epochs stay, next INIT is chained', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  p.drop = (from, m) => m.type === 'RESP';
  p.advance(2_100);
  t.ok(p.A.s.handshakeInFlight, 'handshake 2 waits for RESP');
  p.drop = () => false;
  p.disconnect();
  t.notOk(p.A.s.handshakeInFlight, 'failed at once on conn loss');
  t.equal(p.A.s.slots.current?.n, 1);
  t.equal(p.B.s.slots.current?.n, 1);
  p.connect();
  p.advance(1_000);
  t.equal(p.A.s.slots.current?.n, 3, 'number 2 burned, epoch 3 installed');
  t.equal(p.A.s.slots.current!.mode & 1, 1, 'chained on the kept salt');
  t.ok(flowsMatch(p));
});

t.test('failed tag_R (KME handed different bytes), then retry on the kept salt', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  p.tamperSlaveKey = true;
  p.advance(2_100);
  t.equal(p.A.s.slots.current?.n, 1, 'no switch on a failed confirmation');
  t.equal(p.B.s.slots.next, null, 'responder discarded its next on ALERT bad_tag');
  t.ok(p.wire.some((w) => w.from === 'A' && w.msg.type === 'ALERT' && w.msg.code === 'bad_tag'));
  t.ok(p.events(p.A, 'handshake_failed').some((f) => String(f.reason).includes('bad_tag')));
  p.tamperSlaveKey = false;
  p.advance(1_000);
  t.equal(p.A.s.slots.current?.n, 3, 'retry succeeded');
  t.equal(p.A.s.slots.current!.mode & 1, 1, 'still chained to epoch 1');
  t.ok(flowsMatch(p));
});

t.test('peer lost its state: HELLO epoch 0 wipes the pair, numbers are never reused', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  p.advance(2_100);
  t.equal(p.B.s.slots.current?.n, 2);
  p.disconnect();
  p.restart('A');
  p.connect();
  t.ok(p.B.actions.some((a) => a.type === 'peer-reset'), 'responder closed the pair carriers');
  t.equal(p.A.s.slots.current?.n, 3, 'fresh initiator numbers past what the responder reported');
  t.equal(p.A.s.slots.current!.mode & 1, 0, 'unchained');
  t.ok(flowsMatch(p));
});

t.test('responder restart: initiator sees epoch 0 and wipes, then rekeys', async (t) => {
  const p = new Pair();
  p.connect();
  p.disconnect();
  p.restart('B');
  p.connect();
  t.ok(p.A.actions.some((a) => a.type === 'peer-reset'));
  t.equal(p.A.s.slots.current?.n, 2);
  t.ok(flowsMatch(p));
});

t.test('HELLO with the wrong identity: ALERT bad_identity and close', async (t) => {
  const p = new Pair({}, { selfId: 'gw-x' });
  p.connect();
  t.ok(p.wire.some((w) => w.from === 'A' && w.msg.type === 'ALERT' && w.msg.code === 'bad_identity'));
  t.equal(p.link, null, 'closed');
  t.equal(p.A.s.slots.current, null);
});

t.test('second HELLO: unexpected_message', async (t) => {
  const p = new Pair();
  p.connect();
  p.feed(p.B, { type: 'message', conn: p.link!.b, msg: { type: 'HELLO', version: 1, identity: 'gw-a', suites: [1], receiver_index: 5, epoch: 1 } });
  t.ok(p.B.actions.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'unexpected_message'));
});

t.test('HELLO next presence by role, version', async (t) => {
  const p = new Pair();
  const exporter = Buffer.alloc(32, 1);
  p.B.s.handle({ type: 'conn-up', conn: 9, exporter }, 0);
  const acts = p.B.s.handle({ type: 'message', conn: 9, msg: { type: 'HELLO', version: 1, identity: 'gw-a', suites: [1], receiver_index: 5, epoch: 0, next: 0 } }, 0);
  t.ok(acts.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'bad_message'), 'initiator HELLO with next');
  p.B.s.handle({ type: 'conn-up', conn: 10, exporter }, 0);
  const v = p.B.s.handle({ type: 'message', conn: 10, msg: { type: 'HELLO', version: 2, identity: 'gw-a', suites: [1], receiver_index: 5, epoch: 0 } }, 0);
  t.ok(v.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'bad_version'));
  p.A.s.handle({ type: 'conn-up', conn: 11, exporter }, 0);
  const r = p.A.s.handle({ type: 'message', conn: 11, msg: { type: 'HELLO', version: 1, identity: 'gw-b', suites: [1], receiver_index: 5, epoch: 0 } }, 0);
  t.ok(r.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'bad_message'), 'responder HELLO without next');
  p.A.s.handle({ type: 'conn-up', conn: 12, exporter }, 0);
  const early = p.A.s.handle({ type: 'message', conn: 12, msg: { type: 'PING', id: 1 } }, 0);
  t.ok(early.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'unexpected_message'), 'nothing before HELLO');
});

t.test('no common suite', async (t) => {
  const p = new Pair({ suites: [2] }, { suites: [1] });
  p.connect();
  t.ok(p.wire.some((w) => w.msg.type === 'ALERT' && w.msg.code === 'no_common_suite'));
  t.equal(p.A.s.slots.current, null);
  t.equal(p.encCalls, 0, 'no QKD key consumed for a handshake that cannot agree on a suite');
});

t.test('suite preference: the initiator picks the first of its own that the responder offers', async (t) => {
  const p = new Pair({ suites: [2, 1] }, { suites: [1, 2] });
  p.connect();
  t.equal(p.A.s.slots.current?.suite, 2);
  t.ok(flowsMatch(p));
});

t.test('BC-08: an INIT epoch not above L is refused with bad_epoch; a reused key_ID with key_reused', async (t) => {
  const p = new Pair();
  p.connect();
  const init = p.wire.find((w) => w.msg.type === 'INIT')!.msg;
  // Replay the first INIT byte for byte on the same session.
  p.feed(p.B, { type: 'message', conn: p.link!.b, msg: init });
  const alerts = p.B.actions.filter((a) => a.type === 'send' && a.msg.type === 'ALERT').map((a) => (a as { msg: { code: string; epoch?: number } }).msg);
  t.equal(alerts.at(-1)?.code, 'bad_epoch');
  t.equal(alerts.at(-1)?.epoch, 1, 'reports L');
  t.equal(p.B.s.slots.current?.n, 1, 'active epoch untouched');
  p.pump();
  // Same key_ID in a fresh, otherwise valid INIT.
  p.connect();
  const again = { ...(init as object), epoch: 5, mode: 1 } as typeof init;
  p.feed(p.B, { type: 'message', conn: p.link!.b, msg: again });
  t.ok(p.B.actions.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'key_reused'));
  t.equal(p.B.s.slots.current?.n, 1);
});

t.test('dec_keys fails: ALERT key_unavailable, the initiator discards the key and retries', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  const realGet = p.kme.get.bind(p.kme);
  let failOnce = true;
  p.kme.get = (k: string) => (failOnce ? ((failOnce = false), undefined) : realGet(k));
  p.advance(2_100);
  t.ok(p.wire.some((w) => w.from === 'B' && w.msg.type === 'ALERT' && w.msg.code === 'key_unavailable'));
  p.advance(1_000);
  t.equal(p.A.s.slots.current?.n, 3);
  const ids = p.A.s.slots.current!.keyIds;
  t.equal(ids.length, 1);
  t.not(ids[0], p.A.s.slots.previous!.keyIds[0], 'a new key_ID');
});

t.test('simultaneous triggers produce one handshake (one enc_keys)', async (t) => {
  const p = new Pair();
  p.connect();
  p.holdKeys = true;
  const before = p.encCalls;
  p.feed(p.A, { type: 'trigger', reason: 'records' });
  p.feed(p.A, { type: 'trigger', reason: 'bytes' });
  p.feed(p.B, { type: 'trigger', reason: 'records' });
  p.pump();
  p.feed(p.A, { type: 'tick' });
  p.pump();
  t.equal(p.encCalls - before, 1);
  t.notOk(p.wire.some((w) => w.from === 'B' && w.msg.type === 'INIT'), 'responder never starts one');
});

t.test('responder REKEY_REQUEST: at most one per epoch, the initiator honours it', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 60_000 }, { rekeyAfterTimeMs: 60_000 });
  p.connect();
  p.feed(p.B, { type: 'trigger', reason: 'records' });
  p.feed(p.B, { type: 'trigger', reason: 'bytes' });
  p.pump();
  const reqs = p.wire.filter((w) => w.msg.type === 'REKEY_REQUEST');
  t.equal(reqs.length, 1, 'one per epoch');
  p.advance(1_000);
  t.equal(p.A.s.slots.current?.n, 2, 'initiator rekeyed');
});

t.test('handshake timeout: ALERT handshake_timeout, backoff, then success', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  p.drop = (from, m) => m.type === 'RESP';
  p.advance(2_000 + 5_100);
  t.ok(p.wire.some((w) => w.from === 'A' && w.msg.type === 'ALERT' && w.msg.code === 'handshake_timeout'));
  t.equal(p.B.s.slots.next, null, 'responder discarded next on the handshake-only ALERT');
  p.drop = () => false;
  p.advance(2_000);
  t.equal(p.A.s.slots.current?.n, 3);
  t.ok(flowsMatch(p));
});

t.test('degraded INIT refused by a required responder, logged on both sides', async (t) => {
  const p = new Pair({ qkd: 'off' }, { qkd: 'required' });
  p.connect();
  t.ok(p.wire.some((w) => w.from === 'B' && w.msg.type === 'ALERT' && w.msg.code === 'policy_refused'));
  t.ok(p.events(p.B, 'degraded_refused').length >= 1);
  t.ok(p.events(p.A, 'alert_received').some((f) => f.code === 'policy_refused'));
  t.equal(p.A.s.slots.current, null);
});

t.test('qkd off on both: degraded unchained first epoch (lab only)', async (t) => {
  const p = new Pair({ qkd: 'off' }, { qkd: 'off' });
  p.connect();
  t.equal(p.A.s.slots.current?.mode, 2);
  t.equal(p.encCalls, 0);
  t.ok(flowsMatch(p));
});

t.test('hard limit: the epoch stops sealing; the hold begins', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000 }, { rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000 });
  p.connect();
  p.holdKeys = true;
  p.advance(19_000);
  t.ok(p.A.s.sendEpoch(p.clock.now()), 'still sealing before the hard limit');
  p.advance(1_100);
  t.equal(p.A.s.sendEpoch(p.clock.now()), null, 'never seals past it');
  t.equal(p.A.s.slots.current?.n, 1, 'stays current for numbering and chaining');
});

t.test('grace of previous: new carriers accepted under it for grace only', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000, graceMs: 1_000 }, { rekeyAfterTimeMs: 2_000, graceMs: 1_000 });
  p.connect();
  p.advance(2_100);
  const prevB = p.B.s.slots.previous!;
  t.equal(p.B.s.newCarrierEpoch(prevB.low32, p.clock.now()), prevB, 'within grace');
  p.advance(1_001);
  t.equal(p.B.s.newCarrierEpoch(prevB.low32, p.clock.now()), null, 'after grace');
});

t.test('carrier pins keep a retired epoch for receiving', async (t) => {
  const p = new Pair({ rekeyAfterTimeMs: 2_000 }, { rekeyAfterTimeMs: 2_000 });
  p.connect();
  const e1 = p.B.s.slots.current!;
  p.B.s.slots.pin(e1);
  p.advance(2_000 * 2 + 200);
  t.equal(p.B.s.slots.current?.n, 3);
  t.notOk(e1.wiped, 'evicted but pinned');
  t.equal(p.B.s.carrierEpoch(e1.low32, e1, p.clock.now()), e1);
  p.B.s.slots.unpin(e1);
  t.ok(e1.wiped, 'wiped once the last pin is released');
});

t.test('BC-10: an INIT with a bad ek_M gets ALERT bad_message; a flipped ct_M bit fails at key confirmation', async (t) => {
  const p = new Pair();
  p.drop = (from, m) => m.type === 'INIT';
  p.connect();
  const init = p.wire.find((w) => w.msg.type === 'INIT')!.msg as import('../../../src/tunnel/core/wire/control.js').Init;
  p.drop = () => false;
  const ek = Buffer.from(init.ek_M);
  ek[0] = 0xff;
  ek[1] |= 0x0f;
  p.feed(p.B, { type: 'message', conn: p.link!.b, msg: { ...init, ek_M: ek } });
  t.ok(p.B.actions.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'bad_message'), 'modulus failure answered with bad_message');
  t.equal(p.decCalls, 0, 'no dec_keys for an invalid INIT (no QKD key consumed)');

  const q = new Pair();
  q.drop = (from, m) => m.type === 'RESP';
  q.connect();
  const resp = q.wire.find((w) => w.msg.type === 'RESP')!.msg as import('../../../src/tunnel/core/wire/control.js').Resp;
  const ct = Buffer.from(resp.ct_M);
  ct[10] ^= 0x01;
  q.drop = () => false;
  q.feed(q.A, { type: 'message', conn: q.link!.a, msg: { ...resp, ct_M: ct } });
  q.pump();
  t.ok(q.wire.some((w) => w.from === 'A' && w.msg.type === 'ALERT' && w.msg.code === 'bad_tag'), 'initiator: tag_R fails');
  t.equal(q.A.s.slots.current?.n ?? null, null, 'no epoch installed from the tampered RESP');
});

t.test('epoch numbers near the safe-integer limit: a malformed INIT moves nothing; the initiator never throws', async (t) => {
  const p = new Pair();
  p.drop = (from, m) => m.type === 'INIT';
  p.connect();
  const init = p.wire.find((w) => w.msg.type === 'INIT')!.msg as import('../../../src/tunnel/core/wire/control.js').Init;
  p.drop = () => false;
  p.feed(p.B, { type: 'message', conn: p.link!.b, msg: { ...init, epoch: Number.MAX_SAFE_INTEGER - 2, ek_M: Buffer.alloc(1184, 0xff) } });
  t.equal(p.B.s.maxEpoch, 0, 'a malformed INIT does not raise L');

  // An initiator told (by a bad_epoch ALERT) that L is the largest safe integer.
  const q = new Pair();
  q.connect();
  t.equal(q.A.s.slots.current?.n, 1);
  q.feed(q.A, { type: 'message', conn: q.link!.a, msg: { type: 'ALERT', code: 'bad_epoch', message: 'x', epoch: Number.MAX_SAFE_INTEGER } });
  q.pump();
  t.doesNotThrow(() => {
    q.connect();
    q.feed(q.A, { type: 'trigger', reason: 'records' });
    q.advance(60_000);
  }, 'no exception escapes the state machine');
  t.ok(q.A.log.some((l) => l.event === 'epoch_space_exhausted'), 'the condition is logged');
  t.equal(q.A.s.slots.current?.n, 1, 'the current epoch stays in use');
});

t.test('a low-order X25519 share is refused with bad_message before dec_keys (no QKD key consumed)', async (t) => {
  const p = new Pair();
  p.drop = (from, m) => m.type === 'INIT';
  p.connect();
  const init = p.wire.find((w) => w.msg.type === 'INIT')!.msg as import('../../../src/tunnel/core/wire/control.js').Init;
  p.drop = () => false;
  for (const pk of [Buffer.alloc(32), Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])]) {
    p.connect();
    const before = p.decCalls;
    p.feed(p.B, { type: 'message', conn: p.link!.b, msg: { ...init, epoch: 9, pkX_I: pk } });
    t.ok(p.B.actions.some((a) => a.type === 'send' && a.msg.type === 'ALERT' && a.msg.code === 'bad_message'), 'bad_message');
    t.equal(p.decCalls, before, 'no dec_keys');
    p.pump();
  }
});
