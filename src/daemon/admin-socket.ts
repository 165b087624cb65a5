/**
 * The local admin socket behind `qkdgw status` (config `admin.socket`, config-sketch.md):
 * a Unix stream socket, mode 0600 from the moment it exists, so only the daemon's user
 * (and root) can read the gateway's state.
 *
 * Protocol: the client sends ONE line of JSON (`{"cmd":"status"}\n`); the daemon answers
 * ONE line of JSON (`{"ok":true,"status":<GatewaySnapshot>}` or `{"ok":false,"error":"..."}`)
 * and closes. A request is at most {@link ADMIN_MAX_REQUEST_BYTES} bytes and must arrive
 * within the request timeout (default {@link ADMIN_REQUEST_TIMEOUT_MS}); a client that
 * sends more, or nothing, is answered with an error or closed. The reply carries plain
 * data only (src/daemon/snapshot.ts): counters, epochs, key_IDs, never key bytes.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { GatewaySnapshot } from './snapshot.js';

/** Where `qkdgw status` looks when neither --socket nor a config's `admin.socket` says. */
export const ADMIN_DEFAULT_SOCKET = '/run/qkdgw/admin.sock';
/** Longest request line, bytes (the only request today is 16 bytes). */
export const ADMIN_MAX_REQUEST_BYTES = 4096;
/** A connection that has not sent a whole request line after this many ms is closed. */
export const ADMIN_REQUEST_TIMEOUT_MS = 5_000;
/** At most this many admin connections at once; more are refused by the kernel backlog / Node. */
export const ADMIN_MAX_CONNECTIONS = 16;
/** Linux `sun_path` holds 108 bytes including the terminating NUL. */
const SUN_PATH_MAX = 107;

/** What the admin socket reads: Gateway implements it. */
export interface AdminSource {
  snapshot(): GatewaySnapshot;
}

export interface AdminSocket {
  /** Absolute path of the socket file. */
  readonly path: string;
  /** Stops accepting, drops open admin connections, unlinks the socket file. Idempotent. */
  close(): Promise<void>;
}

export interface AdminSocketOptions {
  /** Absolute path of the socket file; its directory must exist. */
  path: string;
  source: AdminSource;
  logger: Logger;
  /** Timer source for the per-connection request timeout (tests: ManualClock). Default systemClock. */
  clock?: Clock;
  /** ms a client has to send its request line. Default {@link ADMIN_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number;
  /** ms to wait for an existing socket to answer the liveness probe. Default 1000. */
  probeTimeoutMs?: number;
}

/** A request line, once parsed. */
export interface AdminRequest {
  cmd: string;
}

/** A reply line. */
export type AdminResponse = { ok: true; status: GatewaySnapshot } | { ok: false; error: string };

const fail = (message: string, details: Record<string, unknown>, cause?: unknown): QkdgwError =>
  new QkdgwError(ErrorCodes.ADMIN_SOCKET, message, details, cause === undefined ? undefined : { cause });
/** A refusal that only a configuration change fixes (`configuration: true`: the CLI exits 78, systemd does not restart-loop). */
const refuse = (message: string, details: Record<string, unknown>, cause?: unknown): QkdgwError => fail(message, { ...details, configuration: true }, cause);

/**
 * Binds the admin socket at `o.path` (mode 0600) and serves status requests.
 *
 * An existing file at the path: a socket nobody answers on (ECONNREFUSED, left by a daemon
 * that died) is unlinked and replaced; a socket that answers means another daemon runs and
 * is refused; anything that is not a socket (file, directory, symlink) is refused, never
 * removed. Throws QkdgwError QKDGW_E_ADMIN_SOCKET (path not absolute or too long for
 * sun_path, parent directory missing, path taken, bind failed, mode not 0600 after bind).
 */
export async function startAdminSocket(o: AdminSocketOptions): Promise<AdminSocket> {
  const path = o.path;
  const log = o.logger.child({ component: 'admin' });
  if (!isAbsolute(path)) throw refuse(`admin.socket ${JSON.stringify(path)} is not an absolute path`, { path });
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    throw refuse(`admin.socket ${path} is ${Buffer.byteLength(path)} bytes long; a Unix socket path holds at most ${SUN_PATH_MAX}`, { path });
  }
  checkParent(path);
  await clearStale(path, o.probeTimeoutMs ?? 1_000, o.clock ?? systemClock, log);

  const conns = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => serveConnection(s, o, log, conns));
  server.maxConnections = ADMIN_MAX_CONNECTIONS;
  await bindPrivate(server, path);
  let ino: number;
  try {
    ino = verifyPrivate(path).ino;
  } catch (e) {
    await closeServer(server, conns);
    throw e;
  }
  server.on('error', (e: NodeJS.ErrnoException) => log.error({ event: 'admin_socket_error', path, code: e.code, err: e.message }, 'admin socket error'));
  log.info({ event: 'admin_socket_listening', path }, 'admin socket listening');

  let closing: Promise<void> | null = null;
  return {
    path,
    close(): Promise<void> {
      closing ??= (async () => {
        await closeServer(server, conns);
        // libuv unlinks the path it bound on close; this covers the case where it could not,
        // and never removes a socket someone else bound there since.
        try {
          if (lstatSync(path).ino === ino) unlinkSync(path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ event: 'admin_socket_unlink_failed', path, err: (e as Error).message }, 'could not remove the admin socket');
        }
        log.info({ event: 'admin_socket_closed', path }, 'admin socket closed');
      })();
      return closing;
    },
  };
}

/** The parent directory must exist: it is the daemon's runtime directory, not ours to create. */
function checkParent(path: string): void {
  const dir = dirname(path);
  let st: Stats;
  try {
    st = statSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? 'create it (under systemd: RuntimeDirectory=qkdgw makes /run/qkdgw) or change admin.socket' : String(code);
    throw refuse(`admin.socket ${path}: directory ${dir} does not exist or cannot be read (${hint})`, { path, dir, errno: code }, e);
  }
  if (!st.isDirectory()) throw refuse(`admin.socket ${path}: ${dir} is not a directory`, { path, dir });
}

/**
 * Leaves `path` free to bind, or throws. Only a socket that refuses connections is
 * removed: that is a dead daemon's leftover. lstat, so a symlink is refused, not followed.
 */
async function clearStale(path: string, probeMs: number, clock: Clock, log: Logger): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fail(`admin.socket ${path}: cannot inspect the path (${(e as NodeJS.ErrnoException).code})`, { path }, e);
  }
  if (!st.isSocket()) {
    throw refuse(`admin.socket ${path} exists and is not a socket (${kindOf(st)}); refusing to replace it: remove it or change admin.socket`, { path, kind: kindOf(st) });
  }
  const probe = await probeSocket(path, probeMs, clock);
  if (probe === 'gone') return;
  if (probe === 'refused') {
    try {
      unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fail(`admin.socket ${path}: cannot remove the stale socket (${(e as NodeJS.ErrnoException).code})`, { path }, e);
    }
    log.info({ event: 'admin_socket_stale_removed', path }, 'removed a stale admin socket (nothing listened on it)');
    return;
  }
  if (probe === 'live') throw fail(`admin.socket ${path} is in use: another qkdgw daemon answers on it; stop it or use another admin.socket`, { path });
  throw fail(`admin.socket ${path} exists and could not be probed (${probe}); refusing to replace it`, { path, probe });
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'regular file';
  if (st.isFIFO()) return 'FIFO';
  return 'special file';
}

/** `live`: something accepted a connection; `refused`: stale; `gone`: vanished meanwhile; else the errno or `timeout`. */
function probeSocket(path: string, ms: number, clock: Clock): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (r: string): void => {
      cancel();
      s.destroy();
      resolve(r);
    };
    const cancel = clock.setTimer(ms, () => done('timeout'));
    s.once('connect', () => done('live'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'refused' : e.code === 'ENOENT' ? 'gone' : String(e.code ?? e.message)));
  });
}

/**
 * bind()+listen() under umask 0177, so the kernel creates the socket file 0600: there is
 * no instant at which it is more open. Node binds a path synchronously inside listen()
 * (no cluster worker here), so the umask is restored before any other JS runs; libuv
 * threadpool work that creates files meanwhile can only come out stricter, never looser.
 */
function bindPrivate(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException): void => {
      const why = e.code === 'EADDRINUSE' ? 'the path was taken meanwhile' : e.code === 'EACCES' ? 'permission denied on its directory' : String(e.code ?? e.message);
      reject(fail(`admin.socket ${path}: cannot bind (${why})`, { path, errno: e.code }, e));
    };
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolve();
    });
    const old = process.umask(0o177);
    try {
      server.listen({ path, exclusive: true });
    } finally {
      process.umask(old);
    }
  });
}

/** chmod 0600 (a no-op after bindPrivate) then lstat: a socket, ours, mode exactly 0600. */
function verifyPrivate(path: string): Stats {
  chmodSync(path, 0o600);
  const st = lstatSync(path);
  const uid = process.getuid?.();
  if (!st.isSocket() || (st.mode & 0o777) !== 0o600 || (uid !== undefined && st.uid !== uid)) {
    throw fail(`admin.socket ${path}: after bind it is not a 0600 socket owned by us (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`, { path });
  }
  return st;
}

function closeServer(server: Server, conns: Set<Socket>): Promise<void> {
  for (const s of conns) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** One admin connection: read one line (bounded in size and time), answer one line, close. */
function serveConnection(s: Socket, o: AdminSocketOptions, log: Logger, conns: Set<Socket>): void {
  conns.add(s);
  const clock = o.clock ?? systemClock;
  const max = ADMIN_MAX_REQUEST_BYTES;
  const chunks: Buffer[] = [];
  let length = 0;
  let answered = false;
  const cancel = clock.setTimer(o.requestTimeoutMs ?? ADMIN_REQUEST_TIMEOUT_MS, () => {
    if (answered) return s.destroy();
    log.debug({ event: 'admin_request_timeout' }, 'admin client sent no request in time');
    reply({ ok: false, error: 'timeout: no request line received' });
    // A client that reads nothing must not hold the connection: end it now.
    s.destroy();
  });
  s.on('close', () => {
    cancel();
    conns.delete(s);
  });
  // A client that leaves early (EPIPE, ECONNRESET) is its own business.
  s.on('error', () => undefined);

  const reply = (r: AdminResponse): void => {
    if (answered) return;
    answered = true;
    s.on('finish', () => s.destroy());
    s.end(`${JSON.stringify(r)}\n`);
  };
  const tooLarge = (): void => {
    log.debug({ event: 'admin_request_too_large' }, 'admin request too large');
    reply({ ok: false, error: `request too large (at most ${max} bytes per line)` });
  };
  s.on('data', (c: Buffer) => {
    if (answered) return;
    const nl = c.indexOf(0x0a);
    if (nl === -1) {
      length += c.length;
      if (length > max) return tooLarge();
      chunks.push(c);
      return;
    }
    if (length + nl > max) return tooLarge();
    chunks.push(c.subarray(0, nl));
    reply(answer(Buffer.concat(chunks), o.source, log));
  });
  // A client that shuts its write side without a newline (`printf ... | socat`) still gets an answer.
  s.on('end', () => {
    if (answered) return;
    if (length === 0) return reply({ ok: false, error: 'empty request' });
    reply(answer(Buffer.concat(chunks), o.source, log));
  });
}

/** The reply to one request line. Never throws: a bad request is an error reply. */
export function answer(line: Buffer, source: AdminSource, log: Logger): AdminResponse {
  let req: unknown;
  try {
    req = JSON.parse(line.toString('utf8').replace(/\r$/, ''));
  } catch {
    return { ok: false, error: 'bad request: not JSON (send one line: {"cmd":"status"})' };
  }
  if (typeof req !== 'object' || req === null || Array.isArray(req) || typeof (req as { cmd?: unknown }).cmd !== 'string') {
    return { ok: false, error: 'bad request: expected an object {"cmd":"status"}' };
  }
  const cmd = (req as AdminRequest).cmd;
  log.debug({ event: 'admin_request', cmd: cmd.slice(0, 64) }, 'admin request');
  switch (cmd) {
    case 'status':
      try {
        return { ok: true, status: source.snapshot() };
      } catch (e) {
        log.error({ event: 'admin_status_failed', err: e instanceof Error ? e.message : String(e) }, 'snapshot failed');
        return { ok: false, error: 'internal error: the gateway could not take a snapshot (see its log)' };
      }
    default:
      return { ok: false, error: `unknown cmd ${JSON.stringify(cmd.slice(0, 64))} (known: status)` };
  }
}
