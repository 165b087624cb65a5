// BC-29: a half-close is not a full close. FIN maps to end() on the far local socket and
// the other direction keeps flowing (protocol.md s5.1 Closing).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { startLab, dial, collect, until, sha256, noOpenConnections, tcpStates } from '../../helpers/lab.js';

t.test('BC-29 half-close in both directions', async (t) => {
  let behaviour: (s: Socket) => void = () => undefined;
  const lab = await startLab(t, { onTarget: (s) => behaviour(s) });
  await lab.ready();

  await t.test('BC-29 client sends 10 bytes then FIN; backend answers 1 MiB after EOF', async (t) => {
    const reply = randomBytes(1_048_576);
    let seenAtEof = -1;
    let wroteAfterEof = false;
    behaviour = (s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => {
        seenAtEof = n;
        wroteAfterEof = true;
        s.end(reply);
      });
    };
    const c = await dial(lab.servicePort);
    const out = collect(c);
    c.end(Buffer.from('0123456789'));
    const r = await out;
    t.equal(seenAtEof, 10, 'backend saw EOF after exactly 10 bytes');
    t.ok(wroteAfterEof, 'backend wrote only after EOF');
    t.equal(r.how, 'eof', 'client got a clean EOF');
    t.equal(r.bytes, 1_048_576, 'client received all 1,048,576 bytes');
    t.equal(sha256(r.data), sha256(reply), 'bytes intact');
    await until(() => lab.rtA().carrierCount === 0 && lab.rtB().carrierCount === 0, 2_000, 'carriers finished on both gateways');
    t.equal(lab.logA.lines.filter((l) => l.event === 'carrier_finished').length, 1, 'gw-a logged a clean finish');
    const ports = [lab.servicePort, lab.dataPort, (lab.target.address() as { port: number }).port];
    await until(() => ports.every(noOpenConnections), 3_000, 'no ESTABLISHED/CLOSE_WAIT socket left');
    t.notOk([...lab.logA.lines, ...lab.logB.lines].some((l) => l.event === 'carrier_reset'), 'no carrier was reset');
  });

  await t.test('BC-29 backend sends "hello" and closes at once; the client never writes', async (t) => {
    behaviour = (s) => s.end('hello');
    const c = await dial(lab.servicePort);
    const started = Date.now();
    const out = collect(c);
    const r = await out;
    t.equal(r.how, 'eof', 'client got EOF, not a reset');
    t.equal(r.data.toString(), 'hello', 'client got "hello" first');
    t.ok(Date.now() - started < 1_000, 'within 1 s');
    // The client's own close finishes the carrier: nothing is left open afterwards.
    c.end();
    await new Promise((res) => c.once('close', res));
    await until(() => lab.rtA().carrierCount === 0 && lab.rtB().carrierCount === 0, 2_000, 'carriers finished on both gateways');
    const tc = lab.targets[lab.targets.length - 1];
    await tc.outcome;
    await until(() => tc.socket.destroyed, 2_000, 'target socket fully closed');
    t.equal(tc.ended?.how, 'eof', 'the backend saw a clean EOF of the client direction');
    const ports = [lab.servicePort, lab.dataPort, (lab.target.address() as { port: number }).port];
    await until(() => ports.every(noOpenConnections), 3_000, 'no ESTABLISHED/CLOSE_WAIT socket left');
    t.pass(`kernel socket table clean: ${ports.map((p) => tcpStates(p).join('/')).join(', ')}`);
    t.notOk([...lab.logA.lines, ...lab.logB.lines].some((l) => l.event === 'carrier_reset'), 'no carrier was reset');
  });

  await t.test('BC-29 both directions stream at once, each ends on its own', async (t) => {
    const down = randomBytes(600_000);
    let upGot = 0;
    behaviour = (s) => {
      s.on('data', (c: Buffer) => (upGot += c.length));
      s.write(down.subarray(0, 300_000));
      s.on('end', () => s.end(down.subarray(300_000)));
    };
    const c = await dial(lab.servicePort);
    const out = collect(c);
    const up = randomBytes(700_000);
    c.end(up);
    const r = await out;
    t.equal(r.how, 'eof');
    t.equal(sha256(r.data), sha256(down), 'download intact');
    t.equal(upGot, up.length, 'upload complete before the backend saw EOF');
  });
});
