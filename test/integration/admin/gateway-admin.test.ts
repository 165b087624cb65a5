// The gateway serves `qkdgw status` on admin.socket from start to stop, and a reload that
// moves the socket opens the new one before closing the old (issue 5 point 4).
import t from 'tap';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab } from '../../helpers/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { requestStatus } from '../../../src/cli/status.js';
import { Gateway } from '../../../src/daemon/gateway.js';
import { MemoryLogger } from '../../../src/util/logger.js';

t.test('admin.socket: served while the gateway runs, moved by a reload, removed at stop', async (t) => {
  // sun_path holds 107 bytes: t.testdir() paths can be longer.
  const dir = mkdtempSync(join(tmpdir(), 'qkdgw-adm-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = join(dir, 'a.sock');
  const second = join(dir, 'b.sock');
  const lab = await startLab(t, { editA: (y) => `${y}admin:\n  socket: ${first}\n` });
  await lab.ready();
  t.equal(lstatSync(first).mode & 0o777, 0o600, 'mode 0600');
  const s1 = await requestStatus(first);
  t.equal(s1.identity, 'gw-a');
  t.equal(s1.peers[0].peer, 'gw-b');
  t.equal(s1.peers[0].state, 'up');
  t.ok(lab.logA.lines.some((l) => l.event === 'admin_listening' && l.socket === first), 'admin_listening logged');

  writeFileSync(lab.files.gwA, readFileSync(lab.files.gwA, 'utf8').replace(first, second));
  await lab.a.reload(loadGatewayConfig(lab.files.gwA));
  t.equal((await requestStatus(second)).identity, 'gw-a', 'the new socket answers');
  t.notOk(existsSync(first), 'the old socket is gone');

  await lab.a.stop();
  t.notOk(existsSync(second), 'stop removes the socket');
});

t.test('under systemd (RUNTIME_DIRECTORY) the socket defaults to $RUNTIME_DIRECTORY/admin.sock', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qkdgw-rd-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lab = await startLab(t);
  t.equal(lab.a.adminSocketPath(), null, 'no admin.socket and no RUNTIME_DIRECTORY: no socket');
  await lab.a.stop();
  const gw = await Gateway.start(loadGatewayConfig(lab.files.gwA), { logger: new MemoryLogger(), env: { ...process.env, RUNTIME_DIRECTORY: `${dir}:/elsewhere` } });
  t.teardown(() => gw.stop());
  const path = join(dir, 'admin.sock');
  t.equal(gw.adminSocketPath(), path, 'the first RUNTIME_DIRECTORY entry');
  t.equal((await requestStatus(path)).identity, 'gw-a', 'and it answers');
});
