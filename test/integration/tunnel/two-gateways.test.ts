// Two real gateways in one process with the real KME simulator, moving data across rekeys.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startLab, until, dial, readAll, sha256 } from '../../helpers/lab.js';

t.test('first epoch, echo through the tunnel, key_IDs match the simulator', async (t) => {
  const lab = await startLab(t);
  const rtA = lab.a.peers.get('gw-b')!;
  const rtB = lab.b.peers.get('gw-a')!;
  await until(() => rtA.sendEpoch() !== null && rtB.sendEpoch() !== null, 10_000, 'first epoch');
  const eA = rtA.session.slots.current!;
  t.equal(eA.n, 1);
  t.equal(rtB.session.slots.current!.n, 1);
  const delivered = lab.sim.deliveries.map((d) => d.key_ID);
  t.ok(delivered.includes(eA.keyIds[0]), 'epoch key_ID is one the simulator delivered');
  const s = await dial(lab.servicePort);
  const payload = randomBytes(300_000);
  const got = readAll(s);
  s.end(payload);
  const back = await got;
  t.equal(sha256(back), sha256(payload), 'echoed bytes intact');
});

t.test('data keeps flowing across rekeys (2 s interval)', async (t) => {
  const lab = await startLab(t, { rekeyAfterTime: '2s', hardLimitTime: '20s' });
  const rtA = lab.a.peers.get('gw-b')!;
  await until(() => rtA.sendEpoch() !== null, 10_000, 'first epoch');
  const s = await dial(lab.servicePort);
  const sent: Buffer[] = [];
  const recv: Buffer[] = [];
  s.on('data', (c: Buffer) => recv.push(c));
  const start = rtA.session.slots.current!.n;
  while (rtA.session.slots.current!.n < start + 3) {
    const chunk = randomBytes(8192);
    sent.push(chunk);
    s.write(chunk);
    await new Promise((r) => setTimeout(r, 25));
  }
  const done = new Promise((r) => s.once('end', r));
  s.end();
  await done;
  t.equal(sha256(Buffer.concat(recv)), sha256(Buffer.concat(sent)), 'every byte back, in order');
  t.ok(rtA.session.slots.current!.n >= start + 3, 'at least 3 rekeys while streaming');
  const switches = lab.logB.lines.filter((l) => l.event === 'epoch_switch');
  t.ok(switches.length >= 4, 'responder logged its epoch switches');
  for (const l of switches) t.ok(Array.isArray(l.key_IDs) && (l.key_IDs as string[]).length === 1, 'each switch logs its key_ID');
});
