/**
 * Where a key audit trail file stands: the last record (to go on with the chain) and any
 * torn lines after it. Used when the trail opens and after a write of ours failed.
 */
import { readSync } from 'node:fs';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { MAX_TORN_BYTES, ZERO_HASH, checkRecord, parsesAsJson, sha256Hex } from './audit-format.js';

export interface TailState {
  /** seq of the last record, 0 when there is none */
  seq: number;
  /** SHA-256 hex of the last record's line, ZERO_HASH when there is none */
  prev: string;
  /** the file does not end with a newline (a torn line, or a record whose newline was lost) */
  needsNewline: boolean;
  /** the run of non-JSON lines after the last record: exact bytes and line count */
  torn: { bytes: Buffer; lines: number } | null;
}

const NL = 0x0a;

/**
 * Reads the end of the file open on `fd` (`size` bytes) backwards, in growing windows of
 * at most MAX_TORN_BYTES + 64 KiB. A last line that parses as JSON but is not a valid
 * record, or no record start within the window, throws QKDGW_E_AUDIT_FILE: that is not a
 * crash mid-write but a damaged or foreign file, and the chain cannot be resumed.
 */
export function readTail(fd: number, size: number, path: string): TailState {
  if (size === 0) return { seq: 0, prev: ZERO_HASH, needsNewline: false, torn: null };
  checkHead(fd, size, path);
  const limit = Math.min(size, MAX_TORN_BYTES + 64 * 1024);
  let win = Math.min(size, 64 * 1024);
  for (;;) {
    const buf = Buffer.alloc(win);
    let got = 0;
    while (got < win) {
      const n = readSync(fd, buf, got, win - got, size - win + got);
      if (n === 0) break;
      got += n;
    }
    const r = scan(buf.subarray(0, got), win === size, path);
    if (r) return r;
    if (win >= limit) {
      throw new QkdgwError(ErrorCodes.AUDIT_FILE, `${path}: no audit record in the last ${limit} bytes: not a key audit trail, or damaged; check it with \`qkdgw audit verify\` and move it aside to start a new trail`, { path });
    }
    win = Math.min(limit, win * 4);
  }
}

/** null: the window starts mid-line before a record was found; read more. */
function scan(buf: Buffer, atStart: boolean, path: string): TailState | null {
  const needsNewline = buf[buf.length - 1] !== NL;
  let lineEnd = needsNewline ? buf.length : buf.length - 1;
  let runEnd = -1;
  let runLines = 0;
  for (;;) {
    // lastIndexOf with a negative offset would search from the end: guard lineEnd 0.
    const nl = lineEnd === 0 ? -1 : buf.lastIndexOf(NL, lineEnd - 1);
    if (nl < 0 && !atStart) return null;
    const line = buf.subarray(nl + 1, lineEnd);
    const j = parsesAsJson(line);
    if (j.ok) {
      const c = checkRecord(j.value);
      if (!c.ok) {
        throw new QkdgwError(ErrorCodes.AUDIT_FILE, `${path}: the last record does not check (${c.reason}); the chain cannot be resumed: check the file with \`qkdgw audit verify\` and move it aside to start a new trail`, { path });
      }
      const torn = runLines ? { bytes: Buffer.from(buf.subarray(lineEnd + 1, runEnd)), lines: runLines } : null;
      return { seq: c.rec.seq, prev: sha256Hex(line), needsNewline, torn };
    }
    if (runEnd < 0) runEnd = lineEnd;
    runLines++;
    if (nl < 0) return { seq: 0, prev: ZERO_HASH, needsNewline, torn: { bytes: Buffer.from(buf.subarray(0, runEnd)), lines: runLines } };
    lineEnd = nl;
  }
}

/**
 * A trail starts with its first record (seq 1, prev = zeros) on line 1. Anything else is
 * not ours (a config file, /etc/passwd named by mistake): refuse before appending a byte.
 */
function checkHead(fd: number, size: number, path: string): void {
  const buf = Buffer.alloc(Math.min(size, MAX_TORN_BYTES + 1));
  const got = readSync(fd, buf, 0, buf.length, 0);
  const nl = buf.subarray(0, got).indexOf(NL);
  // A lone first line with no newline is what a crash during the very first write leaves.
  if (nl < 0 && got === size) return;
  const j = nl < 0 ? { ok: false as const } : parsesAsJson(buf.subarray(0, nl));
  const c = j.ok ? checkRecord(j.value) : null;
  if (!c || !c.ok || c.rec.seq !== 1) {
    throw new QkdgwError(ErrorCodes.AUDIT_FILE, `${path} is not a key audit trail (its first line is not record 1): refusing to append to it; name a new or existing audit file`, { path });
  }
}
