// Issue 5, key audit trail: append-only JSON lines, each carrying the SHA-256 of the line
// before; `qkdgw audit verify` finds the first break. Never key bytes.
import t from 'tap';
import * as fs from 'node:fs';
import { appendFileSync, chmodSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AuditTrail } from '../../../src/daemon/audit.js';
import { verifyAuditFile } from '../../../src/daemon/audit-verify.js';
import { auditFromLogEvent, AuditLogMapper } from '../../../src/daemon/audit-events.js';
import { auditingLogger } from '../../../src/daemon/audit-logger.js';
import { ZERO_HASH, type AuditEvent } from '../../../src/daemon/audit-format.js';
import { ErrorCodes, isQkdgwError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { Pair } from '../../helpers/session-pair.js';

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const KID = ['0f9a8c1e-1111-4a2b-9c3d-000000000001', '0f9a8c1e-1111-4a2b-9c3d-000000000002', '0f9a8c1e-1111-4a2b-9c3d-000000000003'];
const wall = () => Date.UTC(2025, 0, 2, 3, 4, 5, 678);

const EVENTS: AuditEvent[] = [
  { event: 'key_fetched', peer: 'gw-b', key_ID: KID[0], reason: 'enc_keys (key pool)' },
  { event: 'handshake_started', peer: 'gw-b', epoch: 1, mode: 'qkd', reason: 'start' },
  { event: 'epoch_switch', peer: 'gw-b', epoch: 1, key_ID: KID[0], mode: 'qkd', reason: 'initiator: tag_R verified' },
  { event: 'key_fetched', peer: 'gw-b', key_ID: KID[1] },
  { event: 'epoch_switch', peer: 'gw-b', epoch: 2, key_ID: KID[1], mode: 'qkd' },
  { event: 'qkd_degraded', peer: 'gw-b', epoch: 3, mode: 'degraded', reason: 'no QKD key' },
];

/** A closed trail with EVENTS: lines audit_opened, 6 events, audit_closed (8 lines). */
function sample(dir: string, name = 'audit.jsonl'): string {
  const f = join(dir, name);
  const tr = AuditTrail.open(f, { wallClock: wall });
  for (const e of EVENTS) tr.record(e);
  tr.close();
  return f;
}

const linesOf = (f: string) => readFileSync(f, 'utf8').split('\n').slice(0, -1);
const writeLines = (f: string, ls: string[]) => writeFileSync(f, ls.map((l) => `${l}\n`).join(''));

t.test('append + verify round trip: format, order, chain', async (t) => {
  const f = sample(t.testdir());
  const ls = linesOf(f);
  t.equal(ls.length, 8, 'audit_opened + 6 events + audit_closed');
  const recs = ls.map((l) => JSON.parse(l));
  t.same(recs.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8]);
  t.same(recs.map((r) => r.event), ['audit_opened', ...EVENTS.map((e) => e.event), 'audit_closed']);
  t.equal(recs[0].reason, 'created');
  t.equal(recs[0].prev, ZERO_HASH, 'first prev is 64 zeros');
  for (let i = 1; i < ls.length; i++) t.equal(recs[i].prev, sha(ls[i - 1]), `line ${i + 1} prev = sha256 of line ${i}`);
  t.equal(recs[1].time, '2025-01-02T03:04:05.678Z', 'ISO time from the wall clock');
  t.same(Object.keys(recs[3]), ['seq', 'time', 'event', 'peer', 'key_ID', 'epoch', 'mode', 'reason', 'prev'], 'documented field order');
  t.same(Object.keys(recs[4]), ['seq', 'time', 'event', 'peer', 'key_ID', 'prev'], 'absent fields are left out');
  const v = verifyAuditFile(f);
  t.same(v, { ok: true, lines: 8, records: 8, head: { seq: 8, hash: sha(ls[7]) }, torn: [] });
});

t.test('restart resumes the chain from the last line', async (t) => {
  const dir = t.testdir();
  const f = sample(dir);
  const before = linesOf(f);
  const tr = AuditTrail.open(f, { wallClock: wall });
  t.same(tr.head, { seq: 9, hash: sha(linesOf(f)[8]) });
  const h = tr.record({ event: 'key_fetched', peer: 'gw-b', key_ID: KID[2] });
  t.equal(h.seq, 10);
  tr.close();
  const ls = linesOf(f);
  t.same(ls.slice(0, 8), before, 'earlier lines untouched (append only)');
  const opened = JSON.parse(ls[8]);
  t.match(opened, { seq: 9, event: 'audit_opened', reason: 'resumed after seq 8', prev: sha(before[7]) });
  t.same(verifyAuditFile(f), { ok: true, lines: 11, records: 11, head: { seq: 11, hash: sha(ls[10]) }, torn: [] });
});

t.test('tampering is detected with the line number', async (t) => {
  const dir = t.testdir();
  const good = linesOf(sample(dir));
  const bad = (ls: string[]) => {
    const f = join(dir, 'x.jsonl');
    writeLines(f, ls);
    return verifyAuditFile(f);
  };

  t.test('a modified byte anywhere but the last line', async (t) => {
    let checked = 0;
    const whole = Buffer.from(good.map((l) => `${l}\n`).join(''));
    const lastStart = whole.length - Buffer.byteLength(good[7]) - 1;
    let lineNo = 1;
    for (let i = 0; i < lastStart; i++) {
      const m = Buffer.from(whole);
      m[i] ^= 0x01;
      const f = join(dir, 'flip.jsonl');
      writeFileSync(f, m);
      const v = verifyAuditFile(f);
      const fb = v.firstBad;
      const right = !v.ok && fb !== undefined && (fb.line === lineNo || (fb.line === lineNo + 1 && fb.reason.includes(`line ${lineNo}`)));
      if (!right) t.fail(`byte ${i} (line ${lineNo}) flipped: ${JSON.stringify(v)}`);
      checked++;
      if (whole[i] === 0x0a) lineNo++;
    }
    t.equal(checked, lastStart, `every one of ${lastStart} bytes of lines 1-7 flipped: each detected at its line (or the next, naming it)`);
  });

  t.test('a changed key_ID (still valid JSON): reported at the next line, naming the changed one', async (t) => {
    const ls = [...good];
    ls[1] = ls[1].replace(KID[0], KID[2]);
    const v = bad(ls);
    t.equal(v.ok, false);
    t.equal(v.firstBad?.line, 3);
    t.match(v.firstBad?.reason, /not the SHA-256 of line 2: line 2 was altered/);
  });

  t.test('a changed seq or prev: reported at that line', async (t) => {
    const a = [...good];
    a[4] = a[4].replace('"seq":5', '"seq":50');
    t.match(bad(a).firstBad, { line: 5, reason: /seq 50 where 5 was expected/ });
    const b = [...good];
    b[4] = b[4].replace(/"prev":"[0-9a-f]/, (s) => s.slice(0, -1) + (s.endsWith('0') ? '1' : '0'));
    t.match(bad(b).firstBad, { line: 5, reason: /prev .* does not match/ });
  });

  t.test('a deleted line', async (t) => {
    t.match(bad([...good.slice(0, 3), ...good.slice(4)]).firstBad, { line: 4, reason: /seq 5 where 4 was expected: 1 record\(s\) missing/ });
    t.match(bad(good.slice(1)).firstBad, { line: 1, reason: /seq 2 where 1 was expected/ }, 'the first line');
  });

  t.test('a reordered pair', async (t) => {
    t.match(bad([...good.slice(0, 4), good[5], good[4], ...good.slice(6)]).firstBad, { line: 5, reason: /seq 6 where 5 was expected/ });
  });

  t.test('an inserted line', async (t) => {
    t.match(bad([...good.slice(0, 4), good[1], ...good.slice(4)]).firstBad, { line: 5, reason: /seq 2 where 5 was expected: it goes backwards/ }, 'a copy of an earlier line');
    t.match(bad([...good.slice(0, 4), 'hello', ...good.slice(4)]).firstBad, { line: 5, reason: /not records, and no chain_resumed_after_torn_line follows/ }, 'a non-JSON line');
    // A forged line that continues the chain correctly: the original next line breaks.
    const forged = JSON.stringify({ seq: 5, time: '2025-01-02T03:04:05.678Z', event: 'key_fetched', peer: 'gw-b', key_ID: 'forged', prev: sha(good[3]) });
    t.match(bad([...good.slice(0, 4), forged, ...good.slice(4)]).firstBad, { line: 6, reason: /repeats the seq .* inserted/ }, 'a forged record with the right seq and prev');
  });

  t.test('a field that is not in the format (e.g. key) is a broken line even with a valid chain', async (t) => {
    const ls = good.slice(0, 3);
    const rec = JSON.parse(ls[2]);
    ls[2] = JSON.stringify({ ...rec, key: randomBytes(32).toString('base64') });
    t.match(bad(ls).firstBad, { line: 3, reason: /unexpected field "key"/ });
  });
});

t.test('torn last line (a crash mid-write)', async (t) => {
  t.test('verify reports it; reopening records chain_resumed_after_torn_line and the chain is whole again', async (t) => {
    const dir = t.testdir();
    const f = sample(dir);
    const next = JSON.stringify({ seq: 9, time: '2025-01-02T03:04:05.678Z', event: 'key_fetched', peer: 'gw-b', key_ID: KID[2], prev: sha(linesOf(f)[7]) });
    const frag = next.slice(0, 41);
    appendFileSync(f, frag);
    const v1 = verifyAuditFile(f);
    t.equal(v1.ok, false);
    t.match(v1.firstBad, { line: 9, reason: /torn at the end of the file/ });
    const tr = AuditTrail.open(f, { wallClock: wall });
    tr.close();
    const ls = linesOf(f);
    t.equal(ls[8], frag, 'the torn bytes stay, closed by a newline');
    const resumed = JSON.parse(ls[9]);
    t.match(resumed, { seq: 9, event: 'chain_resumed_after_torn_line', prev: sha(ls[7]), reason: `torn: 1 line(s), 41 bytes, sha256 ${sha(frag)}` });
    t.match(JSON.parse(ls[10]), { seq: 10, event: 'audit_opened', reason: 'resumed after seq 8' });
    const v2 = verifyAuditFile(f);
    t.same(v2, { ok: true, lines: 12, records: 11, head: { seq: 11, hash: sha(ls[11]) }, torn: [9] });
    // The torn bytes are covered too.
    const m = readFileSync(f, 'utf8').replace(frag, frag.replace('"seq":9', '"seq":8'));
    writeFileSync(f, m);
    t.match(verifyAuditFile(f).firstBad, { line: 10, reason: /does not describe the torn line 9/ });
  });

  t.test('a NUL-filled tail (delayed allocation after power loss) and a torn line at the very start', async (t) => {
    const dir = t.testdir();
    const f = sample(dir);
    appendFileSync(f, Buffer.alloc(700));
    AuditTrail.open(f, { wallClock: wall }).close();
    t.same(verifyAuditFile(f).torn, [9]);
    t.equal(verifyAuditFile(f).ok, true);
    const g = join(dir, 'g.jsonl');
    writeFileSync(g, '{"seq":1,"ti');
    const tr = AuditTrail.open(g, { wallClock: wall });
    t.same(tr.head.seq, 2, 'resumed record 1, audit_opened 2');
    tr.close();
    const ls = linesOf(g);
    t.match(JSON.parse(ls[1]), { seq: 1, event: 'chain_resumed_after_torn_line', prev: ZERO_HASH });
    t.same(verifyAuditFile(g), { ok: true, lines: 4, records: 3, head: { seq: 3, hash: sha(ls[3]) }, torn: [1] });
  });

  t.test('a complete last record that only lost its newline: continued, no torn event', async (t) => {
    const dir = t.testdir();
    const f = sample(dir);
    writeFileSync(f, readFileSync(f).subarray(0, -1));
    t.equal(verifyAuditFile(f).ok, true, 'a last line without newline that is a whole record is fine');
    AuditTrail.open(f, { wallClock: wall }).close();
    const ls = linesOf(f);
    t.equal(ls.length, 10);
    t.match(JSON.parse(ls[8]), { seq: 9, event: 'audit_opened' });
    t.equal(verifyAuditFile(f).ok, true);
  });

  t.test('a last line that is JSON but not a record is refused at open (damaged, not torn)', async (t) => {
    const dir = t.testdir();
    const f = sample(dir);
    appendFileSync(f, '{"seq":9}\n');
    const size = statSync(f).size;
    t.throws(() => AuditTrail.open(f), { code: ErrorCodes.AUDIT_FILE, message: /last record does not check/ });
    t.equal(statSync(f).size, size, 'nothing written');
  });

  t.test('a write of ours that fails part way: the next record closes the torn line', async (t) => {
    const dir = t.testdir();
    // What the next writeSync calls do: 'short' takes 20 bytes (write(2) returning less),
    // 'enospc' throws, 'hidden' puts 19 bytes in the file and then throws (the trail must
    // not trust its own byte count).
    const plan: Array<'short' | 'enospc' | 'hidden'> = [];
    const { AuditTrail: MockedTrail } = await t.mockImport<typeof import('../../../src/daemon/audit.js')>('../../../src/daemon/audit.js', {
      'node:fs': {
        ...fs,
        writeSync: (fd: number, buf: Buffer, off: number, len: number) => {
          const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
          switch (plan.shift()) {
            case 'short':
              return fs.writeSync(fd, buf, off, Math.min(len, 20));
            case 'enospc':
              throw enospc;
            case 'hidden':
              fs.writeSync(fd, buf, off, 19);
              throw enospc;
            default:
              return fs.writeSync(fd, buf, off, len);
          }
        },
      },
    });
    const f = join(dir, 'a.jsonl');
    const tr = MockedTrail.open(f, { wallClock: wall });
    tr.record(EVENTS[0]);
    plan.push('short', 'enospc');
    t.throws(() => tr.record(EVENTS[1]), { code: ErrorCodes.AUDIT_FILE, message: /write failed after 20 of \d+ bytes \(ENOSPC\)/ });
    t.equal(verifyAuditFile(f).ok, false, 'torn now');
    t.equal(tr.head.seq, 2, 'the failed record did not count');
    const h = tr.record(EVENTS[2]);
    t.equal(h.seq, 4, 'seq 3 went to chain_resumed_after_torn_line');
    let ls = linesOf(f);
    t.match(JSON.parse(ls[3]), { seq: 3, event: 'chain_resumed_after_torn_line', reason: /^torn: 1 line\(s\), 20 bytes/ });
    t.match(JSON.parse(ls[4]), { seq: 4, event: 'epoch_switch' });
    tr.record(EVENTS[3]);
    const size = statSync(f).size;
    plan.push('hidden');
    t.throws(() => tr.record(EVENTS[4]), { code: ErrorCodes.AUDIT_FILE, message: /after 0 of/ });
    t.equal(statSync(f).size, size + 19);
    tr.record(EVENTS[5]);
    tr.close();
    ls = linesOf(f);
    t.match(JSON.parse(ls[7]), { seq: 6, event: 'chain_resumed_after_torn_line', reason: /^torn: 1 line\(s\), 19 bytes/ });
    t.match(JSON.parse(ls[8]), { seq: 7, event: 'qkd_degraded' });
    t.match(verifyAuditFile(f), { ok: true, torn: [3, 7] });
  });
});

t.test('file: mode 0600, folder must exist, no symlinks, no group/other write, one writer', async (t) => {
  const dir = t.testdir();
  const f = join(dir, 'a.jsonl');
  AuditTrail.open(f).close();
  t.equal(statSync(f).mode & 0o777, 0o600, 'created 0600');
  t.throws(() => AuditTrail.open(join(dir, 'missing', 'a.jsonl')), { code: ErrorCodes.AUDIT_FILE, message: /folder .*missing does not exist/ });
  t.equal(fs.existsSync(join(dir, 'missing')), false, 'the folder is not created');
  symlinkSync(f, join(dir, 'link.jsonl'));
  t.throws(() => AuditTrail.open(join(dir, 'link.jsonl')), { code: ErrorCodes.AUDIT_FILE, message: /symbolic link/ });
  mkdirSync(join(dir, 'd.jsonl'));
  t.throws(() => AuditTrail.open(join(dir, 'd.jsonl')), { code: ErrorCodes.AUDIT_FILE });
  chmodSync(f, 0o666);
  t.throws(() => AuditTrail.open(f), { code: ErrorCodes.AUDIT_FILE, message: /writable by group or others .*chmod 600/ });
  chmodSync(f, 0o640);
  AuditTrail.open(f).close();
  t.equal(verifyAuditFile(f).ok, true, 'group-readable is accepted');
  // Another writer (or copytruncate) under a running trail: refused, nothing recorded.
  const tr = AuditTrail.open(f);
  appendFileSync(f, 'x\n');
  t.throws(() => tr.record(EVENTS[0]), { code: ErrorCodes.AUDIT_FILE, message: /changed size under the gateway/ });
  t.throws(() => tr.close(), { code: ErrorCodes.AUDIT_FILE }, 'close cannot write audit_closed either, but closes');
  t.equal(tr.closed, true);
  t.throws(() => tr.record(EVENTS[0]), { code: ErrorCodes.AUDIT_FILE, message: /closed/ });
});

t.test('no key bytes: the API refuses a field named key and any bytes, and writes nothing', async (t) => {
  const dir = t.testdir();
  const f = join(dir, 'a.jsonl');
  const tr = AuditTrail.open(f);
  const size = statSync(f).size;
  const key = randomBytes(32);
  const tries: Array<[string, unknown]> = [
    ['key field', { event: 'key_fetched', peer: 'gw-b', key_ID: KID[0], key }],
    ['key field as hex', { event: 'key_fetched', key: key.toString('hex') }],
    ['spread of a log line', { event: 'key_fetched', key_ID: KID[0], keyIds: [KID[0]], stock: 1 }],
    ['32-byte Buffer as key_ID', { event: 'key_fetched', key_ID: key }],
    ['32-byte Buffer as reason', { event: 'key_discarded', reason: key }],
    ['32-byte Uint8Array as peer', { event: 'key_discarded', peer: new Uint8Array(32) }],
    ['Buffer as the event', key],
    ['a class instance', new (class { event = 'key_fetched'; })()],
    ['unknown event', { event: 'key_bytes' }],
    ['trail-only event', { event: 'audit_opened' }],
    ['bad key_ID', { event: 'key_fetched', key_ID: 'x'.repeat(65) }],
    ['bad epoch', { event: 'epoch_switch', epoch: -1 }],
    ['bad mode', { event: 'epoch_switch', mode: 3 }],
  ];
  for (const [what, ev] of tries) {
    t.throws(() => tr.record(ev as AuditEvent), { code: ErrorCodes.AUDIT_FIELD }, what);
    try {
      tr.record(ev as AuditEvent);
    } catch (e) {
      t.notOk(isQkdgwError(e) && (e.message.includes(key.toString('hex')) || e.message.includes(key.toString('base64'))), `${what}: the message does not carry the bytes`);
    }
  }
  t.equal(statSync(f).size, size, 'nothing was written');
  // The log-event mapper copies whitelisted fields only.
  const mapped = auditFromLogEvent('epoch_switch', { epoch: 4, key_IDs: [KID[0]], mode: 1, key, secret: key, chain: key.toString('hex') }, 'gw-b');
  t.same(mapped, [{ event: 'epoch_switch', peer: 'gw-b', key_ID: KID[0], epoch: 4, mode: 'qkd' }]);
  t.equal(tr.observe('qkd_key_discarded', { key_ID: key, reason: 'x' }, 'gw-b'), 0, 'a Buffer key_ID is dropped by the mapper');
  tr.observe('qkd_key_discarded', { key_ID: KID[1], reason: 'late', key }, 'gw-b');
  tr.close();
  const text = readFileSync(f, 'utf8');
  for (const enc of ['hex', 'base64', 'base64url'] as const) t.notOk(text.includes(key.toString(enc)), `no ${enc} of the key in the file`);
  t.match(text, KID[1]);
});

t.test('fsync policy: every syncEveryLines records, or syncIntervalMs after the first unsynced one, and on close', async (t) => {
  let syncs = 0;
  const { AuditTrail: MockedTrail } = await t.mockImport<typeof import('../../../src/daemon/audit.js')>('../../../src/daemon/audit.js', {
    'node:fs': { ...fs, fdatasyncSync: (fd: number) => (syncs++, fs.fdatasyncSync(fd)) },
  });
  const clock = new ManualClock(0);
  const tr = MockedTrail.open(join(t.testdir(), 'a.jsonl'), { clock, syncEveryLines: 3, syncIntervalMs: 1000 });
  t.equal(syncs, 0, 'audit_opened: 1 unsynced');
  tr.record(EVENTS[0]);
  t.equal(syncs, 0);
  clock.advance(999);
  t.equal(syncs, 0);
  clock.advance(1);
  t.equal(syncs, 1, 'timer: 1 s after the first unsynced record');
  tr.recordAll(EVENTS.slice(0, 3));
  t.equal(syncs, 2, '3 unsynced records: synced at once');
  clock.advance(5000);
  t.equal(syncs, 2, 'nothing unsynced, no timer sync');
  tr.record(EVENTS[0]);
  tr.close();
  t.equal(syncs, 3, 'close syncs');
  clock.advance(5000);
  t.equal(syncs, 3, 'no timer after close');
});

t.test('a mapper that adopts another remembers its epochs (a reload that moves audit.file)', async (t) => {
  const old = new AuditLogMapper();
  const k = '2f1c7a1e-0000-4000-8000-0000000000b1';
  old.map('epoch_switch', { epoch: 5, key_IDs: [k] }, 'gw-b');
  const fresh = new AuditLogMapper();
  fresh.adopt(old);
  t.same(fresh.map('epochs_zeroized', { epochs: [5], reason: 'shutdown' }, 'gw-b').map((e) => e.key_ID), [k], 'the new trail names the key of epoch 5');
});

t.test('epochs_zeroized (a runtime closed): one epoch_zeroized per remembered key and per named epoch', async (t) => {
  const m = new AuditLogMapper();
  const k1 = '2f1c7a1e-0000-4000-8000-0000000000a1';
  const k2 = '2f1c7a1e-0000-4000-8000-0000000000a2';
  m.map('epoch_switch', { epoch: 11, key_IDs: [k1] }, 'gw-a');
  m.map('epoch_switch', { epoch: 12, key_IDs: [k2] }, 'gw-a');
  const out = m.map('epochs_zeroized', { epochs: [12, 13], reason: 'removed from the configuration' }, 'gw-a');
  t.same(
    out.map((e) => [e.event, e.epoch, e.key_ID ?? null]),
    [
      ['epoch_zeroized', 11, k1],
      ['epoch_zeroized', 12, k2],
      ['epoch_zeroized', 13, null],
    ],
    'epochs 11 and 12 with their key_IDs, 13 (no key seen) by number',
  );
  t.match(out[0].reason, /runtime closed: removed from the configuration/);
  t.same(m.map('epochs_zeroized', { epochs: [], reason: 'shutdown' }, 'gw-a'), [], 'nothing left to record twice');
});

t.test('auditFromLogEvent: the session and pool events map to key lifecycle records', async (t) => {
  const p = 'gw-b';
  t.same(auditFromLogEvent('key_pool_fetched', { keyIds: [KID[0], KID[1]], stock: 2, target: 2 }, p), [
    { event: 'key_fetched', peer: p, key_ID: KID[0], reason: 'enc_keys (key pool)' },
    { event: 'key_fetched', peer: p, key_ID: KID[1], reason: 'enc_keys (key pool)' },
  ]);
  t.same(auditFromLogEvent('handshake_started', { epoch: 3, reason: 'time', mode: 'degraded' }, p), [{ event: 'handshake_started', peer: p, epoch: 3, mode: 'degraded', reason: 'time' }]);
  t.same(auditFromLogEvent('handshake_failed', { epoch: 3, reason: 'handshake timeout', mode: 'qkd', failures: 1 }, p), [], 'no key_IDs: not a key event');
  t.same(auditFromLogEvent('handshake_failed', { epoch: 3, reason: 'key_reused', key_IDs: [KID[2]] }, p), [{ event: 'key_discarded', peer: p, key_ID: KID[2], epoch: 3, reason: 'handshake failed: key_reused' }]);
  t.same(auditFromLogEvent('qkd_key_discarded', { key_ID: KID[0], reason: 'handshake no longer in flight' }, p), [{ event: 'key_discarded', peer: p, key_ID: KID[0], reason: 'handshake no longer in flight' }]);
  t.same(auditFromLogEvent('qkd_step_down', { reason: 'enc_keys failed after its retries', cause: 'enc_keys failed: X' }, p), [{ event: 'qkd_step_down', peer: p, mode: 'degraded', reason: 'enc_keys failed after its retries; cause: enc_keys failed: X' }]);
  t.match(auditFromLogEvent('qkd_degraded', { epoch: 2, qkd: 'preferred', lifetime_ms: 60000, recovery_checks: 3 }, p), [{ event: 'qkd_degraded', epoch: 2, mode: 'degraded', reason: /policy qkd preferred, rekey within 60000 ms/ }]);
  t.same(auditFromLogEvent('qkd_restored', { epoch: 4, key_IDs: [KID[1]], good_checks: 3 }, p), [{ event: 'qkd_restored', peer: p, key_ID: KID[1], epoch: 4, mode: 'qkd' }]);
  t.match(auditFromLogEvent('epoch_hard_limit', { epoch: 5, limit: 'time', qkd: 'required', failures: 4 }, p), [{ event: 'epoch_hard_limit', epoch: 5, reason: /hard limit \(time\).*required/ }]);
  t.match(auditFromLogEvent('key_pool_expired', { discarded: 2, peerSaeId: p }, p), [{ event: 'pool_keys_zeroized', reason: /^2 pooled key/ }]);
  t.match(auditFromLogEvent('key_pool_closed', { zeroized: 3 }, p), [{ event: 'pool_keys_zeroized', reason: /closed: 3 unused/ }]);
  t.same(auditFromLogEvent('key_pool_closed', { zeroized: 0 }, p), []);
  const ids = ['2f1c7a1e-0000-4000-8000-000000000001', '2f1c7a1e-0000-4000-8000-000000000002'];
  t.same(
    auditFromLogEvent('key_pool_closed', { zeroized: 2, keyIds: ids }, p),
    ids.map((key_ID) => ({ event: 'pool_keys_zeroized', peer: p, key_ID, reason: 'key pool closed: unused key' })),
    'with key_IDs: one record per zeroized key, so each key_fetched has its disposal',
  );
  t.same(auditFromLogEvent('key_pool_expired', { discarded: 1, keyIds: [ids[0]] }, p), [{ event: 'pool_keys_zeroized', peer: p, key_ID: ids[0], reason: 'pooled key older than the maximum key age' }]);
  t.same(auditFromLogEvent('control_up', { conn: 1 }, p), [], 'not a key event');
  // With memory, the zeroization of an evicted or discarded epoch names its key_IDs.
  const m = new AuditLogMapper();
  m.map('epoch_switch', { epoch: 1, key_IDs: [KID[0]], mode: 0, degraded: false, evicted: null, role: 'initiator', why: 'tag_R verified' }, p);
  m.map('epoch_switch', { epoch: 2, key_IDs: [KID[1]], mode: 1, degraded: false, evicted: null }, p);
  const third = m.map('epoch_switch', { epoch: 3, key_IDs: [], mode: 3, degraded: true, evicted: 1, role: 'initiator', why: 'tag_R verified' }, p);
  t.match(third, [
    { event: 'epoch_switch', epoch: 3, mode: 'degraded', reason: 'initiator: tag_R verified' },
    { event: 'epoch_zeroized', epoch: 1, key_ID: KID[0], reason: /evicted when epoch 3 was installed/ },
  ]);
  t.notOk('key_ID' in third[0], 'a degraded epoch has no key_ID');
  m.map('epoch_next', { epoch: 7, key_IDs: [KID[2]], suite: 1, mode: 1 }, p);
  t.match(m.map('epoch_discarded', { epoch: 7, reason: 'initiator HELLO does not name it' }, p), [{ event: 'epoch_zeroized', epoch: 7, key_ID: KID[2], reason: /discarded before use: initiator HELLO/ }]);
  t.match(auditFromLogEvent('epoch_discarded', { epoch: 7, reason: 'r' }, p), [{ event: 'epoch_zeroized', epoch: 7 }], 'stateless: no key_ID');
});

t.test('real sessions: the logs of a rekeying pair and of the preferred ladder give a checkable trail', async (t) => {
  const dir = t.testdir();
  const f = join(dir, 'a.jsonl');
  const tr = AuditTrail.open(f);
  const p = new Pair({ qkd: 'preferred', rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000, recoveryChecks: 1 }, { qkd: 'preferred', rekeyAfterTimeMs: 2_000, hardLimitTimeMs: 20_000 });
  const keys: Buffer[] = [];
  const set = p.kme.set.bind(p.kme);
  p.kme.set = (k: string, v: Buffer) => (keys.push(Buffer.from(v)), set(k, v));
  p.connect();
  p.advance(2_000 * 4 + 100);
  p.encFail = 'QKDGW_E_KMS_EXHAUSTED';
  p.advance(2_000);
  p.encFail = null;
  p.feed(p.A, { type: 'kme-status', storedKeyCount: 5 });
  p.advance(60_000);
  // The shell writes each side's log lines with its peer: A audits peer gw-b, B audits gw-a.
  for (const [side, peer] of [[p.A, 'gw-b'], [p.B, 'gw-a']] as const) for (const l of side.log) tr.observe(l.event, l.fields, peer);
  tr.close();
  t.equal(tr.failures, 0);
  const recs = linesOf(f).map((l) => JSON.parse(l));
  const of = (peer: string, event: string) => recs.filter((r) => r.peer === peer && r.event === event);
  const switches = of('gw-b', 'epoch_switch');
  t.ok(switches.length >= 6, 'initiator epoch switches');
  t.equal(of('gw-a', 'epoch_next').length, of('gw-a', 'epoch_switch').length, 'responder: each epoch derived, then switched');
  t.ok(of('gw-b', 'epoch_zeroized').length >= 4, 'evicted epochs zeroized');
  const zeroizedIds = of('gw-b', 'epoch_zeroized').map((r) => r.key_ID).filter(Boolean);
  const switchedIds = switches.map((r) => r.key_ID).filter(Boolean);
  t.ok(zeroizedIds.length >= 3 && zeroizedIds.every((id) => switchedIds.includes(id)), 'zeroized key_IDs are ones that were used');
  t.equal(of('gw-b', 'qkd_step_down').length, 1);
  t.equal(of('gw-b', 'qkd_degraded').length, 1);
  t.equal(of('gw-b', 'qkd_restored').length, 1);
  t.same(p.kme.size, 0);
  t.ok(keys.length >= 6);
  const text = readFileSync(f, 'utf8');
  t.notOk(keys.some((k) => ['hex', 'base64', 'base64url'].some((enc) => text.includes(k.toString(enc as BufferEncoding)))), 'no key bytes in any encoding');
  t.equal(verifyAuditFile(f).ok, true);
});

t.test('auditingLogger: a tee that passes everything on and audits events of a peer', async (t) => {
  const tr = AuditTrail.open(join(t.testdir(), 'a.jsonl'));
  const mem = new MemoryLogger();
  const root = auditingLogger(mem, tr);
  const peerLog = root.child({ peer: 'gw-b' });
  peerLog.info({ event: 'epoch_switch', epoch: 1, key_IDs: [KID[0]], mode: 0, degraded: false, evicted: null }, 'switch');
  peerLog.child({ component: 'key_pool' }).debug({ event: 'key_pool_fetched', keyIds: [KID[1]] });
  root.info({ event: 'gateway_started' });
  root.info({ event: 'key_pool_fetched', keyIds: [KID[2]] }, 'no peer: not audited');
  root.warn('plain message');
  t.equal(mem.lines.length, 5, 'every line reached the inner logger');
  t.match(mem.lines[0], { level: 'info', peer: 'gw-b', event: 'epoch_switch', msg: 'switch' });
  t.same(tr.head.seq, 3, 'audit_opened + epoch_switch + key_fetched');
  tr.close();
  peerLog.info({ event: 'epoch_switch', epoch: 2, key_IDs: [KID[2]], mode: 1 });
  t.equal(mem.lines.length, 6, 'a closed trail does not stop logging');
  const bad = AuditTrail.open(join(t.testdir(), 'b.jsonl'), { logger: mem });
  t.equal(bad.observe('epoch_switch', { epoch: 1, key_IDs: [KID[0]] }, 'not a valid peer id!'), 0);
  t.equal(bad.failures, 1);
  t.match(mem.lines.at(-1), { level: 'error', event: 'audit_write_failed', audit_event: 'epoch_switch', code: ErrorCodes.AUDIT_FIELD });
  bad.close();
});
