// Suite negotiation (protocol.md s2/s3): HELLO carries each side's `suites` in preference
// order; the initiator (gw-a) picks the first suite in ITS order that the responder offers
// and names it in INIT; the suite belongs to the epoch. No common suite: the initiator
// sends the fatal `ALERT no_common_suite` (before asking the KME for a key) and no epoch
// exists, so the entry side holds new clients until `hold`, then resets them (s4 hold).
// Real sockets, the real KME simulator, both gateways in this process.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { startLab, until, dial, collect, sha256, type Lab, type Outcome } from '../../helpers/lab.js';
import type { Test } from 'tap';

type LogLine = Record<string, unknown>;

const MiB = 2 ** 20;

/** Adds `suites: <list>` to policies.default of one gateway's YAML. */
const withSuites = (suites: number[]) => (y: string): string => {
  const out = y.replace(/^( {4}grace: .*\n)/m, `$1    suites: [${suites.join(', ')}]\n`);
  if (out === y) throw new Error('policies.default.grace not found in the generated YAML');
  return out;
};

const events = (lines: LogLine[], name: string): LogLine[] => lines.filter((l) => l.event === name);

/** Resolves once both sides hold the same `current` epoch numbered above `after`. */
async function bothOnEpochAbove(lab: Lab, after: number, what: string): Promise<number> {
  await until(() => {
    const a = lab.rtA().session.slots.current?.n ?? 0;
    return a > after && lab.rtB().session.slots.current?.n === a;
  }, 15_000, what);
  return lab.rtA().session.slots.current!.n;
}

/**
 * One flow through the tunnel with different data each way: the client sends `up`, the
 * target (see `distinctReply`) answers with `down` and closes after the client's FIN.
 */
async function flowBothWays(t: Test, lab: Lab, up: Buffer, down: Buffer, what: string): Promise<void> {
  const before = lab.targets.length;
  const s = await dial(lab.servicePort);
  const got = collect(s);
  s.end(up);
  const r = await got;
  t.equal(r.how, 'eof', `${what}: the client sees a clean end`);
  t.equal(r.data.length, down.length, `${what}: ${down.length} bytes down`);
  t.equal(sha256(r.data), sha256(down), `${what}: downstream SHA-256 matches`);
  await until(() => lab.targets.length > before && lab.targets[before].ended !== null, 10_000, `${what}: target side done`);
  const tc = lab.targets[before];
  t.equal(tc.bytes, up.length, `${what}: ${up.length} bytes up`);
  t.equal(sha256(received.get(tc.socket) ?? Buffer.alloc(0)), sha256(up), `${what}: upstream SHA-256 matches`);
}

// What the target read per connection (the lab counts bytes only).
const received = new Map<Socket, Buffer>();
let downPayload = Buffer.alloc(0);
/** Target behaviour: record the client's bytes, send `downPayload`, end after the client's FIN. */
const distinctReply = (s: Socket): void => {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.once('end', () => {
    received.set(s, Buffer.concat(chunks));
    s.end();
  });
  s.write(downPayload);
};

t.test('suite 2 on both policies: data both ways, every epoch_switch says suite 2, also after a forced rekey', async (t) => {
  const lab = await startLab(t, { editA: withSuites([2]), editB: withSuites([2]), onTarget: distinctReply });
  await lab.ready();
  const first = lab.rtA().session.slots.current!.n;
  t.equal(lab.rtA().session.slots.current!.suite, 2, 'gw-a current epoch is suite 2');
  t.equal(lab.rtB().session.slots.current!.suite, 2, 'gw-b current epoch is suite 2');

  downPayload = randomBytes(3 * MiB);
  await flowBothWays(t, lab, randomBytes(3 * MiB), downPayload, 'suite 2 flow');

  lab.rtA().trigger('records');
  const second = await bothOnEpochAbove(lab, first, 'a forced rekey');
  t.equal(lab.rtA().session.slots.current!.suite, 2, 'after the rekey gw-a is still on suite 2');
  t.equal(lab.rtB().session.slots.current!.suite, 2, 'after the rekey gw-b is still on suite 2');

  downPayload = randomBytes(2 * MiB);
  await flowBothWays(t, lab, randomBytes(2 * MiB), downPayload, 'suite 2 flow after the rekey');
  // The second flow opened under the new epoch, so it ran under a suite-2 key.
  t.equal(lab.rtA().session.slots.current!.n, second, 'no further epoch during the second flow');

  for (const [side, log] of [['gw-a', lab.logA], ['gw-b', lab.logB]] as const) {
    const sw = events(log.lines, 'epoch_switch');
    t.same(sw.map((l) => Number(l.epoch)).filter((n) => n >= first && n <= second), [first, second], `${side} switched to epochs ${first} and ${second}`);
    t.ok(sw.length >= 2, `${side} logged ${sw.length} epoch_switch lines`);
    for (const l of sw) t.equal(l.suite, 2, `${side} epoch_switch ${String(l.epoch)} says suite 2`);
    const cfg = events(log.lines, 'peer_configured')[0];
    t.same(cfg?.suites, [2], `${side} logged the configured suites [2]`);
  }
});

t.test('initiator [2,1], responder [1]: suite 1 negotiated and data flows', async (t) => {
  const lab = await startLab(t, { editA: withSuites([2, 1]), editB: withSuites([1]), onTarget: distinctReply });
  await lab.ready();
  t.equal(lab.rtA().session.slots.current!.suite, 1, 'gw-a epoch is suite 1');
  t.equal(lab.rtB().session.slots.current!.suite, 1, 'gw-b epoch is suite 1');
  downPayload = randomBytes(256 * 1024);
  await flowBothWays(t, lab, randomBytes(256 * 1024), downPayload, 'suite 1 flow');
  for (const log of [lab.logA, lab.logB]) for (const l of events(log.lines, 'epoch_switch')) t.equal(l.suite, 1, `epoch_switch ${String(l.epoch)} says suite 1`);
});

// protocol.md s2: "The initiator picks the first suite in its own order that the responder
// offers". Both orders are tried so that "the responder's order wins" would fail one of them.
for (const [a, b, want] of [[[1, 2], [2, 1], 1], [[2, 1], [1, 2], 2]] as const) {
  t.test(`initiator [${a.join(',')}], responder [${b.join(',')}]: the initiator's first choice, suite ${want}`, async (t) => {
    const lab = await startLab(t, { editA: withSuites([...a]), editB: withSuites([...b]) });
    await lab.ready();
    t.equal(lab.rtA().session.slots.current!.suite, want, `gw-a epoch is suite ${want}`);
    t.equal(lab.rtB().session.slots.current!.suite, want, `gw-b epoch is suite ${want}`);
    // A short echo proves both sides really hold the same suite's keys.
    const s = await dial(lab.servicePort);
    const got = collect(s);
    const p = randomBytes(64 * 1024);
    s.end(p);
    t.equal(sha256((await got).data), sha256(p), 'echo intact');
    for (const log of [lab.logA, lab.logB]) for (const l of events(log.lines, 'epoch_switch')) t.equal(l.suite, want, `epoch_switch ${String(l.epoch)} says suite ${want}`);
  });
}

t.test('no common suite ([1] vs [2]): ALERT no_common_suite on both sides, no epoch, clients held then reset', async (t) => {
  const lab = await startLab(t, { policy: { hold: '2s' }, editA: withSuites([1]), editB: withSuites([2]) });
  // A client that arrives before any handshake could succeed is held, then reset.
  const start = Date.now();
  const c1 = await dial(lab.servicePort);
  let c1Ended = false;
  const o1 = collect(c1).then((o) => ((c1Ended = true), o));
  c1.write('held?');

  await until(() => events(lab.logA.lines, 'alert_sent').some((l) => l.code === 'no_common_suite'), 10_000, 'gw-a sends no_common_suite');
  await until(() => events(lab.logB.lines, 'alert_received').some((l) => l.code === 'no_common_suite'), 10_000, 'gw-b receives no_common_suite');
  const sent = events(lab.logA.lines, 'alert_sent').find((l) => l.code === 'no_common_suite')!;
  const got = events(lab.logB.lines, 'alert_received').find((l) => l.code === 'no_common_suite')!;
  t.equal(sent.fatal, true, 'gw-a (initiator) logged the fatal ALERT it sent');
  t.equal(got.fatal, true, 'gw-b (responder) logged it as fatal');
  t.notOk(c1Ended, 'the client is still held (open) after the refusal');

  const r1: Outcome = await o1;
  t.equal(r1.how, 'reset', 'the held client is reset, not closed cleanly');
  t.equal(r1.bytes, 0, 'it got nothing');
  t.ok(Date.now() - start >= 1_000, `it was held first (${Date.now() - start} ms)`);

  // Past the hold, with still no epoch, a new client is reset at once (the gateway may
  // reset it before the connect completes: ECONNRESET from connect() is the same answer).
  const t2 = Date.now();
  const r2: Outcome = await dial(lab.servicePort).then(
    (c2) => collect(c2),
    (e: NodeJS.ErrnoException) => ({ how: e.code === 'ECONNRESET' ? 'reset' as const : 'error' as const, code: e.code, bytes: 0 }),
  );
  t.equal(r2.how, 'reset', 'a later client is reset');
  t.equal(r2.bytes, 0, 'it got nothing');
  t.ok(Date.now() - t2 < 1_000, `at once (${Date.now() - t2} ms)`);

  t.equal(lab.rtA().sendEpoch(), null, 'gw-a has no epoch');
  t.equal(lab.rtB().sendEpoch(), null, 'gw-b has no epoch');
  t.equal(lab.rtA().session.slots.current, null, 'gw-a holds no current epoch');
  t.equal(lab.rtB().session.slots.current, null, 'gw-b holds no current epoch');
  t.equal(events(lab.logA.lines, 'epoch_switch').length + events(lab.logB.lines, 'epoch_switch').length, 0, 'no epoch_switch logged');
  t.equal(events(lab.logA.lines, 'handshake_started').length, 0, 'no handshake started: no INIT was sent');
  t.equal(lab.sim.deliveries.length, 0, 'no QKD key consumed for a handshake that cannot agree on a suite');
  t.equal(lab.accepted.length, 0, 'nothing reached the target');
});
