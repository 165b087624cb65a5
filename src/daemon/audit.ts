/**
 * The key audit trail (issue 5): an append-only JSON-lines file of key lifecycle events,
 * each line carrying the SHA-256 of the previous line (format: audit-format.ts, README
 * "Key audit trail"). key_IDs, epochs and reasons only: never key bytes.
 *
 * Writes are synchronous appends (O_APPEND, one writeSync per record) so records are in
 * the file, in order, when record() returns; a crash of the process loses nothing that
 * record() returned for. fsync policy: the file is evidence, not a database, so it is
 * fdatasync'ed when `syncEveryLines` records are unsynced or `syncIntervalMs` after the
 * first unsynced one, and on close(): a power loss costs at most that window.
 */
import { closeSync, constants, fdatasyncSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCodes, QkdgwError, isQkdgwError } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { checkEvent, encodeRecord, sha256Hex, tornReason, type AuditEvent, type AuditRecord } from './audit-format.js';
import { readTail } from './audit-tail.js';
import { AuditLogMapper } from './audit-events.js';

export interface AuditTrailOptions {
  /** Monotonic clock for the fsync timer (default systemClock; tests: ManualClock). */
  clock?: Clock;
  /** Wall clock for `time`, ms since 1970 (default Date.now). */
  wallClock?: () => number;
  /** fdatasync once this many records are unsynced (default 32; 1 = every record). */
  syncEveryLines?: number;
  /** fdatasync at most this long after the first unsynced record, ms (default 1000). */
  syncIntervalMs?: number;
  /** Where failures of the background fdatasync and of observe() go (default silent). */
  logger?: Logger;
}

/** What one record() wrote: its seq and the SHA-256 hex of its line (the new head). */
export interface AuditHead {
  seq: number;
  hash: string;
}

type EventFields = Omit<AuditRecord, 'seq' | 'time' | 'prev'>;

const OPEN_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

function fileError(path: string, what: string, e?: unknown): QkdgwError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return new QkdgwError(ErrorCodes.AUDIT_FILE, `audit file ${path}: ${what}${code ? ` (${code})` : ''}`, { path, ...(code ? { errno: code } : {}) }, { cause: e });
}

export class AuditTrail {
  readonly path: string;
  #fd: number | null;
  #seq = 0;
  #prev = '';
  /** The file size our own writes account for; any other change is a foreign writer. */
  #size = 0;
  /** A write of ours failed: re-read the tail before the next one. */
  #stale = false;
  #unsynced = 0;
  #cancelSync: (() => void) | null = null;
  readonly #clock: Clock;
  readonly #wall: () => number;
  readonly #syncEvery: number;
  readonly #syncMs: number;
  readonly #log: Logger;
  readonly #mapper = new AuditLogMapper();
  /** Records observe() could not write (the error went to the logger). */
  failures = 0;

  private constructor(path: string, fd: number, o: AuditTrailOptions) {
    this.path = path;
    this.#fd = fd;
    this.#clock = o.clock ?? systemClock;
    this.#wall = o.wallClock ?? Date.now;
    this.#syncEvery = Math.max(1, o.syncEveryLines ?? 32);
    this.#syncMs = Math.max(0, o.syncIntervalMs ?? 1000);
    this.#log = o.logger ?? silentLogger;
  }

  /**
   * Opens (or creates, mode 0600) the trail at `path` and resumes its chain from the last
   * record. The folder must exist (it is not created: a typo must not scatter evidence).
   * A torn last line (a crash mid-write) is recorded as `chain_resumed_after_torn_line`;
   * then `audit_opened` (reason `created` or `resumed after seq N`) is written.
   *
   * Throws QKDGW_E_AUDIT_FILE when the folder is missing, the path is a symbolic link or
   * not a regular file, the file is writable by group or others, it cannot be opened or
   * written, or its last record is not valid (damaged or not an audit trail).
   */
  static open(path: string, opts: AuditTrailOptions = {}): AuditTrail {
    const dir = dirname(path);
    let st;
    try {
      st = statSync(dir);
    } catch (e) {
      throw fileError(path, `the folder ${dir} does not exist or cannot be read: create it (owned by the gateway's user, mode 0700)`, e);
    }
    if (!st.isDirectory()) throw fileError(path, `${dir} is not a folder`);
    let fd: number;
    try {
      fd = openSync(path, OPEN_FLAGS, 0o600);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw fileError(path, code === 'ELOOP' ? 'is a symbolic link: refused (give the real path)' : 'cannot be opened for appending', e);
    }
    let t: AuditTrail | null = null;
    try {
      const fst = fstatSync(fd);
      if (!fst.isFile()) throw fileError(path, 'is not a regular file');
      if ((fst.mode & 0o022) !== 0) throw fileError(path, `is writable by group or others (mode ${(fst.mode & 0o777).toString(8)}): chmod 600 it`);
      t = new AuditTrail(path, fd, opts);
      t.#size = fst.size;
      const resumedFrom = t.#resume(fst.size);
      t.#write([{ event: 'audit_opened', reason: fst.size === 0 ? 'created' : `resumed after seq ${resumedFrom}` }]);
      return t;
    } catch (e) {
      if (t) {
        t.#cancelSync?.();
        t.#fd = null;
      }
      closeSync(fd);
      throw isQkdgwError(e) ? e : fileError(path, 'cannot be read or written', e);
    }
  }

  /**
   * Takes over what `previous` knows of the epochs in force (their key_IDs), so a trail
   * opened by a reload can name the keys of epochs installed before it when they end.
   */
  continueFrom(previous: AuditTrail): void {
    this.#mapper.adopt(previous.#mapper);
  }

  /** seq and SHA-256 hex of the last record written (the value to anchor elsewhere). */
  get head(): AuditHead {
    return { seq: this.#seq, hash: this.#prev };
  }

  get closed(): boolean {
    return this.#fd === null;
  }

  /**
   * Appends one record for `ev` and returns the new head. The event is checked field by
   * field (checkEvent): unknown fields such as `key`, bytes, malformed key_IDs throw
   * QKDGW_E_AUDIT_FIELD and nothing is written. An I/O failure, a file changed by another
   * writer (or truncated) or a closed trail throws QKDGW_E_AUDIT_FILE; after a failure of
   * our own write the next record first closes the torn line with
   * `chain_resumed_after_torn_line`.
   */
  record(ev: AuditEvent): AuditHead {
    return this.#write([checkEvent(ev)]);
  }

  /** record() for several events as one write (all or, on failure, a torn tail). */
  recordAll(evs: readonly AuditEvent[]): AuditHead {
    if (evs.length === 0) return this.head;
    return this.#write(evs.map((e) => checkEvent(e)));
  }

  /**
   * The wiring hook: maps one structured log event of the gateway (audit-events.ts) and
   * records what it means for keys. Never throws: a refusal or I/O error goes to the
   * logger as `audit_write_failed` (error) and counts in `failures`. Returns the number
   * of records written.
   */
  observe(event: string, fields: Record<string, unknown>, peer: string): number {
    let evs: AuditEvent[] = [];
    try {
      evs = this.#mapper.map(event, fields, peer);
      if (evs.length === 0) return 0;
      this.recordAll(evs);
      return evs.length;
    } catch (e) {
      this.failures++;
      this.#log.error({ event: 'audit_write_failed', audit_event: event, peer, code: isQkdgwError(e) ? e.code : undefined, err: e instanceof Error ? e.message : String(e) }, `key audit trail: could not record ${event}`);
      return 0;
    }
  }

  /** fdatasync now if anything is unsynced. Throws QKDGW_E_AUDIT_FILE on failure. */
  sync(): void {
    this.#cancelSync?.();
    this.#cancelSync = null;
    if (this.#fd === null || this.#unsynced === 0) return;
    try {
      fdatasyncSync(this.#fd);
    } catch (e) {
      throw fileError(this.path, 'fdatasync failed', e);
    }
    this.#unsynced = 0;
  }

  /**
   * Writes `audit_closed`, syncs and closes the file. Idempotent. Throws
   * QKDGW_E_AUDIT_FILE if the last write or sync failed (the file is closed anyway).
   */
  close(): void {
    if (this.#fd === null) return;
    const fd = this.#fd;
    try {
      this.#write([{ event: 'audit_closed' }]);
      this.sync();
    } finally {
      this.#cancelSync?.();
      this.#cancelSync = null;
      this.#fd = null;
      closeSync(fd);
    }
  }

  /** Reads the tail; returns the seq resumed after. Closes a torn tail (one write). */
  #resume(size: number): number {
    const t = readTail(this.#fd!, size, this.path);
    this.#seq = t.seq;
    this.#prev = t.prev;
    const lead = t.needsNewline ? '\n' : '';
    if (t.torn) this.#write([{ event: 'chain_resumed_after_torn_line', reason: tornReason(t.torn.bytes, t.torn.lines) }], lead);
    else if (lead) this.#append(Buffer.from(lead));
    return t.seq;
  }

  #write(evs: EventFields[], lead = ''): AuditHead {
    if (this.#fd === null) throw fileError(this.path, 'the trail is closed');
    if (this.#stale) {
      // Our last write failed, maybe part way: find out what reached the file and go on from there.
      try {
        this.#size = fstatSync(this.#fd).size;
      } catch (e) {
        throw fileError(this.path, 'fstat failed', e);
      }
      this.#stale = false;
      try {
        this.#resume(this.#size);
      } catch (e) {
        this.#stale = true; // still unknown: look again next time, never append blindly
        throw e;
      }
    } else {
      let size: number;
      try {
        size = fstatSync(this.#fd).size;
      } catch (e) {
        throw fileError(this.path, 'fstat failed', e);
      }
      if (size !== this.#size) {
        throw fileError(this.path, `changed size under the gateway (${this.#size} -> ${size} bytes): another process writes it, or it was truncated (rotate by renaming and restarting, not copytruncate); nothing recorded`);
      }
    }
    const time = new Date(this.#wall()).toISOString();
    let seq = this.#seq;
    let prev = this.#prev;
    const lines: string[] = [];
    const heads: AuditHead[] = [];
    for (const ev of evs) {
      const line = encodeRecord(++seq, time, ev, prev);
      prev = sha256Hex(Buffer.from(line, 'utf8'));
      lines.push(line);
      heads.push({ seq, hash: prev });
    }
    const data = Buffer.from(`${lead}${lines.join('\n')}\n`, 'utf8');
    this.#append(data);
    this.#seq = seq;
    this.#prev = prev;
    this.#afterWrite(lines.length);
    return heads[heads.length - 1];
  }

  /**
   * Appends all of `data` (looping over short writes). On failure the trail goes stale:
   * whatever part reached the file, the next write reads the tail first.
   */
  #append(data: Buffer): void {
    let off = 0;
    try {
      while (off < data.length) off += writeSync(this.#fd!, data, off, data.length - off);
    } catch (e) {
      this.#stale = true;
      throw fileError(this.path, `write failed after ${off} of ${data.length} bytes`, e);
    }
    this.#size += off;
  }

  #afterWrite(n: number): void {
    this.#unsynced += n;
    if (this.#unsynced >= this.#syncEvery) {
      this.sync();
      return;
    }
    if (this.#cancelSync === null) {
      this.#cancelSync = this.#clock.setTimer(this.#syncMs, () => {
        this.#cancelSync = null;
        try {
          this.sync();
        } catch (e) {
          this.#log.error({ event: 'audit_sync_failed', err: (e as Error).message }, 'key audit trail: fdatasync failed');
        }
      });
    }
  }
}
