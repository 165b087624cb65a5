// E2E: the real CLI as separate processes (kme-sim + two `qkdgw run`), data through the tunnel.
import t from 'tap';
import { createServer, connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initPki } from '../../src/pki/index.js';
import { startLabProcesses } from '../../src/cli/demo/lab-processes.js';
import { KEY_LEDGER_ENV, readKeyLedgerDir } from '../../src/kms/simulator/key-ledger.js';
import { childLogText, describeLeaks, findKeyLeaks } from '../helpers/key-leak.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('kme-sim + gw-b + gw-a as processes: echo 4 MiB across rekeys, clean SIGTERM', async (t) => {
  const dir = t.testdir();
  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  // Issue 5 point 6: the simulator records every key it issues (test-only ledger).
  mkdirSync(join(dir, 'key-ledger'));
  process.env[KEY_LEDGER_ENV] = join(dir, 'key-ledger');
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
  const lab = await startLabProcesses({ dir, pki, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '2s', rekeyJitter: '0s', hardLimitTime: '30s' });
  t.teardown(() => lab.stop());
  const { sim, gwA: a, gwB: b, servicePort: service } = lab;
  await a.waitFor((l) => l.event === 'epoch_switch', 20_000, 'first epoch');

  const payload = randomBytes(4 * 2 ** 20);
  const s = connect({ host: '127.0.0.1', port: service, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve());
    s.once('error', reject);
  });
  // Write slowly enough to span a rekey (2 s interval).
  for (let off = 0; off < payload.length; off += 256 * 1024) {
    s.write(payload.subarray(off, off + 256 * 1024));
    await new Promise((r) => setTimeout(r, 200));
  }
  s.end();
  await ended;
  t.equal(sha(Buffer.concat(chunks)), sha(payload), 'all bytes echoed intact');
  const epochs = a.events('epoch_switch').map((l) => l.epoch);
  t.ok(epochs.length >= 2, `rekeyed while streaming (epochs ${epochs.join(',')})`);
  const delivered = new Set(sim.events('kme_delivery').flatMap((l) => (l.key_IDs as string[]) ?? []));
  for (const l of a.events('epoch_switch')) t.ok(delivered.has((l.key_IDs as string[])[0]), `epoch ${l.epoch} key_ID issued by the simulator`);

  await a.stop();
  await b.stop();
  await sim.stop();
  t.equal(a.exited?.code, 0, 'gw-a exits 0 on SIGTERM');
  t.equal(b.exited?.code, 0, 'gw-b exits 0 on SIGTERM');
  t.equal(sim.exited?.code, 0, 'kme-sim exits 0 on SIGTERM');
  const keys = readKeyLedgerDir(join(dir, 'key-ledger'));
  t.ok(keys.length >= epochs.length, `issue5-6: the ledger holds ${keys.length} keys`);
  const hits = findKeyLeaks(keys, { ...childLogText(sim), ...childLogText(a), ...childLogText(b) });
  t.same(hits, [], `issue5-6: none of them in any output of the three processes${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
});
