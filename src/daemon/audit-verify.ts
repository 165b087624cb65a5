/**
 * Checks a key audit trail file (format: audit-format.ts, README "Key audit trail"): every
 * line a valid record, seq 1, 2, 3 ... without gaps, each `prev` the SHA-256 of the line
 * before, the first `prev` 64 zeros; a run of torn lines only where a
 * `chain_resumed_after_torn_line` record describing it follows. Reports the first break.
 *
 * What a hash chain cannot show: the last record changed in a way that still parses, or
 * records cut off the end at a line boundary. Anchor the head (printed by
 * `qkdgw audit verify`, AuditTrail.head) somewhere else to cover those.
 */
import { closeSync, openSync, statSync, readSync } from 'node:fs';
import { ErrorCodes, QkdgwError } from '../errors.js';
import { MAX_TORN_BYTES, ZERO_HASH, checkRecord, parsesAsJson, sha256Hex, tornReason } from './audit-format.js';

export interface AuditVerifyResult {
  ok: boolean;
  /** lines read (all of them when ok; up to and including the bad one otherwise) */
  lines: number;
  /** valid records among them */
  records: number;
  /** seq and SHA-256 hex of the last valid record (hash ZERO_HASH, seq 0 when none) */
  head: { seq: number; hash: string };
  /** line numbers (1-based) of torn lines closed by a chain_resumed_after_torn_line */
  torn: number[];
  /** the first break: its 1-based line number and why */
  firstBad?: { line: number; reason: string };
}

const NL = 0x0a;
const CHUNK = 1024 * 1024;

/** Lines of the file on `fd`, each without its newline; `terminated` false for a last line with none. */
function* lines(fd: number): Generator<{ bytes: Buffer; terminated: boolean } | { tooLong: true }> {
  const buf = Buffer.alloc(CHUNK);
  let carry: Buffer[] = [];
  let carryLen = 0;
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, CHUNK, pos);
    if (n === 0) break;
    pos += n;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(NL, start);
      if (nl < 0 || nl >= n) break;
      const piece = buf.subarray(start, nl);
      yield { bytes: carryLen ? Buffer.concat([...carry, piece]) : Buffer.from(piece), terminated: true };
      carry = [];
      carryLen = 0;
      start = nl + 1;
    }
    if (start < n) {
      carry.push(Buffer.from(buf.subarray(start, n)));
      carryLen += n - start;
      if (carryLen > MAX_TORN_BYTES) {
        yield { tooLong: true };
        return;
      }
    }
  }
  if (carryLen) yield { bytes: Buffer.concat(carry), terminated: false };
}

/**
 * Verifies the trail at `path`. Returns {ok, lines, records, head, torn, firstBad?}; a
 * broken chain is a result, not an error. Throws QKDGW_E_AUDIT_FILE (details.errno, e.g.
 * ENOENT) when the file cannot be opened or read.
 */
export function verifyAuditFile(path: string): AuditVerifyResult {
  let fd: number;
  // Opening a FIFO for reading would block until a writer comes: look before opening.
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    throw new QkdgwError(ErrorCodes.AUDIT_FILE, `audit file ${path} cannot be opened${errno ? ` (${errno})` : ''}`, { path, errno }, { cause: e });
  }
  if (!st.isFile()) throw new QkdgwError(ErrorCodes.AUDIT_FILE, `audit file ${path} is not a regular file`, { path, errno: st.isDirectory() ? 'EISDIR' : 'ENOTREG' });
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    throw new QkdgwError(ErrorCodes.AUDIT_FILE, `audit file ${path} cannot be opened${errno ? ` (${errno})` : ''}`, { path, errno }, { cause: e });
  }
  try {
    return verifyFd(fd);
  } catch (e) {
    const errno = (e as NodeJS.ErrnoException).code;
    throw new QkdgwError(ErrorCodes.AUDIT_FILE, `audit file ${path} cannot be read${errno ? ` (${errno})` : ''}`, { path, errno }, { cause: e });
  } finally {
    closeSync(fd);
  }
}

function verifyFd(fd: number): AuditVerifyResult {
  let lineNo = 0;
  let records = 0;
  let seq = 0;
  let prev = ZERO_HASH;
  let prevLine = 0;
  const torn: number[] = [];
  let run: { first: number; parts: Buffer[] } | null = null;
  const result = (firstBad?: { line: number; reason: string }): AuditVerifyResult => ({ ok: !firstBad, lines: lineNo, records, head: { seq, hash: prev }, torn, ...(firstBad ? { firstBad } : {}) });

  for (const l of lines(fd)) {
    lineNo++;
    if ('tooLong' in l) return result({ line: lineNo, reason: `line longer than ${MAX_TORN_BYTES} bytes: not an audit record` });
    const j = parsesAsJson(l.bytes);
    if (!j.ok) {
      if (!l.terminated) {
        const at = run ? `lines ${run.first}-${lineNo}` : `line ${lineNo}`;
        return result({ line: run?.first ?? lineNo, reason: `${at} torn at the end of the file (no line break, not JSON): the gateway stopped mid-write or the disk filled, or the file was cut; the gateway records chain_resumed_after_torn_line when it next opens the file` });
      }
      if (run) run.parts.push(l.bytes);
      else run = { first: lineNo, parts: [l.bytes] };
      continue;
    }
    const c = checkRecord(j.value);
    if (!c.ok) return result({ line: lineNo, reason: `not a valid record: ${c.reason}` });
    const r = c.rec;
    if (run) {
      const bytes = Buffer.concat(run.parts.flatMap((p, i) => (i ? [Buffer.from([NL]), p] : [p])));
      const first = run.first;
      const n = run.parts.length;
      run = null;
      // The writer appends only to a trail whose line 1 is record 1; a crash during the very
      // first write leaves one torn line there, never several (a foreign file named by mistake).
      if (first === 1 && n > 1) return result({ line: 1, reason: `lines 1-${lineNo - 1} are not audit records: not a key audit trail` });
      if (r.event !== 'chain_resumed_after_torn_line') {
        return result({ line: first, reason: `${n > 1 ? `lines ${first}-${lineNo - 1} are` : 'not JSON: the line is'} not records, and no chain_resumed_after_torn_line follows (altered or inserted)` });
      }
      if (r.reason !== tornReason(bytes, n)) {
        return result({ line: lineNo, reason: `chain_resumed_after_torn_line does not describe the torn ${n > 1 ? `lines ${first}-${lineNo - 1}` : `line ${first}`} (their bytes were altered)` });
      }
      for (let i = first; i < lineNo; i++) torn.push(i);
    } else if (r.event === 'chain_resumed_after_torn_line') {
      return result({ line: lineNo, reason: 'chain_resumed_after_torn_line without a torn line before it' });
    }
    if (r.seq !== seq + 1) {
      const why =
        r.seq > seq + 1
          ? `${r.seq - seq - 1} record(s) missing before it (deleted, or lines reordered)`
          : r.seq === seq
            ? 'it repeats the seq of the record before (a line was inserted or duplicated)'
            : 'it goes backwards (lines reordered, inserted or duplicated)';
      return result({ line: lineNo, reason: `seq ${r.seq} where ${seq + 1} was expected: ${why}` });
    }
    if (r.prev !== prev) {
      const why = prevLine === 0 ? 'the first record must have prev = 64 zeros (records removed from the start?)' : `it is not the SHA-256 of line ${prevLine}: line ${prevLine} was altered, or this line's prev was`;
      return result({ line: lineNo, reason: `prev ${r.prev.slice(0, 16)}... does not match: ${why}` });
    }
    seq = r.seq;
    prev = sha256Hex(l.bytes);
    prevLine = lineNo;
    records++;
  }
  if (run) {
    // Not JSON lines, each ending with a newline, and nothing after them.
    const at = run.parts.length > 1 ? `lines ${run.first}-${lineNo}` : `line ${run.first}`;
    return result({ line: run.first, reason: `${at} not JSON at the end of the file, with no chain_resumed_after_torn_line after (a torn write, or altered)` });
  }
  return result();
}
