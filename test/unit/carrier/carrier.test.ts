// Carrier record protocol core, protocol.md s5.1 (sequence, counters, epochs) and s4 (pins).
import t from 'tap';
import { CarrierAbort, CarrierSession, type CarrierEvent, type SendEpoch } from '../../../src/tunnel/core/carrier.js';
import { RECORD_HEADER_LEN, RecordType, RstReason, decodeRecordHeader, type CarrierRecordType } from '../../../src/tunnel/core/wire/record.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { SecretBytes } from '../../../src/util/secret.js';
import { caught, prng } from '../wire/helpers.js';
import { Bench, countingCrypto } from './helpers.js';

const deliver = (rec: Buffer, to: CarrierSession): CarrierEvent => to.openRecord(decodeRecordHeader(rec), rec.subarray(RECORD_HEADER_LEN));
const abortOf = (f: () => unknown) => {
  const e = caught(f);
  return e instanceof CarrierAbort ? e.reason : `not a CarrierAbort: ${String(e)}`;
};

t.test('honest pair: OPEN, DATA both ways, FIN both ways -> finished', async (t) => {
  const b = new Bench();
  b.add(1);
  const entry = b.session('entry');
  const exit = b.session('exit');
  t.same(deliver(entry.sealOpen('web', b.sendOf('entry', 1)), exit), { kind: 'open', epoch: 1, service: 'web' });
  t.equal(exit.service, 'web');
  t.notOk(exit.canSendData, 'exit seals nothing before admit()');
  exit.admit();
  t.ok(exit.canSendData);
  const ev = deliver(entry.sealData(Buffer.from('request'), b.sendOf('entry', 1)), exit);
  t.equal(ev.kind, 'data');
  t.equal((ev as { bytes: Buffer }).bytes.toString(), 'request');
  t.same(deliver(entry.sealFin(b.sendOf('entry', 1)), exit), { kind: 'fin', epoch: 1 });
  t.ok(entry.finSent);
  t.notOk(entry.canSendData);
  t.ok(exit.finReceived);
  t.notOk(exit.finished);
  // The other direction keeps flowing after a half-close (BC-29).
  const reply = deliver(exit.sealData(Buffer.alloc(65536, 7), b.sendOf('exit', 1)), entry);
  t.equal((reply as { bytes: Buffer }).bytes.length, 65536);
  t.same(deliver(exit.sealKeepalive(b.sendOf('exit', 1)), entry), { kind: 'keepalive', epoch: 1 });
  t.same(deliver(entry.sealKeepalive(b.sendOf('entry', 1)), exit), { kind: 'keepalive', epoch: 1 }, 'KEEPALIVE after FIN is fine');
  t.same(deliver(exit.sealFin(b.sendOf('exit', 1)), entry), { kind: 'fin', epoch: 1 });
  t.ok(entry.finished);
  t.ok(exit.finished);
});

t.test('RST: both reason names and codes; carrier closed on both sides', async (t) => {
  const b = new Bench();
  b.add(1);
  const entry = b.session('entry');
  const exit = b.session('exit');
  deliver(entry.sealOpen('db', b.sendOf('entry', 1)), exit);
  exit.admit();
  t.same(deliver(exit.sealRst('unknown_service', b.sendOf('exit', 1)), entry), { kind: 'rst', epoch: 1, reason: 'unknown_service', code: 1 });
  t.equal(exit.rst, 'sent');
  t.equal(entry.rst, 'received');
  t.ok(exit.closed);
  t.ok(entry.closed);
  t.equal(abortOf(() => exit.sealData(Buffer.from('x'), b.sendOf('exit', 1))), 'closed');
  t.equal(abortOf(() => entry.sealFin(b.sendOf('entry', 1))), 'closed');
  // Unknown reason codes read as internal.
  const b2 = new Bench();
  b2.add(1);
  const x2 = b2.session('exit');
  deliver(b2.session('entry').sealOpen('db', b2.sendOf('entry', 1)), x2);
  const rst = b2.forge('entry', RecordType.RST, 1, 1, Buffer.from([0x12, 0x34]));
  t.same(x2.openRecord(rst.header, rst.body), { kind: 'rst', epoch: 1, reason: 'internal', code: 0x1234 });
  t.equal(RstReason.busy, 7);
});

t.test('send side: counter 0 on each new epoch, +1 after; epoch snapshot in every header', async (t) => {
  const b = new Bench();
  for (const e of [1, 2, 5]) b.add(e);
  const entry = b.session('entry');
  const exit = b.session('exit');
  const plan: Array<[number, CarrierRecordType]> = [[1, 1], [1, 2], [1, 2], [2, 2], [2, 6], [2, 2], [5, 2], [5, 3], [5, 6]];
  const want = [0, 1, 2, 0, 1, 2, 0, 1, 2];
  plan.forEach(([epoch, type], i) => {
    const send = b.sendOf('entry', epoch);
    const payload = type === 1 ? Buffer.from('svc') : type === 2 ? Buffer.from([i]) : Buffer.alloc(0);
    const rec = entry.sealRecord(type, payload, send);
    const h = decodeRecordHeader(rec);
    t.equal(h.epochLow32, epoch, `record ${i} epoch`);
    t.equal(h.counter, want[i], `record ${i} counter`);
    t.equal(rec.length, RECORD_HEADER_LEN + payload.length + 16, 'header || ct || tag in one buffer');
    const ev = deliver(rec, exit);
    t.equal(ev.epoch, epoch, 'event carries the epoch (the session promotes next on it)');
    t.equal(entry.lastSentEpoch, epoch);
    t.equal(exit.lastReceivedEpoch, epoch);
    if (i === 0) exit.admit();
  });
});

t.test('BC-23 the send epoch is read once per record: header and key always agree', async (t) => {
  const b = new Bench();
  b.add(1);
  b.add(2);
  const entry = b.session('entry');
  const exit = b.session('exit');
  let reads = 0;
  // A "current" that flips between reads: a carrier that read it twice would put one epoch in
  // the header and seal with the other's key.
  const flipping = (): SendEpoch => {
    let n = 0;
    const pick = () => b.sendOf('entry', n++ === 0 ? 1 : 2);
    const first = pick();
    const second = pick();
    let epochReads = 0;
    let secretReads = 0;
    return {
      get epoch() { reads++; return epochReads++ === 0 ? first.epoch : second.epoch; },
      get suite() { reads++; return first.suite; },
      get flowSecret() { reads++; return secretReads++ === 0 ? first.flowSecret : second.flowSecret; },
    };
  };
  deliver(entry.sealOpen('svc', flipping()), exit);
  t.equal(reads, 3, 'epoch, suite and flowSecret each read exactly once');
  for (let i = 0; i < 5; i++) t.equal(deliver(entry.sealData(Buffer.from('x'), flipping()), exit).kind, 'data');
  t.equal(reads, 18);
});

t.test('receive side: accepted sequences', async (t) => {
  type Step = [CarrierRecordType, number, number, string?];
  const rows: Array<[string, Step[], string[]]> = [
    ['OPEN DATA FIN', [[1, 1, 0, 'web'], [2, 1, 1], [3, 1, 2]], ['open', 'data', 'fin']],
    ['KEEPALIVE after FIN', [[1, 1, 0, 'web'], [6, 1, 1], [3, 1, 2], [6, 1, 3]], ['open', 'keepalive', 'fin', 'keepalive']],
    ['epoch switch mid-stream with counter reset', [[1, 1, 0, 'web'], [2, 1, 1], [2, 2, 0], [2, 2, 1], [3, 2, 2]], ['open', 'data', 'data', 'data', 'fin']],
    ['epoch skips a number', [[1, 1, 0, 'web'], [2, 3, 0], [2, 3, 1]], ['open', 'data', 'data']],
    ['OPEN under a later epoch', [[1, 2, 0, 'web'], [2, 2, 1]], ['open', 'data']],
    ['RST right after OPEN', [[1, 1, 0, 'web'], [5, 1, 1]], ['open', 'rst']],
    ['service name of 255 bytes, full alphabet', [[1, 1, 0, ('AZaz09._-' + 'x'.repeat(246))]], ['open']],
  ];
  for (const [name, steps, kinds] of rows) {
    const b = new Bench();
    for (const e of [1, 2, 3]) b.add(e);
    const exit = b.session('exit');
    const got = steps.map(([type, epoch, counter, name]) => {
      const pt = type === 1 ? Buffer.from(name!, 'latin1') : type === 2 ? Buffer.from('data') : type === 5 ? Buffer.from([0, 4]) : Buffer.alloc(0);
      const r = b.forge('entry', type, epoch, counter, pt);
      return exit.openRecord(r.header, r.body).kind;
    });
    t.same(got, kinds, name);
  }
});

t.test('receive side: aborted sequences (exit side receiving from entry)', async (t) => {
  type Step = [CarrierRecordType, number, number, Buffer?];
  const open = (name = 'web'): [CarrierRecordType, number, number, Buffer] => [1, 1, 0, Buffer.from(name, 'latin1')];
  const rows: Array<[string, Step[], string]> = [
    ['first record DATA', [[2, 1, 0]], 'first_not_open'],
    ['first record FIN', [[3, 1, 0]], 'first_not_open'],
    ['first record KEEPALIVE', [[6, 1, 0]], 'first_not_open'],
    ['first record RST', [[5, 1, 0, Buffer.from([0, 4])]], 'first_not_open'],
    ['OPEN with counter 1', [[1, 1, 1, Buffer.from('web')]], 'bad_counter'],
    ['OPEN twice', [open(), [1, 1, 1, Buffer.from('web')]], 'open_twice'],
    ['counter skips', [open(), [2, 1, 2]], 'bad_counter'],
    ['counter repeats (replayed record)', [open(), [2, 1, 1], [2, 1, 1]], 'bad_counter'],
    ['new epoch not starting at 0', [open(), [2, 2, 1]], 'bad_counter'],
    ['epoch decreases', [[1, 2, 0, Buffer.from('web')], [2, 1, 0]], 'epoch_decreased'],
    ['epoch decreases after a switch', [open(), [2, 2, 0], [2, 1, 1]], 'epoch_decreased'],
    ['unknown epoch', [[1, 9, 0, Buffer.from('web')]], 'unknown_epoch'],
    ['unknown epoch mid-stream', [open(), [2, 9, 0]], 'unknown_epoch'],
    ['DATA after FIN', [open(), [3, 1, 1], [2, 1, 2]], 'after_fin'],
    ['FIN after FIN', [open(), [3, 1, 1], [3, 1, 2]], 'after_fin'],
    ['OPEN name with a space', [open('a b')], 'bad_open_name'],
    ['OPEN name with a slash', [open('a/b')], 'bad_open_name'],
    ['OPEN name with a colon (host:port)', [open('10.0.0.1:22')], 'bad_open_name'],
    ['OPEN name with NUL', [open('web\u0000')], 'bad_open_name'],
    ['OPEN name with a non-ASCII byte', [open('caf\u00e9')], 'bad_open_name'],
  ];
  for (const [name, steps, reason] of rows) {
    const b = new Bench();
    for (const e of [1, 2]) b.add(e);
    b.add(9);
    const exit = b.session('exit');
    const recs = steps.map(([type, epoch, counter, pt]) => b.forge('entry', type, epoch, counter, pt ?? (type === 2 ? Buffer.from('d') : Buffer.alloc(0))));
    if (name.startsWith('unknown epoch')) b.drop(9);
    let got = 'no abort';
    for (const r of recs) {
      const e = caught(() => exit.openRecord(r.header, r.body));
      if (e !== undefined) {
        got = e instanceof CarrierAbort ? e.reason : String(e);
        t.ok(isQkdgwError(e, ErrorCodes.PROTOCOL), `${name}: code PROTOCOL`);
        break;
      }
    }
    t.equal(got, reason, name);
    t.ok(exit.closed, `${name}: carrier closed`);
    t.equal(exit.abortReason, reason);
    t.equal(abortOf(() => exit.openRecord(recs[0].header, recs[0].body)), 'closed', `${name}: later records -> closed`);
  }
});

t.test('receive side: entry rules', async (t) => {
  const b = new Bench();
  b.add(1);
  // The exit side never sends OPEN.
  const entry = b.session('entry');
  deliver(entry.sealOpen('web', b.sendOf('entry', 1)), b.session('exit'));
  const fakeOpen = b.forge('exit', RecordType.OPEN, 1, 0, Buffer.from('web'));
  t.equal(abortOf(() => entry.openRecord(fakeOpen.header, fakeOpen.body)), 'open_from_exit');
  // Nothing can arrive before our OPEN.
  const early = b.session('entry');
  const d = b.forge('exit', RecordType.DATA, 1, 0, Buffer.from('x'));
  t.equal(abortOf(() => early.openRecord(d.header, d.body)), 'record_before_open');
});

t.test('tampering: one flipped bit anywhere aborts with auth_failed and releases no plaintext (BC-15)', async (t) => {
  const b = new Bench();
  b.add(1);
  const entry = b.session('entry');
  const openRec = entry.sealOpen('web', b.sendOf('entry', 1));
  const dataRec = entry.sealData(Buffer.alloc(16384, 0x5a), b.sendOf('entry', 1));
  const bits = [RECORD_HEADER_LEN * 8, RECORD_HEADER_LEN * 8 + 7, (RECORD_HEADER_LEN + 8000) * 8 + 3, dataRec.length * 8 - 17, dataRec.length * 8 - 1];
  for (const bit of bits) {
    const exit = b.session('exit');
    deliver(openRec, exit);
    const bad = Buffer.from(dataRec);
    bad[bit >> 3] ^= 1 << (bit & 7);
    let ev: CarrierEvent | undefined;
    const e = caught(() => { ev = deliver(bad, exit); });
    t.equal(e instanceof CarrierAbort && e.reason, 'auth_failed', `bit ${bit}`);
    t.equal(ev, undefined, 'no event, no bytes');
    t.ok(exit.closed);
  }
  // A header (AAD) bit that keeps the header valid: the epoch_low32 is resolved to another known epoch -> counter/tag fail.
  const b2 = new Bench();
  b2.add(1);
  b2.add(3);
  const x2 = b2.session('exit');
  const e2 = b2.session('entry');
  deliver(e2.sealOpen('web', b2.sendOf('entry', 1)), x2);
  const r = Buffer.from(e2.sealData(Buffer.from('hi'), b2.sendOf('entry', 1)));
  r[7] ^= 0x02; // epoch 1 -> 3
  r.writeUInt32BE(0, 12); // counter 1 -> 0 so only the tag can catch it
  t.equal(abortOf(() => deliver(r, x2)), 'auth_failed', 'header is authenticated as AAD');
});

t.test('replay: a record replayed on its carrier aborts; a replayed OPEN on a new carrier is left to the epoch flow_id set (s5.1)', async (t) => {
  const b = new Bench();
  b.add(1);
  const entry = b.session('entry');
  const exit = b.session('exit');
  const r0 = entry.sealOpen('web', b.sendOf('entry', 1));
  const r1 = entry.sealData(Buffer.from('one'), b.sendOf('entry', 1));
  deliver(r0, exit);
  deliver(r1, exit);
  t.equal(abortOf(() => deliver(r1, exit)), 'bad_counter', 'same record twice');
  const exit2 = b.session('exit');
  t.equal(deliver(r0, exit2).kind, 'open', 'a replayed OPEN authenticates: the exit session must check flow_id in the epoch set (s5.1 Replay)');
  t.equal(abortOf(() => exit2.sealData(Buffer.from('x'), b.sendOf('exit', 1))), 'send_not_admitted', 'and nothing is sealed until admit()');
});

t.test('send-side rules', async (t) => {
  const b = new Bench();
  b.add(1);
  b.add(2);
  const s = (side: 'entry' | 'exit', ...setup: Array<(c: CarrierSession) => unknown>) => {
    const c = b.session(side);
    for (const f of setup) f(c);
    return c;
  };
  const open1 = (c: CarrierSession) => c.sealOpen('web', b.sendOf('entry', 1));
  const rows: Array<[string, () => unknown, string]> = [
    ['entry: DATA first', () => s('entry').sealData(Buffer.from('x'), b.sendOf('entry', 1)), 'send_first_not_open'],
    ['entry: FIN first', () => s('entry').sealFin(b.sendOf('entry', 1)), 'send_first_not_open'],
    ['entry: OPEN twice', () => s('entry', open1).sealOpen('web', b.sendOf('entry', 1)), 'send_open_twice'],
    ['entry: DATA after FIN', () => s('entry', open1, (c) => c.sealFin(b.sendOf('entry', 1))).sealData(Buffer.from('x'), b.sendOf('entry', 1)), 'send_after_fin'],
    ['entry: FIN twice', () => s('entry', open1, (c) => c.sealFin(b.sendOf('entry', 1))).sealFin(b.sendOf('entry', 1)), 'send_after_fin'],
    ['entry: epoch decreases', () => s('entry', (c) => c.sealOpen('web', b.sendOf('entry', 2))).sealData(Buffer.from('x'), b.sendOf('entry', 1)), 'send_epoch_decreased'],
    ['entry: empty DATA', () => s('entry', open1).sealData(Buffer.alloc(0), b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: DATA of 65537 bytes', () => s('entry', open1).sealData(Buffer.alloc(65537), b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: empty service name', () => s('entry').sealOpen('', b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: 256-byte service name', () => s('entry').sealOpen('a'.repeat(256), b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: host:port as service', () => s('entry').sealOpen('10.0.0.1:22', b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: FIN with payload', () => s('entry', open1).sealRecord(RecordType.FIN, Buffer.from([1]), b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: L3 type on a carrier', () => s('entry', open1).sealRecord(RecordType.L3 as CarrierRecordType, Buffer.from([1]), b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: RST reason not u16', () => s('entry', open1).sealRst(0x10000, b.sendOf('entry', 1)), 'send_bad_payload'],
    ['entry: wiped epoch secret', () => s('entry').sealOpen('web', { epoch: 1, suite: 1, flowSecret: (() => { const x = SecretBytes.from(Buffer.alloc(32, 1)); x.wipe(); return x; })() }), 'send_epoch_unusable'],
    ['entry: epoch 0', () => s('entry').sealOpen('web', { ...b.sendOf('entry', 1), epoch: 0 }), 'send_epoch_unusable'],
    ['exit: sends OPEN', () => s('exit').sealOpen('web', b.sendOf('exit', 1)), 'send_open_from_exit'],
    ['exit: DATA before any OPEN', () => s('exit').sealData(Buffer.from('x'), b.sendOf('exit', 1)), 'send_not_admitted'],
    ['exit: RST before admit', () => s('exit', (c) => deliver(b.session('entry').sealOpen('web', b.sendOf('entry', 1)), c)).sealRst('busy', b.sendOf('exit', 1)), 'send_not_admitted'],
  ];
  for (const [name, f, reason] of rows) t.equal(abortOf(f), reason, name);
  // admit() misuse is a programming error.
  t.ok(isQkdgwError(caught(() => b.session('exit').admit()), ErrorCodes.INTERNAL), 'admit before OPEN');
  t.ok(isQkdgwError(caught(() => b.session('entry').admit()), ErrorCodes.INTERNAL), 'admit on entry');
  t.ok(isQkdgwError(caught(() => new CarrierSession({ side: 'entry', flowId: Buffer.alloc(15), recvLookup: () => null })), ErrorCodes.INTERNAL));
  // A carrier whose send failed is closed.
  const c = s('entry', open1);
  caught(() => c.sealData(Buffer.alloc(0), b.sendOf('entry', 1)));
  t.ok(c.closed);
  t.equal(abortOf(() => c.sealData(Buffer.from('x'), b.sendOf('entry', 1))), 'closed');
});

t.test('lookup purpose: open for the exit carrier\'s first record, record afterwards and on the entry side', async (t) => {
  const b = new Bench();
  b.add(1);
  const entry = b.session('entry');
  const exit = b.session('exit');
  deliver(entry.sealOpen('web', b.sendOf('entry', 1)), exit);
  exit.admit();
  deliver(entry.sealData(Buffer.from('x'), b.sendOf('entry', 1)), exit);
  deliver(exit.sealData(Buffer.from('y'), b.sendOf('exit', 1)), entry);
  t.same(b.lookups.map((l) => `${l.side}:${l.purpose}`), ['exit:open', 'exit:record', 'entry:record']);
  // A lookup that refuses "open" (no epoch accepting new carriers) aborts with unknown_epoch.
  const strict = new CarrierSession({ side: 'exit', flowId: b.flowId, recvLookup: (low, purpose) => (purpose === 'open' ? null : b.lookup('exit')(low, purpose)) });
  t.equal(abortOf(() => deliver(b.session('entry').sealOpen('web', b.sendOf('entry', 1)), strict)), 'unknown_epoch');
  // A lookup answering with an epoch whose low 32 bits differ is not trusted.
  const wrong = new CarrierSession({ side: 'exit', flowId: b.flowId, recvLookup: () => ({ ...b.sendOf('entry', 1), epoch: 2 }) });
  t.equal(abortOf(() => deliver(b.session('entry').sealOpen('web', b.sendOf('entry', 1)), wrong)), 'unknown_epoch');
});

t.test('epochs above 2^32 use their low 32 bits on the wire', async (t) => {
  const b = new Bench();
  const big = 2 ** 32 + 5;
  b.add(big);
  const entry = b.session('entry');
  const exit = b.session('exit');
  const rec = entry.sealOpen('web', b.sendOf('entry', big));
  t.equal(decodeRecordHeader(rec).epochLow32, 5);
  t.same(deliver(rec, exit), { kind: 'open', epoch: big, service: 'web' });
});

t.test('pins (protocol.md s4): last received epoch; entry with nothing received pins its OPEN epoch - 1', async (t) => {
  const b = new Bench();
  for (const e of [3, 4]) b.add(e);
  const entry = b.session('entry');
  const exit = b.session('exit');
  t.equal(entry.pinEpoch, null, 'nothing sent, nothing received');
  deliver(entry.sealOpen('web', b.sendOf('entry', 4)), exit);
  t.equal(entry.pinEpoch, 3, 'OPEN under 4, nothing received: pins 3 (the exit may still answer under 3)');
  t.equal(entry.openEpoch, 4);
  t.equal(exit.pinEpoch, 4);
  t.equal(exit.openEpoch, 4);
  exit.admit();
  deliver(exit.sealData(Buffer.from('x'), b.sendOf('exit', 3)), entry);
  t.equal(entry.pinEpoch, 3, 'answer under 3');
  deliver(exit.sealData(Buffer.from('x'), b.sendOf('exit', 4)), entry);
  t.equal(entry.pinEpoch, 4, 'released to 4 once a newer record came');
  entry.close();
  t.equal(entry.pinEpoch, null, 'a closed carrier pins nothing');
});

t.test('flow keys: derived once per (direction, epoch), cached, wiped on switch and close', async (t) => {
  const b = new Bench();
  for (const e of [1, 2]) b.add(e);
  const ce = countingCrypto();
  const cx = countingCrypto();
  const entry = b.session('entry', ce);
  const exit = b.session('exit', cx);
  deliver(entry.sealOpen('web', b.sendOf('entry', 1)), exit);
  exit.admit();
  for (let i = 0; i < 10; i++) {
    deliver(entry.sealData(Buffer.from('x'), b.sendOf('entry', 1)), exit);
    deliver(exit.sealData(Buffer.from('y'), b.sendOf('exit', 1)), entry);
  }
  t.equal(ce.derived.length, 2, 'entry: one send key, one receive key');
  t.equal(cx.derived.length, 2, 'exit: one receive key, one send key');
  deliver(entry.sealData(Buffer.from('x'), b.sendOf('entry', 2)), exit);
  t.equal(ce.derived.length, 3);
  t.ok(ce.derived[0].key.wiped, 'epoch-1 send key wiped at the switch');
  t.ok(ce.derived[0].iv.equals(Buffer.alloc(12)), 'and its IV zeroed');
  t.ok(cx.derived[0].key.wiped, 'exit: epoch-1 receive key wiped when epoch 2 arrived');
  t.notOk(ce.derived[1].key.wiped, 'entry receive key for epoch 1 still live');
  entry.close();
  exit.close();
  for (const d of [...ce.derived, ...cx.derived]) t.ok(d.key.wiped, 'every cached key wiped on close');
  t.notOk(b.epochs.get(1)!.entryOut.wiped, 'the epoch secret F_d belongs to the session, not the carrier');
});

t.test('suite 2 (XChaCha20-Poly1305) round trip and mixed suites per epoch', async (t) => {
  const b = new Bench(2);
  b.add(1);
  b.add(2, 1);
  const entry = b.session('entry');
  const exit = b.session('exit');
  deliver(entry.sealOpen('web', b.sendOf('entry', 1)), exit);
  exit.admit();
  const d = deliver(exit.sealData(Buffer.from('x'.repeat(1000)), b.sendOf('exit', 1)), entry);
  t.equal((d as { bytes: Buffer }).bytes.length, 1000);
  t.equal(deliver(entry.sealData(Buffer.from('z'), b.sendOf('entry', 2)), exit).kind, 'data', 'next epoch under suite 1');
});

t.test('random traffic: both directions, random sizes, random epoch switches', async (t) => {
  const rnd = prng(0x5eed);
  for (let run = 0; run < 20; run++) {
    const b = new Bench(((run % 2) + 1) as 1 | 2);
    for (let e = 1; e <= 6; e++) b.add(e);
    const entry = b.session('entry');
    const exit = b.session('exit');
    let eIn = 1;
    let eOut = 1;
    deliver(entry.sealOpen(`svc-${run}`, b.sendOf('entry', eIn)), exit);
    exit.admit();
    let sentA = 0;
    let sentB = 0;
    let gotA = 0;
    let gotB = 0;
    for (let i = 0; i < 60; i++) {
      if (rnd.int(8) === 0 && eIn < 6) eIn++;
      if (rnd.int(8) === 0 && eOut < 6) eOut++;
      const n = 1 + rnd.int(rnd.int(4) === 0 ? 65536 : 300);
      if (rnd.int(2)) {
        sentA += n;
        gotA += (deliver(entry.sealData(rnd.bytes(n), b.sendOf('entry', eIn)), exit) as { bytes: Buffer }).bytes.length;
      } else {
        sentB += n;
        gotB += (deliver(exit.sealData(rnd.bytes(n), b.sendOf('exit', eOut)), entry) as { bytes: Buffer }).bytes.length;
      }
    }
    t.equal(gotA, sentA, `run ${run}: entry -> exit bytes`);
    t.equal(gotB, sentB, `run ${run}: exit -> entry bytes`);
  }
});
