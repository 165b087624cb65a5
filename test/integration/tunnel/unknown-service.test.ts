// protocol.md s5.1 Sequence: the exit gateway maps the service name from its own
// configuration only; a name it does not export gets RST unknown_service, and the client
// connection is reset (never a clean EOF). A target that refuses gets RST target_unreachable.
import t from 'tap';
import { startLab, dial, collect, until } from '../../helpers/lab.js';
import { freePorts } from '../../../src/daemon/lab.js';

t.test('unknown service and unreachable target: client reset, gw-b counts it and seals the RST', async (t) => {
  const [closed] = await freePorts(1);
  const lab = await startLab(t, {
    // gw-a offers `nope` and `dead` towards gw-b; gw-b exports `web` and `dead` (nothing listens there).
    editA: (y) =>
      y.replace('services:\n', 'services:\n  - name: nope\n    listen: 127.0.0.1:0\n    peer: gw-b\n  - name: dead\n    listen: 127.0.0.1:0\n    peer: gw-b\n'),
    editB: (y) => y.replace('exports:\n', `exports:\n  - name: dead\n    target: 127.0.0.1:${closed}\n    peers: [gw-a]\n`),
  });
  await lab.ready();
  const port = lab.a.addresses.services.nope;
  t.ok(port > 0, 'gw-a listens for nope');

  for (const payload of ['', 'GET / HTTP/1.0\r\n\r\n']) {
    const s = await dial(port);
    const out = collect(s);
    if (payload) s.write(payload);
    const r = await out;
    t.equal(r.how, 'reset', `client (${payload ? 'with' : 'without'} data) sees a reset, not EOF`);
    t.equal(r.bytes, 0, 'client got nothing');
  }
  t.equal(lab.targets.length, 0, 'the target was never contacted');
  const refused = lab.logB.lines.filter((l) => l.event === 'carrier_refused' && l.reason === 'unknown_service');
  t.equal(refused.length, 2, 'gw-b counted (logged) both refusals');
  t.same(refused.map((l) => l.service), ['nope', 'nope'], 'with the service name');
  await until(() => lab.logA.lines.filter((l) => l.event === 'carrier_reset' && l.reason === 'peer sent RST unknown_service').length === 2, 2_000, 'gw-a got RST unknown_service');
  t.pass('gw-a received a sealed RST unknown_service both times');
  t.equal(lab.rtB().stats.replays, 0);

  // A target that refuses the connection: RST target_unreachable, client reset.
  const dead = await dial(lab.a.addresses.services.dead);
  const deadOut = collect(dead);
  dead.write('hello');
  const dr = await deadOut;
  t.equal(dr.how, 'reset', 'unreachable target: client sees a reset, not EOF');
  await until(() => lab.logA.lines.some((l) => l.event === 'carrier_reset' && l.reason === 'peer sent RST target_unreachable'), 2_000, 'gw-a got RST target_unreachable');
  t.pass('gw-a received a sealed RST target_unreachable');

  // The known service still works afterwards.
  const s = await dial(lab.servicePort);
  const out = collect(s);
  s.end('ping');
  const r = await out;
  t.equal(r.data.toString(), 'ping', 'web still echoes');
});
