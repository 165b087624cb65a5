// BC-07 / BC-35 (c) through the real process: SIGHUP with a broken file keeps the old state
// and the daemon running; SIGHUP with a good file applies it.
import t from 'tap';
import { createServer, connect } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initPki } from '../../src/pki/index.js';
import { startLabProcesses } from '../../src/cli/demo/lab-processes.js';

t.test('SIGHUP: broken file rejected, daemon keeps serving; good file applied', async (t) => {
  const dir = t.testdir();
  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  const lab = await startLabProcesses({ dir, pki, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '60s', rekeyJitter: '0s', hardLimitTime: '120s' });
  t.teardown(() => lab.stop());
  await lab.gwA.waitFor((l) => l.event === 'epoch_switch', 20_000, 'first epoch');
  const good = readFileSync(lab.files.gwA, 'utf8');

  writeFileSync(lab.files.gwA, ''); // truncated mid-write
  lab.gwA.proc.kill('SIGHUP');
  const failed = await lab.gwA.waitFor((l) => l.event === 'reload_failed', 10_000, 'reload_failed');
  t.match(String(failed.err), /empty/, 'the log says why');
  t.equal(lab.gwA.exited, null, 'still running');

  const echo = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString()));
    s.once('end', () => resolve(got));
    s.once('error', reject);
    s.end('still here');
  });
  t.equal(echo, 'still here', 'the tunnel still carries data under the old state');

  writeFileSync(lab.files.gwA, good.replace(/^(kme:\n)/m, '$1  timeout: 3s\n'));
  lab.gwA.proc.kill('SIGHUP');
  const applied = await lab.gwA.waitFor((l) => l.event === 'reload_applied', 10_000, 'reload_applied');
  t.same(applied.sections, ['kme']);
});
