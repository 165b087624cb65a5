// BC-07 / BC-35 (c) through the real process: SIGHUP with a broken file keeps the old state
// and the daemon running; SIGHUP with a good file applies it.
import t from 'tap';
import { createServer, connect } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initPki } from '../../src/pki/index.js';
import { startLabProcesses } from '../../src/cli/demo/lab-processes.js';
import { KEY_LEDGER_ENV, readKeyLedgerDir } from '../../src/kms/simulator/key-ledger.js';
import { childLogText, describeLeaks, findKeyLeaks } from '../helpers/key-leak.js';

t.test('SIGHUP: broken file rejected, daemon keeps serving; good file applied', async (t) => {
  const dir = t.testdir();
  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  // Issue 5 point 6: the simulator records every key it issues (test-only ledger).
  mkdirSync(join(dir, 'key-ledger'));
  process.env[KEY_LEDGER_ENV] = join(dir, 'key-ledger');
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
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
  // Reloads log configuration errors and sections: none may carry a key.
  const keys = readKeyLedgerDir(join(dir, 'key-ledger'));
  t.ok(keys.length >= 1, `issue5-6: the ledger holds ${keys.length} keys`);
  const hits = findKeyLeaks(keys, { ...childLogText(lab.sim), ...childLogText(lab.gwA), ...childLogText(lab.gwB) });
  t.same(hits, [], `issue5-6: none of them in any output of the three processes${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
});
