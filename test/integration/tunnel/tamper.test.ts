// BC-15: a record whose tag fails releases no plaintext and aborts that carrier only
// (protocol.md s5.1). A proxy between gw-a and gw-b's data port flips one bit of a 16 KiB
// DATA record: once in the ciphertext, once in the last tag byte.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { startLab, until, dial, collect, sha256, REC, type ProxyConn } from '../../helpers/lab.js';

const FRAME = 16 * 1024;

t.test('BC-15 tampered 16 KiB record: target gets 0 bytes of it, client is reset, other flows intact', async (t) => {
  // Which carrier to tamper and where: set by the test before it opens that flow.
  const plan = new Map<number, 'ciphertext' | 'tag'>();
  const tampered: Array<{ conn: number; ctLen: number; where: string }> = [];
  const lab = await startLab(t, {
    proxy: {
      onUpRecord(c: ProxyConn, rec: Buffer) {
        const where = plan.get(c.index);
        if (!where || rec[0] !== REC.DATA || tampered.some((x) => x.conn === c.index)) return;
        const out = Buffer.from(rec);
        // header (20) || ciphertext || tag (16): flip a bit in the middle of the ciphertext or the last tag bit.
        const at = where === 'tag' ? out.length - 1 : 20 + Math.floor((out.length - 20 - 16) / 2);
        out[at] ^= where === 'tag' ? 0x01 : 0x80;
        tampered.push({ conn: c.index, ctLen: rec.length - 20, where });
        return out;
      },
    },
  });
  await lab.ready();

  // Two flows that stream the whole time, before, during and after the tampering.
  const good: Array<{ s: Socket; sent: Buffer[]; got: ReturnType<typeof collect> }> = [];
  for (let i = 0; i < 2; i++) {
    const s = await dial(lab.servicePort);
    const got = collect(s);
    const first = randomBytes(50_000 + i);
    s.write(first);
    good.push({ s, sent: [first], got });
    await until(() => lab.proxy!.conns.length === i + 1 && lab.targets.length === i + 1, 5_000, `good flow ${i} open`);
  }

  const victims: Array<{ where: 'ciphertext' | 'tag'; conn: number; target: number; out: ReturnType<typeof collect> }> = [];
  for (const where of ['ciphertext', 'tag'] as const) {
    const conn = lab.proxy!.conns.length;
    const target = lab.targets.length;
    plan.set(conn, where);
    const s = await dial(lab.servicePort);
    const out = collect(s);
    // Wait until the target holds this flow's connection, so that its end is observable.
    await until(() => lab.targets.length === target + 1, 5_000, 'victim target connection');
    s.write(randomBytes(FRAME)); // one 16 KiB write -> one 16 KiB DATA record
    victims.push({ where, conn, target, out });
    for (const g of good) {
      const more = randomBytes(20_000);
      g.sent.push(more);
      g.s.write(more);
    }
    const r = await out;
    t.equal(r.how, 'reset', `${where}: client sees a reset, not a clean EOF`);
    t.equal(r.bytes, 0, `${where}: client got nothing back`);
    const tr = await lab.targets[target].outcome;
    t.equal(lab.targets[target].bytes, 0, `${where}: target received zero bytes of the tampered record`);
    t.equal(tr.how, 'reset', `${where}: target sees a reset, not a clean EOF`);
  }
  t.same(
    tampered.map((x) => [x.where, x.ctLen]),
    [['ciphertext', FRAME + 16], ['tag', FRAME + 16]],
    'each tampered record was the 16 KiB DATA record',
  );

  for (const g of good) {
    const last = randomBytes(30_000);
    g.sent.push(last);
    g.s.end(last);
  }
  for (const [i, g] of good.entries()) {
    const r = await g.got;
    t.equal(r.how, 'eof', `good flow ${i} ends cleanly`);
    t.equal(sha256(r.data), sha256(Buffer.concat(g.sent)), `good flow ${i}: every byte echoed intact`);
  }
  t.equal(lab.rtB().stats.authFailures, 2, 'gw-b counted two carrier_auth_failures');
  const aborted = lab.logB.lines.filter((l) => l.event === 'carrier_aborted');
  t.same(aborted.map((l) => l.reason), ['auth_failed', 'auth_failed'], 'gw-b logged the aborts as auth_failed');
  t.equal(lab.rtA().stats.authFailures, 0, 'gw-a saw no auth failure');
  t.equal(lab.rtB().stats.carrierAborts, 2, 'gw-b aborted exactly the two tampered carriers');
});
