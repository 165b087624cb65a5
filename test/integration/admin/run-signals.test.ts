// Signals during start-up (breaker finding): a stop request always wins, and a SIGHUP that
// arrives while the gateway starts is applied once it runs (not dropped, not blocking a stop).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPki } from '../../../src/pki/index.js';
import { writeGwAConfig } from '../../../src/daemon/lab.js';
import { runCommand } from '../../../src/cli/run.js';
import { requestStatus } from '../../../src/cli/status.js';

async function config(t: { teardown(fn: () => unknown): void }): Promise<{ file: string; sock: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'qkdgw-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pki = await initPki({ outDir: join(dir, 'pki'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  // Nothing answers at port 1: the gateway starts (listeners up) and retries its peer and KME.
  const file = writeGwAConfig({ dir, pki, target: { host: '127.0.0.1', port: 1 } }, { kmeAUrl: 'https://127.0.0.1:1/api/v1', kmeBUrl: '', controlB: 1, dataB: 1 });
  const sock = join(dir, 'a.sock');
  // log level fatal: runCommand logs to fd 1, which is this test's TAP stream.
  writeFileSync(file, `${readFileSync(file, 'utf8').replace(/level: info/, 'level: fatal')}admin:\n  socket: ${sock}\n`, { mode: 0o600 });
  return { file, sock };
}

t.test('SIGHUP then SIGTERM during start-up: the gateway stops (exit 0) instead of running on', async (t) => {
  const { file } = await config(t);
  const run = runCommand(['--config', file]); // synchronous up to the first await inside Gateway.start
  process.emit('SIGHUP');
  process.emit('SIGTERM');
  const code = await Promise.race([run, new Promise((r) => setTimeout(() => r('still running after 10 s'), 10_000).unref())]);
  t.equal(code, 0, 'stopped, exit 0');
});

t.test('a SIGHUP during start-up is applied once the gateway runs', async (t) => {
  const { file, sock } = await config(t);
  const run = runCommand(['--config', file]);
  process.emit('SIGHUP');
  let reloads = -1;
  for (let i = 0; i < 100 && reloads < 1; i++) {
    await new Promise((r) => setTimeout(r, 100));
    reloads = await requestStatus(sock).then((s) => s.reloads.ok, () => -1);
  }
  t.equal(reloads, 1, 'the queued reload was applied (qkdgw status: 1 reload ok)');
  process.emit('SIGTERM');
  t.equal(await run, 0, 'then a SIGTERM stops it');
});

t.test('an admin.socket in a missing folder is a configuration refusal: exit 78 (no systemd restart loop)', async (t) => {
  const { file, sock } = await config(t);
  writeFileSync(file, readFileSync(file, 'utf8').replace(sock, '/nonexistent-qkdgw-dir/a.sock'), { mode: 0o600 });
  t.equal(await runCommand(['--config', file]), 78);
});
