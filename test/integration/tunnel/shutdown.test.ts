// A gateway that stops resets its open carriers with RST shutdown (protocol.md s5.1) and
// does not wait for clients to hang up: listeners stop at once, local sockets are reset.
import t from 'tap';
import { startLab, dial, collect, until } from '../../helpers/lab.js';

t.test('stopping the entry gateway with open flows: prompt, RST shutdown, both ends reset', async (t) => {
  // The target reads and never answers nor closes.
  const lab = await startLab(t, { onTarget: () => undefined });
  await lab.ready();
  const flows = [];
  for (let i = 0; i < 3; i++) {
    const s = await dial(lab.servicePort);
    const out = collect(s);
    s.write('open and idle');
    await until(() => lab.targets.length === i + 1 && lab.targets[i].bytes === 13, 5_000, `flow ${i} open`);
    flows.push(out);
  }
  // One client has half-closed and waits for an answer that never comes.
  const half = await dial(lab.servicePort);
  const halfOut = collect(half);
  half.end('question');
  await until(() => lab.targets.length === 4 && lab.targets[3].ended?.how === 'eof', 5_000, 'half-closed flow reached the target');

  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([lab.a.stop().then(() => true), new Promise<false>((r) => (timer = setTimeout(() => r(false), 5_000)))]);
  clearTimeout(timer);
  t.ok(stopped, 'gw-a.stop() resolved without waiting for its clients to hang up');
  t.ok(Date.now() - started < 1_000, `gw-a stopped in ${Date.now() - started} ms`);
  for (const [i, f] of [...flows, halfOut].entries()) t.equal((await f).how, 'reset', `client ${i} sees a reset, not EOF`);
  for (const [i, tc] of lab.targets.slice(0, 3).entries()) t.equal((await tc.outcome).how, 'reset', `target ${i} sees a reset`);
  await until(() => lab.logB.lines.filter((l) => l.event === 'carrier_reset' && l.reason === 'peer sent RST shutdown').length === 4, 2_000, 'gw-b got RST shutdown x4');
  t.pass('gw-b received RST shutdown on every carrier');
  await until(() => lab.rtB().carrierCount === 0, 2_000, 'gw-b holds no carrier');
});
