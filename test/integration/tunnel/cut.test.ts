// protocol.md s5.1 Closing: only a received FIN maps to end(); a carrier that ends any
// other way (bare TCP close, TCP reset) and a client that resets make the far local
// endpoint see a reset, never a clean EOF.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startLab, until, dial, collect } from '../../helpers/lab.js';

t.test('carrier cut mid-upload; client reset mid-upload', async (t) => {
  // The target only reads: an upload, no echo.
  const lab = await startLab(t, { proxy: true, onTarget: () => undefined });
  await lab.ready();

  for (const how of ['fin', 'rst'] as const) {
    const i = lab.targets.length;
    const s = await dial(lab.servicePort);
    const client = collect(s);
    s.write(randomBytes(100_000));
    await until(() => lab.targets.length === i + 1 && lab.targets[i].bytes === 100_000, 5_000, 'first part uploaded');
    s.write(randomBytes(100_000)); // still uploading when the carrier is cut
    lab.proxy!.conns[i].cut(how);
    const tr = await lab.targets[i].outcome;
    t.equal(tr.how, 'reset', `carrier cut by a bare TCP ${how === 'fin' ? 'close' : 'reset'}: target sees ECONNRESET, not EOF`);
    t.equal(tr.code, 'ECONNRESET');
    const c = await client;
    t.equal(c.how, 'reset', `carrier cut by ${how}: client sees a reset, not EOF`);
  }

  {
    const i = lab.targets.length;
    const s = await dial(lab.servicePort);
    s.on('error', () => undefined);
    s.write(randomBytes(100_000));
    await until(() => lab.targets.length === i + 1 && lab.targets[i].bytes === 100_000, 5_000, 'first part uploaded');
    s.write(randomBytes(500_000)); // queued at gw-a when the reset arrives
    s.resetAndDestroy();
    const tr = await lab.targets[i].outcome;
    t.equal(tr.how, 'reset', 'client reset mid-upload: target sees ECONNRESET, not EOF');
    await until(() => lab.logA.lines.some((l) => l.event === 'carrier_local_error' && l.reason === 'client_reset'), 2_000, 'gw-a logged client_reset');
    await until(() => lab.logB.lines.some((l) => l.event === 'carrier_reset' && l.reason === 'peer sent RST client_reset'), 2_000, 'gw-b got RST client_reset');
    t.pass('gw-a sent RST client_reset and gw-b acted on it');
  }
  t.equal(lab.rtA().carrierCount, 0, 'gw-a holds no carrier afterwards');
  await until(() => lab.rtB().carrierCount === 0, 2_000, 'gw-b holds no carrier');
});
