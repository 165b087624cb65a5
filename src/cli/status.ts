/**
 * `qkdgw status [--socket PATH | --config FILE] [--json]`: asks a running daemon for its
 * state over the local admin socket (src/daemon/admin-socket.ts) and prints it as tables
 * (src/cli/status-table.ts) or, with --json, as the daemon's snapshot object.
 *
 * The socket: --socket PATH, else `admin.socket` of the config FILE, else
 * /run/qkdgw/admin.sock. Exit: 0 ok; 69 (EX_UNAVAILABLE) no daemon answers; 77 (EX_NOPERM)
 * the socket (mode 0600) or its directory is not ours; 64 usage; 78 bad config FILE;
 * 1 the daemon answered with an error or something unreadable.
 */
import { lstatSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { loadGatewayConfig } from '../config/gateway.js';
import { ADMIN_DEFAULT_SOCKET, type AdminResponse } from '../daemon/admin-socket.js';
import type { GatewaySnapshot } from '../daemon/snapshot.js';
import { describeStartError } from './errors.js';
import { Exit } from './exit-codes.js';
import { renderStatus } from './status-table.js';

export const STATUS_USAGE = 'usage: qkdgw status [--socket PATH | --config FILE] [--json]';

/** sysexits.h statuses `status` adds to {@link Exit}. */
export const StatusExit = {
  /** EX_UNAVAILABLE: no daemon answers on the socket. */
  UNAVAILABLE: 69,
  /** EX_NOPERM: the socket or its directory may not be opened by this user. */
  NOPERM: 77,
} as const;

/** Longest reply accepted, bytes: a snapshot is a few KiB per peer. */
const MAX_REPLY_BYTES = 16 * 2 ** 20;
/** ms to wait for the daemon's reply. */
export const STATUS_TIMEOUT_MS = 5_000;

/** Why a status request failed; `kind` picks the exit status. */
export class StatusRequestError extends Error {
  readonly kind: 'unavailable' | 'noperm' | 'failed';
  constructor(kind: StatusRequestError['kind'], message: string) {
    super(message);
    this.name = 'StatusRequestError';
    this.kind = kind;
  }
}

/**
 * Sends `{"cmd":"status"}` to the admin socket at `path` and returns the snapshot.
 * Throws StatusRequestError: `unavailable` (no socket, nothing listening, no reply within
 * `timeoutMs`), `noperm` (EACCES/EPERM), `failed` (error reply, unreadable reply).
 */
export function requestStatus(path: string, timeoutMs = STATUS_TIMEOUT_MS): Promise<GatewaySnapshot> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    const chunks: Buffer[] = [];
    let length = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      fn();
    };
    const notRunning = 'the daemon may not be running, or its admin.socket is configured elsewhere (or not at all)';
    const timer = setTimeout(() => settle(() => reject(new StatusRequestError('unavailable', `no reply from ${path} within ${timeoutMs / 1000} s: the daemon may be hung`))), timeoutMs);
    s.once('connect', () => s.write('{"cmd":"status"}\n'));
    const finish = (): void => {
      const text = Buffer.concat(chunks).toString('utf8');
      settle(() => {
        try {
          resolve(parseReply(text, path));
        } catch (e) {
          reject(e);
        }
      });
    };
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      length += c.length;
      if (length > MAX_REPLY_BYTES) return settle(() => reject(new StatusRequestError('failed', `reply from ${path} is larger than ${MAX_REPLY_BYTES} bytes`)));
      if (c.includes(0x0a)) finish();
    });
    s.once('end', finish);
    s.once('error', (e: NodeJS.ErrnoException) => {
      // A whole reply line followed by a reset is still a reply.
      if (Buffer.concat(chunks).includes(0x0a)) return finish();
      const code = e.code ?? '';
      if (code === 'ENOENT') return settle(() => reject(new StatusRequestError('unavailable', `no admin socket at ${path}: ${notRunning}`)));
      if (code === 'ECONNREFUSED') {
        // connect() to a regular file is refused too: say which it is.
        const what = isSocketPath(path) ? 'nothing listens on it (connection refused: a stale socket?)' : 'it is not a socket';
        return settle(() => reject(new StatusRequestError('unavailable', `${path}: ${what}: ${notRunning}`)));
      }
      if (code === 'EACCES' || code === 'EPERM') {
        return settle(() => reject(new StatusRequestError('noperm', `permission denied on ${path}: the admin socket is mode 0600; run as the daemon's user (e.g. sudo -u qkdgw qkdgw status)`)));
      }
      if (code === 'EAGAIN' || code === 'EPIPE' || code === 'ECONNRESET') return settle(() => reject(new StatusRequestError('unavailable', `${path} accepts no more connections now (the daemon is busy or hung): try again (${code})`)));
      if (code === 'ENOTDIR' || code === 'ENOTSOCK') return settle(() => reject(new StatusRequestError('unavailable', `${path} is not a socket: ${notRunning}`)));
      settle(() => reject(new StatusRequestError('failed', `cannot talk to ${path}: ${code || e.message}`)));
    });
  });
}

function isSocketPath(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

function parseReply(text: string, path: string): GatewaySnapshot {
  const line = text.split('\n', 1)[0];
  if (line === '') throw new StatusRequestError('failed', `${path} closed the connection without a reply`);
  let r: AdminResponse;
  try {
    r = JSON.parse(line) as AdminResponse;
  } catch {
    throw new StatusRequestError('failed', `${path} sent a reply that is not JSON: is it a qkdgw admin socket?`);
  }
  if (typeof r !== 'object' || r === null) throw new StatusRequestError('failed', `${path} sent an unexpected reply`);
  if (r.ok === false) throw new StatusRequestError('failed', `the daemon answered: ${String(r.error)}`);
  const st = (r as { status?: unknown }).status as GatewaySnapshot | undefined;
  if (r.ok !== true || typeof st !== 'object' || st === null || typeof st.identity !== 'string' || !Array.isArray(st.peers) || !Array.isArray(st.kme?.pools)) {
    throw new StatusRequestError('failed', `${path} sent a reply without a gateway status (a different qkdgw version?)`);
  }
  return st;
}

export interface StatusIo {
  out: { write(s: string): unknown };
  err: { write(s: string): unknown };
}

/** The command. `io` defaults to the process's stdout/stderr. Returns the exit status. */
export async function statusCommand(argv: string[], io: StatusIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { socket: { type: 'string', short: 's' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0 || (values.socket !== undefined && values.config !== undefined) || values.socket === '' || values.config === '') {
    io.err.write(`${STATUS_USAGE}\n`);
    return Exit.USAGE;
  }
  let path = values.socket ?? ADMIN_DEFAULT_SOCKET;
  let note = '';
  if (values.config !== undefined) {
    try {
      // Only admin.socket is needed: the key and certificate files may belong to another user.
      const configured = loadGatewayConfig(values.config, { checkFiles: false }).admin?.socket;
      if (configured === undefined) note = `qkdgw status: ${values.config} sets no admin.socket; tried the default ${ADMIN_DEFAULT_SOCKET}\n`;
      path = configured ?? ADMIN_DEFAULT_SOCKET;
    } catch (e) {
      const d = describeStartError(e);
      io.err.write(`qkdgw status: ${d.message}\n`);
      return d.exit;
    }
  }
  let st: GatewaySnapshot;
  try {
    st = await requestStatus(path);
  } catch (e) {
    if (!(e instanceof StatusRequestError)) throw e;
    io.err.write(`${note}qkdgw status: ${e.message}\n`);
    return e.kind === 'unavailable' ? StatusExit.UNAVAILABLE : e.kind === 'noperm' ? StatusExit.NOPERM : Exit.FAILURE;
  }
  io.out.write(values.json ? `${JSON.stringify(st)}\n` : renderStatus(st));
  return Exit.OK;
}
