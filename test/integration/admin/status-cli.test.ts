// `qkdgw status` end to end (issue 5 point 4): the real CLI binary, as a child process,
// reads a real gateway's state over its 0600 admin socket after the lab's first epoch.
// Needs dist/ (npm run build); the admin socket runs in this process, so children are
// spawned asynchronously (a spawnSync would block the very event loop that must answer).
import t from 'tap';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLab } from '../../helpers/lab.js';
import { QKDGW_BIN } from '../../../src/cli/demo/children.js';
import { startAdminSocket } from '../../../src/daemon/admin-socket.js';
import { statusCommand } from '../../../src/cli/status.js';
import { silentLogger } from '../../../src/util/logger.js';
import type { GatewaySnapshot } from '../../../src/daemon/snapshot.js';

const DIST_STATUS = fileURLToPath(new URL('../../../dist/cli/status.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs bin/qkdgw.js asynchronously; never rejects on a non-zero exit. */
function qkdgw(args: string[], o: { uid?: number; gid?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [QKDGW_BIN, ...args], { encoding: 'utf8', timeout: 30_000, ...o }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The same command in this process (quicker than a child); output captured. */
async function inProcess(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await statusCommand(args, { out: { write: (x: string) => (stdout += x) }, err: { write: (x: string) => (stderr += x) } });
  return { code, stdout, stderr };
}

/** A short directory: sun_path holds 107 bytes, t.testdir() paths can be longer. */
function shortDir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'qkdgw-st-'));
  t.teardown(() => {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

t.test('qkdgw status reads the running gateway: --json and the table, gw-b up in qkd mode', async (t) => {
  if (!t.ok(existsSync(DIST_STATUS), 'dist/ is built with the status command (npm run build)')) return;
  const lab = await startLab(t);
  await lab.ready();
  const dir = shortDir(t);
  const path = join(dir, 'admin.sock');
  const adm = await startAdminSocket({ path, source: lab.a, logger: lab.logA });
  t.teardown(() => adm.close());

  const j = await qkdgw(['status', '--socket', path, '--json']);
  t.equal(j.code, 0, 'exit 0');
  t.equal(j.stderr, '');
  t.match(j.stdout, /^\{.*\}\n$/s, 'one JSON object and a newline');
  t.equal(j.stdout.indexOf('\n'), j.stdout.length - 1, 'on one line');
  const st = JSON.parse(j.stdout) as GatewaySnapshot;
  t.equal(st.identity, 'gw-a');
  t.equal(st.pid, process.pid, 'the lab gateway runs in this process');
  t.equal(st.configFile, lab.files.gwA);
  const b = st.peers.find((p) => p.peer === 'gw-b');
  t.ok(b, 'peer gw-b listed');
  t.equal(b?.state, 'up');
  t.equal(b?.mode, 'qkd');
  t.equal(b?.role, 'initiator');
  t.ok((b?.epoch ?? 0) >= 1, `epoch ${b?.epoch} >= 1`);
  t.ok((b?.keyIds.length ?? 0) >= 1, 'key_IDs of the epoch listed');
  t.same(st.notReady, []);
  t.ok(st.kme.pools.some((p) => p.peerSaeId === 'gw-b'), 'gw-b key pool listed');
  t.notMatch(j.stdout, /"(key|keyBytes|secret)"\s*:/, 'no key material fields');

  const h = await qkdgw(['status', '--socket', path]);
  t.equal(h.code, 0, 'table: exit 0');
  t.equal(h.stderr, '');
  t.comment(`qkdgw status (gw-a):\n${h.stdout}`);
  const lines = h.stdout.split('\n');
  t.match(lines[0], /^gateway {2}gw-a \(pid \d+\)$/);
  t.match(h.stdout, /^uptime +[\d.]+ (s|min)$/m);
  t.match(h.stdout, new RegExp(`^config +${lab.files.gwA.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
  t.match(h.stdout, /^PEER +ROLE +STATE +MODE +EPOCH +EPOCH AGE +SUITE +FLOWS +SEALED +OPENED +REKEYS +HS FAILED +AUTH FAILED +REPLAY DROPS$/m);
  const row = /^gw-b +initiator +up +qkd +(\d+) +[\d.]+ s +(AES-256-GCM|XChaCha20-Poly1305) +\d+ +\d+ rec \/ [\d.]+ [KMG]?i?B +\d+ rec \/ [\d.]+ [KMG]?i?B +\d+ +\d+ +\d+ +\d+$/m.exec(h.stdout);
  t.ok(row, 'gw-b row: up, qkd, epoch, age in s, suite, flows, sealed/opened with units');
  t.ok(Number(row?.[1]) >= 1, 'epoch >= 1 in the table');
  t.match(h.stdout, /^KEY POOL +STOCK\/TARGET +KME STORED +CONSUMPTION +POOL DRY IN +KME DRY IN +FORECAST LOW +LAST ERROR$/m);
  t.match(h.stdout, /^gw-b +\d+\/\d+ +(\d+|\?) +[\d.]+\/s +/m, 'gw-b pool row');
  t.equal(lines.at(-2), 'ready: yes');
  t.equal(lines.at(-1), '', 'ends with a newline');

  // The exit gateway: a responder, no key pool of its own.
  const pathB = join(dir, 'b.sock');
  const admB = await startAdminSocket({ path: pathB, source: lab.b, logger: lab.logB });
  t.teardown(() => admB.close());
  const hb = await qkdgw(['status', '--socket', pathB]);
  t.equal(hb.code, 0);
  t.match(hb.stdout, /^gw-a +responder +up +qkd +\d+ /m);
  t.match(hb.stdout, /^key pools: none/m);

  // The socket found through the config file's admin.socket.
  const cfg = join(dirname(lab.files.gwA), 'gw-a-admin.yaml');
  writeFileSync(cfg, `${readFileSync(lab.files.gwA, 'utf8')}admin:\n  socket: ${path}\n`, { mode: 0o600 });
  const c = await qkdgw(['status', '--config', cfg, '--json']);
  t.equal(c.code, 0, '--config FILE: exit 0');
  t.equal((JSON.parse(c.stdout) as GatewaySnapshot).identity, 'gw-a');
});

t.test('exit statuses: 69 no daemon, 77 permission denied, 64 usage, 78 bad config', async (t) => {
  if (!t.ok(existsSync(DIST_STATUS), 'dist/ is built with the status command (npm run build)')) return;
  const dir = shortDir(t);

  const missing = join(dir, 'none.sock');
  let r = await qkdgw(['status', '--socket', missing]);
  t.equal(r.code, 69, 'no socket: 69 (EX_UNAVAILABLE)');
  t.match(r.stderr, `no admin socket at ${missing}`);
  t.match(r.stderr, /daemon may not be running.*admin\.socket/);
  t.equal(r.stdout, '');

  const stale = join(dir, 'stale.sock');
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  r = await inProcess(['--socket', stale, '--json']);
  t.equal(r.code, 69, 'stale socket (refused): 69');
  t.match(r.stderr, `${stale}: nothing listens on it (connection refused`);

  const file = join(dir, 'file');
  writeFileSync(file, 'x');
  r = await inProcess(['--socket', file]);
  t.equal(r.code, 69, 'a regular file: 69');
  t.match(r.stderr, `${file}: it is not a socket`, 'and it says so (not "a stale socket?")');

  // The socket's own mode must keep other users out: a 0600 socket in a world-searchable directory.
  const live = join(dir, 'live.sock');
  const snap: GatewaySnapshot = { identity: 'gw-x', configFile: '/x', pid: 1, uptimeSec: 1, backend: null, kme: { url: 'https://k/api/v1', calls: { byOp: {}, byHttpStatus: {} }, pools: [] }, peers: [], notReady: [], reloads: { ok: 0, failed: 0, last: null } };
  const adm = await startAdminSocket({ path: live, source: { snapshot: () => snap }, logger: silentLogger });
  t.teardown(() => adm.close());
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o755);
    r = await qkdgw(['status', '--socket', live], { uid: 65534, gid: 65534 });
    t.equal(r.code, 77, 'another user (nobody) on a 0600 socket: 77 (EX_NOPERM)');
    t.match(r.stderr, `permission denied on ${live}`);
    const owner = await inProcess(['--socket', live, '--json']);
    t.equal(owner.code, 0, 'the owner reads it');
    t.equal(owner.stdout, `${JSON.stringify(snap)}\n`, '--json prints the snapshot exactly');
  } else {
    chmodSync(dir, 0o000);
    r = await inProcess(['--socket', live]);
    chmodSync(dir, 0o700);
    t.equal(r.code, 77, 'directory not searchable: 77 (EX_NOPERM)');
  }

  for (const args of [['--socket', live, '--config', file], ['extra'], ['--socket', '']]) {
    r = await inProcess(args);
    t.equal(r.code, 64, `${args.join(' ')}: 64 (usage)`);
    t.match(r.stderr, 'usage: qkdgw status');
  }
  r = await qkdgw(['status', '--bogus']);
  t.equal(r.code, 64, 'unknown option through the real binary: 64');

  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'identity: gw-a\nkme:\n  timeout: 5 parsecs\n');
  r = await inProcess(['--config', bad]);
  t.equal(r.code, 78, 'a broken config: 78');
  t.match(r.stderr, /bad\.yaml:\d+:\d+: /);

  // A config without admin.socket: the default path is tried, and the message says so.
  const noAdmin = join(dir, 'no-admin.yaml');
  const example = fileURLToPath(new URL('../../../config/gateway.example.yaml', import.meta.url));
  writeFileSync(noAdmin, readFileSync(example, 'utf8').replace(/^admin:\n {2}socket: .*\n/m, ''));
  r = await inProcess(['--config', noAdmin]);
  if (existsSync('/run/qkdgw/admin.sock')) t.comment('a daemon socket exists at the default path on this machine: not checked');
  else {
    t.equal(r.code, 69, 'a config without admin.socket, no daemon: 69');
    t.match(r.stderr, `${noAdmin} sets no admin.socket; tried the default /run/qkdgw/admin.sock`);
    t.match(r.stderr, 'no admin socket at /run/qkdgw/admin.sock');
  }
});
