// The admin socket behind `qkdgw status` (issue 5 point 4): mode 0600 from bind, stale
// sockets replaced, live sockets and non-sockets refused, requests bounded in size and time,
// bad requests answered with an error (never a crash), close() unlinks.
import t from 'tap';
import { connect } from 'node:net';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_MAX_REQUEST_BYTES, ADMIN_REQUEST_TIMEOUT_MS, startAdminSocket, type AdminSource } from '../../../src/daemon/admin-socket.js';
import type { GatewaySnapshot } from '../../../src/daemon/snapshot.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger, silentLogger } from '../../../src/util/logger.js';

/** A short directory: t.testdir() paths can exceed the 107 bytes of sun_path. */
function shortDir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'qkdgw-adm-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const SNAP = {
  identity: 'gw-a',
  configFile: '/etc/qkdgw/gw-a.yaml',
  pid: 4242,
  uptimeSec: 12.5,
  backend: 'node',
  kme: { url: 'https://kme-a.example:8443/api/v1', calls: { byOp: {}, byHttpStatus: {} }, pools: [] },
  peers: [],
  notReady: [],
  reloads: { ok: 0, failed: 0, last: null },
} satisfies GatewaySnapshot;
const source: AdminSource = { snapshot: () => SNAP };

interface Reply {
  text: string;
  /** `close` (EOF then close) or the errno of an error after whatever data arrived. */
  how: string;
}

/** Connects, writes `payload` (then shuts the write side when `end`), reads until the server closes. */
function ask(path: string, payload: string | Buffer | null, end = false): Promise<Reply> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const chunks: Buffer[] = [];
    let how = 'close';
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e: NodeJS.ErrnoException) => (how = e.code ?? e.message));
    s.on('close', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), how }));
    s.once('connect', () => {
      if (payload !== null) s.write(payload);
      if (end) s.end();
    });
  });
}

const json = (r: Reply): { ok: boolean; error?: string; status?: unknown } => JSON.parse(r.text.split('\n')[0]);

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return { code: isQkdgwError(e) ? e.code : String(e), message: (e as Error).message };
  }
  return { code: 'started', message: '' };
}

t.test('socket is mode 0600 (lstat), answers one status line, close() unlinks', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const before = process.umask(0o022);
  const adm = await startAdminSocket({ path, source, logger: silentLogger });
  t.equal(process.umask(before), 0o022, 'the process umask is restored after bind');
  const st = lstatSync(path);
  t.ok(st.isSocket(), 'a socket');
  t.equal(st.mode & 0o7777, 0o600, 'mode 0600');
  t.equal(adm.path, path);
  const r = await ask(path, '{"cmd":"status"}\n');
  t.equal(r.text.endsWith('\n'), true, 'one line');
  t.equal(r.text.split('\n').length, 2, 'exactly one line');
  t.same(json(r), { ok: true, status: SNAP });
  t.equal(r.how, 'close', 'closed after the reply');
  await adm.close();
  t.throws(() => lstatSync(path), { code: 'ENOENT' }, 'close() removed the socket file');
  await adm.close(); // idempotent
});

t.test('the socket is 0600 even under a permissive umask', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const before = process.umask(0o000);
  try {
    const adm = await startAdminSocket({ path, source, logger: silentLogger });
    t.teardown(() => adm.close());
    t.equal(lstatSync(path).mode & 0o777, 0o600);
  } finally {
    process.umask(before);
  }
});

t.test('a stale socket (its daemon was killed) is replaced', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  // A real dead daemon: a process that bound the path and died without unlinking it.
  const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  t.equal(r.signal, 'SIGKILL');
  t.ok(lstatSync(path).isSocket(), 'a stale socket file is left behind');
  t.equal((await ask(path, '{"cmd":"status"}\n')).how, 'ECONNREFUSED', 'nobody listens on it');
  const log = new MemoryLogger();
  const adm = await startAdminSocket({ path, source, logger: log });
  t.teardown(() => adm.close());
  t.equal(lstatSync(path).mode & 0o777, 0o600);
  t.ok(log.lines.some((l) => l.event === 'admin_socket_stale_removed'), 'logged admin_socket_stale_removed');
  t.same(json(await ask(path, '{"cmd":"status"}\n')), { ok: true, status: SNAP });
});

t.test('a live socket is refused: another daemon answers on it', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const first = await startAdminSocket({ path, source, logger: silentLogger });
  t.teardown(() => first.close());
  const ino = lstatSync(path).ino;
  const e = await refusal(startAdminSocket({ path, source: { snapshot: () => ({ ...SNAP, identity: 'intruder' }) }, logger: silentLogger }));
  t.equal(e.code, ErrorCodes.ADMIN_SOCKET);
  t.match(e.message, /in use: another qkdgw daemon answers/);
  t.equal(lstatSync(path).ino, ino, 'the live socket was not replaced');
  t.same(json(await ask(path, '{"cmd":"status"}\n')), { ok: true, status: SNAP }, 'the first daemon still answers');
});

t.test('a path that is not a socket is refused and left untouched', async (t) => {
  const dir = shortDir(t);
  const file = join(dir, 'file');
  writeFileSync(file, 'precious\n');
  let e = await refusal(startAdminSocket({ path: file, source, logger: silentLogger }));
  t.equal(e.code, ErrorCodes.ADMIN_SOCKET);
  t.match(e.message, /exists and is not a socket \(regular file\)/);
  t.equal(readFileSync(file, 'utf8'), 'precious\n', 'file kept');

  const sub = join(dir, 'sub');
  mkdirSync(sub);
  e = await refusal(startAdminSocket({ path: sub, source, logger: silentLogger }));
  t.match(e.message, /not a socket \(directory\)/);

  // A symlink is refused even when it points at a stale socket: lstat, never follow.
  const stale = join(dir, 'stale.sock');
  spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  const link = join(dir, 'link.sock');
  symlinkSync(stale, link);
  e = await refusal(startAdminSocket({ path: link, source, logger: silentLogger }));
  t.match(e.message, /not a socket \(symbolic link\)/);
  t.ok(lstatSync(link).isSymbolicLink(), 'symlink kept');
  t.ok(lstatSync(stale).isSocket(), 'its target kept');
});

t.test('missing parent directory, relative path, path too long: clear errors', async (t) => {
  const dir = shortDir(t);
  let e = await refusal(startAdminSocket({ path: join(dir, 'no-such-dir', 'admin.sock'), source, logger: silentLogger }));
  t.equal(e.code, ErrorCodes.ADMIN_SOCKET);
  t.match(e.message, /directory .*no-such-dir does not exist/);
  t.throws(() => lstatSync(join(dir, 'no-such-dir')), { code: 'ENOENT' }, 'the directory was not created');
  e = await refusal(startAdminSocket({ path: 'run/admin.sock', source, logger: silentLogger }));
  t.match(e.message, /not an absolute path/);
  e = await refusal(startAdminSocket({ path: join(dir, 'x'.repeat(120)), source, logger: silentLogger }));
  t.match(e.message, /at most 107/);
});

t.test('requests: bad JSON, not an object, unknown cmd, failing snapshot -> error replies; the server lives on', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  let broken = false;
  const log = new MemoryLogger();
  const adm = await startAdminSocket({
    path,
    source: {
      snapshot: () => {
        if (broken) throw new Error('boom');
        return SNAP;
      },
    },
    logger: log,
  });
  t.teardown(() => adm.close());
  const cases: Array<[string, RegExp]> = [
    ['hello\n', /^bad request: not JSON/],
    ['{"cmd":\n', /^bad request: not JSON/],
    ['[1,2]\n', /^bad request: expected an object/],
    ['{"cmd":7}\n', /^bad request: expected an object/],
    ['null\n', /^bad request: expected an object/],
    ['{"cmd":"reboot"}\n', /^unknown cmd "reboot" \(known: status\)$/],
    ['\n', /^bad request: not JSON/],
  ];
  for (const [req, re] of cases) {
    const r = json(await ask(path, req));
    t.equal(r.ok, false, `${JSON.stringify(req)}: ok false`);
    t.match(r.error, re, `${JSON.stringify(req)}: ${r.error}`);
  }
  broken = true;
  const r = json(await ask(path, '{"cmd":"status"}\n'));
  t.equal(r.ok, false);
  t.match(r.error, /internal error/);
  t.notMatch(r.error, /boom/, 'internals stay in the log');
  t.ok(log.lines.some((l) => l.event === 'admin_status_failed' && l.err === 'boom'));
  broken = false;
  t.same(json(await ask(path, '{"cmd":"status"}\r\n')), { ok: true, status: SNAP }, 'CRLF accepted; still serving');
  t.same(json(await ask(path, '{"cmd":"status"}', true)), { ok: true, status: SNAP }, 'no newline but write side shut: answered');
  t.same(json(await ask(path, '', true)), { ok: false, error: 'empty request' });
});

t.test('an oversized request is answered with an error and closed', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const adm = await startAdminSocket({ path, source, logger: silentLogger });
  t.teardown(() => adm.close());
  for (const [what, payload] of [
    ['no newline', Buffer.alloc(ADMIN_MAX_REQUEST_BYTES + 1000, 0x61)],
    ['newline after the limit', Buffer.concat([Buffer.alloc(ADMIN_MAX_REQUEST_BYTES + 1, 0x20), Buffer.from('{"cmd":"status"}\n')])],
    ['1 MiB', Buffer.alloc(2 ** 20, 0x61)],
  ] as const) {
    const r = await ask(path, payload);
    t.match(json(r), { ok: false, error: `request too large (at most ${ADMIN_MAX_REQUEST_BYTES} bytes per line)` }, `${what}: error reply`);
    t.ok(['close', 'ECONNRESET', 'EPIPE'].includes(r.how), `${what}: closed (${r.how})`);
  }
  // Exactly at the limit is fine: a 4096-byte line (extra fields are ignored).
  const line = `{"cmd":"status","pad":"${'x'.repeat(ADMIN_MAX_REQUEST_BYTES - 25)}"}`;
  t.equal(Buffer.byteLength(line), ADMIN_MAX_REQUEST_BYTES);
  t.same(json(await ask(path, `${line}\n`)), { ok: true, status: SNAP }, 'a 4096-byte line is served');
});

t.test('a client that sends nothing is closed after the request timeout (ManualClock)', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const clock = new ManualClock();
  const adm = await startAdminSocket({ path, source, logger: silentLogger, clock });
  t.teardown(() => adm.close());
  const s = connect({ path });
  const chunks: Buffer[] = [];
  let closed = false;
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => undefined);
  const done = new Promise<void>((r) => s.on('close', () => ((closed = true), r())));
  // The server arms one timer per accepted connection.
  while (clock.pending === 0) await new Promise((r) => setImmediate(r));
  clock.advance(ADMIN_REQUEST_TIMEOUT_MS - 1);
  await new Promise((r) => setImmediate(r));
  t.equal(closed, false, 'still open 1 ms before the timeout');
  t.equal(clock.pending, 1);
  clock.advance(1);
  await done;
  t.same(JSON.parse(Buffer.concat(chunks).toString('utf8')), { ok: false, error: 'timeout: no request line received' });
  t.equal(clock.pending, 0, 'timer gone with the connection');
  t.same(json(await ask(path, '{"cmd":"status"}\n')), { ok: true, status: SNAP }, 'still serving');
  t.equal(clock.pending, 0, 'an answered connection cancels its timer');
});

t.test('close() drops connections in progress and refuses new ones', async (t) => {
  const path = join(shortDir(t), 'admin.sock');
  const clock = new ManualClock();
  const adm = await startAdminSocket({ path, source, logger: silentLogger, clock });
  const s = connect({ path });
  s.on('error', () => undefined);
  const closed = new Promise((r) => s.on('close', r));
  while (clock.pending === 0) await new Promise((r) => setImmediate(r));
  await adm.close();
  await closed;
  t.pass('the idle connection was closed by close()');
  const r = await ask(path, '{"cmd":"status"}\n');
  t.equal(r.how, 'ENOENT', 'nothing at the path any more');
});
