// protocol.md s5.1 Replay: a carrier captured on the wire and replayed byte for byte to
// the exit gateway's data port reaches the target zero extra times, and nothing is
// sealed back on it.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { startLab, until, dial, collect, sha256 } from '../../helpers/lab.js';

t.test('a carrier replayed byte for byte reaches the target zero extra times and gets nothing back', async (t) => {
  const lab = await startLab(t, { proxy: true, grace: '2s' });
  await lab.ready();

  // The original flow, captured whole by the proxy (entry -> exit bytes).
  const s = await dial(lab.servicePort);
  const got = collect(s);
  const payload = randomBytes(200_000);
  s.end(payload);
  const r = await got;
  t.equal(r.how, 'eof');
  t.equal(sha256(r.data), sha256(payload), 'original flow echoed intact');
  const conn = lab.proxy!.conns[0];
  await conn.closed;
  const wire = Buffer.concat(conn.captured);
  t.ok(wire.length > payload.length, 'captured the whole carrier stream');
  t.equal(lab.targets.length, 1);
  const targetBytes = lab.targets[0].bytes;

  const replay = async (what: string, bytes: Buffer): Promise<void> => {
    const sock = connect({ host: '127.0.0.1', port: lab.dataPort });
    const out = collect(sock);
    sock.on('connect', () => sock.write(bytes));
    const o = await out;
    await new Promise<void>((res) => (sock.destroyed ? res() : sock.once('close', () => res())));
    t.equal(o.bytes, 0, `${what}: the replaying socket receives 0 bytes`);
    t.ok(sock.destroyed, `${what}: the replaying socket is closed`);
  };

  await replay('whole stream', wire);
  t.equal(lab.rtB().stats.replays, 1, 'gw-b counted the replay');
  t.ok(lab.logB.lines.some((l) => l.event === 'carrier_replay'), 'carrier_replay logged');

  // The same OPEN again, cut short (preamble + OPEN + first DATA only), and once more whole.
  await replay('preamble and first records', wire.subarray(0, 28 + 20 + 3 + 16 + 20 + 100));
  await replay('whole stream again', wire);
  t.equal(lab.rtB().stats.replays, 3, 'every replay counted');

  // After a rekey the captured OPEN's epoch is `previous` (within grace): its set still holds the flow_id.
  const before = lab.rtA().session.slots.current!.n;
  lab.rtA().trigger('records');
  await until(() => lab.rtA().session.slots.current!.n > before && lab.rtB().session.slots.current?.n === lab.rtA().session.slots.current!.n, 10_000, 'rekey');
  t.equal(lab.rtB().session.slots.previous?.n, before, 'the replayed epoch is previous on gw-b');
  await replay('after a rekey', wire);
  t.equal(lab.rtB().stats.replays, 4, 'replay under previous is still detected');

  // BC-24 for carriers: once `previous` is past its grace, an OPEN under it is refused before
  // the replay set is even consulted (unknown_epoch), and the epoch number never goes back.
  const prev = lab.rtB().session.slots.previous!;
  await until(() => !lab.rtB().session.slots.acceptsNewCarriers(prev, lab.rtB().now()), 5_000, 'grace of previous over');
  const abortsBefore = lab.logB.lines.filter((l) => l.event === 'carrier_aborted' && l.reason === 'unknown_epoch').length;
  await replay('after the grace of its epoch', wire);
  t.equal(lab.rtB().stats.replays, 4, 'not counted as a replay: refused earlier');
  t.equal(lab.logB.lines.filter((l) => l.event === 'carrier_aborted' && l.reason === 'unknown_epoch').length, abortsBefore + 1, 'refused as unknown_epoch');
  t.equal(lab.rtB().session.slots.current!.n, before + 1, 'gw-b stays on the new epoch');
  t.equal(lab.targets.length, 1, 'the target accepted no extra connection');
  t.equal(lab.targets[0].bytes, targetBytes, 'the target received no extra byte');

  // The gateway still serves new flows.
  const s2 = await dial(lab.servicePort);
  const got2 = collect(s2);
  const p2 = randomBytes(10_000);
  s2.end(p2);
  const r2 = await got2;
  t.equal(sha256(r2.data), sha256(p2), 'a fresh flow still works');
  await until(() => lab.targets.length === 2, 2_000, 'fresh flow reached the target');
});
