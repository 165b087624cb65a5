// Issue 5 point 6: the simulator's test-only key ledger records the bytes of every key it
// issues (both copies of a mis-keyed one), in a 0600 file of its own that only the
// simulator opens, and says so loudly; and the gateway code never reads the variable.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileKeyLedger, KEY_LEDGER_ENV, keyLedgerFromEnv, MemoryKeyLedger, readKeyLedgerDir } from '../../../src/kms/simulator/key-ledger.js';
import { ErrorCodes } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { startHarness } from './harness.js';

type Keys = { keys: Array<{ key_ID: string; key: string }> };

t.test('issue5-6 key ledger: every enc_keys key and the mis-keyed slave copy, hex lines in a 0600 file, a warning at start', async (t) => {
  // Not under t.testdir(): the harness's makeTestPki(t) wipes that folder.
  const ledger = mkdtempSync(join(tmpdir(), 'qkdgw-key-ledger-'));
  t.teardown(() => rmSync(ledger, { recursive: true, force: true }));
  process.env[KEY_LEDGER_ENV] = ledger;
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });

  const warn = h.logger.lines.find((l) => l.event === 'key_ledger_enabled');
  t.equal(warn?.level, 'warn', 'the simulator warns that the ledger is on');
  const files = readdirSync(ledger);
  t.equal(files.length, 1, 'one ledger file');
  t.equal(warn?.file, join(ledger, files[0]), 'the warning names it');
  t.equal(statSync(join(ledger, files[0])).mode & 0o777, 0o600, 'mode 0600');

  const a = await h.encKeys('gw-a', 'gw-b', { number: 3 });
  t.equal(a.status, 200);
  const masterCopies = (a.json as Keys).keys.map((k) => Buffer.from(k.key, 'base64'));
  h.sim.control.setFaults({ kme: 'KME_B', mismatchNext: 1 });
  const b = await h.encKeys('gw-a', 'gw-b', { number: 1 });
  const mis = (b.json as Keys).keys[0];
  const slave = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${mis.key_ID}`);
  t.equal(slave.status, 200);
  const slaveCopy = Buffer.from((slave.json as Keys).keys[0].key, 'base64');
  t.notSame(slaveCopy, Buffer.from(mis.key, 'base64'), 'the slave got other bytes (mismatch fault)');

  const got = readKeyLedgerDir(ledger);
  t.same(got.map((k) => k.toString('hex')), [...masterCopies, Buffer.from(mis.key, 'base64'), slaveCopy].map((k) => k.toString('hex')), 'the ledger holds exactly the keys handed out, in order, both copies of the mis-keyed one');
  t.match(readFileSync(join(ledger, files[0]), 'utf8'), /^(?:[0-9a-f]{64}\n){5}$/, 'one lowercase hex key per line');
  t.notOk(h.logger.lines.some((l) => JSON.stringify(l).includes(masterCopies[0].toString('hex'))), 'the warning and other lines hold no key');
});

t.test('issue5-6 key ledger: without the variable nothing is recorded and nothing is said', async (t) => {
  delete process.env[KEY_LEDGER_ENV];
  const h = await startHarness(t, { link: { initialKeyCount: 2 } });
  t.equal((await h.encKeys('gw-a', 'gw-b', { number: 1 })).status, 200);
  t.notOk(h.logger.lines.some((l) => l.event === 'key_ledger_enabled'));
  t.equal(keyLedgerFromEnv({}, new MemoryLogger()), null);
  t.equal(keyLedgerFromEnv({ [KEY_LEDGER_ENV]: '' }, new MemoryLogger()), null, 'empty = unset');
});

t.test('issue5-6 key ledger: an unusable directory stops the simulator rather than record nothing', async (t) => {
  const dir = t.testdir({ 'a-file': 'x' });
  const log = new MemoryLogger();
  for (const [what, value] of [
    ['relative path', 'ledger'],
    ['missing directory', join(dir, 'nope')],
    ['a file', join(dir, 'a-file')],
  ]) {
    t.throws(() => keyLedgerFromEnv({ [KEY_LEDGER_ENV]: value }, log), { code: ErrorCodes.KMS_CONFIG, message: new RegExp(`${KEY_LEDGER_ENV}=.*test-only`) }, what);
  }
  t.equal(log.lines.length, 0, 'no warning when nothing was opened');
  process.env[KEY_LEDGER_ENV] = join(dir, 'nope');
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
  await t.rejects(startHarness(t), { code: ErrorCodes.KMS_CONFIG }, 'startKmeSimulator refuses to start');
});

t.test('issue5-6 key ledger files: created fresh (never reused), ignored neighbours, strict reader', async (t) => {
  const dir = t.testdir({ 'notes.txt': 'deadbeef\n' });
  const a = new FileKeyLedger(dir);
  const b = new FileKeyLedger(dir);
  t.not(a.path, b.path, 'two simulators, two files');
  a.record(Buffer.from('00ff', 'hex'));
  b.record(new Uint8Array([1, 2, 3]).subarray(1));
  a.close();
  a.close();
  t.throws(() => a.record(Buffer.alloc(1)), { code: ErrorCodes.INTERNAL }, 'no use after close');
  b.close();
  t.equal(a.count, 1);
  t.same(readKeyLedgerDir(dir).map((k) => k.toString('hex')).sort(), ['00ff', '0203'], 'both files read, notes.txt ignored, subarray offsets honoured');
  writeFileSync(a.path, 'xyz\n');
  t.throws(() => readKeyLedgerDir(dir), { code: ErrorCodes.INTERNAL, message: /line 1: not a hex key/ });

  const m = new MemoryKeyLedger();
  const src = Buffer.from('abcd', 'hex');
  m.record(src);
  src.fill(0);
  const copy = m.keys();
  t.same(copy.map((k) => k.toString('hex')), ['abcd'], 'the memory ledger keeps its own copy');
  copy[0].fill(0);
  t.same(m.keys()[0].toString('hex'), 'abcd', 'and hands out copies');
  m.wipe();
  t.equal(m.count, 0);
});

t.test('issue5-6 only the simulator reads QKDGW_TEST_KEY_LEDGER: no other source file names it', async (t) => {
  const src = fileURLToPath(new URL('../../../src/', import.meta.url));
  const offenders: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && /QKDGW_TEST_KEY_LEDGER|KEY_LEDGER_ENV|keyLedgerFromEnv/.test(readFileSync(p, 'utf8'))) offenders.push(p.slice(src.length));
    }
  };
  walk(src);
  t.same(offenders.sort(), ['kms/simulator/index.ts', 'kms/simulator/key-ledger.ts', 'kms/simulator/options.ts', 'kms/simulator/server.ts'].sort());
});
