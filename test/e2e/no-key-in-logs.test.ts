// Issue 5 point 6 (BC-39's kind: key bytes in a log line): every byte of log output of the
// real processes (kme-sim + gw-b + gw-a, stdout and stderr, at trace level) and of an
// in-process lab (MemoryLogger, i.e. before pino's redaction) is searched for the hex and
// base64 of every key the simulator issued, as recorded by its test-only key ledger
// (QKDGW_TEST_KEY_LEDGER). Any hit fails. The runs include rekeys and a mis-keyed epoch
// (checklist S34: the KME hands gw-b other bytes), the error path where a key would most
// tempt someone to log it.
import t from 'tap';
import { createServer, connect, type Socket } from 'node:net';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { makeTestPki } from '../helpers/pki.js';
import { startLabProcesses } from '../../src/cli/demo/lab-processes.js';
import { KEY_LEDGER_ENV, readKeyLedgerDir } from '../../src/kms/simulator/key-ledger.js';
import { makeLogger } from '../../src/daemon/logger.js';
import { base64Core, describeLeaks, findKeyLeaks, findRawKeys, keyNeedles, memoryLogText, RawOutput } from '../helpers/key-leak.js';
import { startLab, until } from '../helpers/lab.js';
import { kmeSection } from '../integration/lifecycle/helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('issue5-6 the leak finder finds a planted key in every encoding, embedded at any alignment, and nothing in clean text', async (t) => {
  const keys = [randomBytes(32), randomBytes(32), randomBytes(64)];
  const k = keys[1];
  const other = randomBytes(32);
  t.ok(keyNeedles(keys).filter((n) => n.encoding !== 'byte list').every((n) => n.text.length >= 20), 'every text needle is >= 20 characters (>= 120 bits)');
  const line = (v: string): string => JSON.stringify({ level: 30, time: '2026-01-01T00:00:00.000Z', event: 'x', key_ID: randomUUID(), detail: v });
  const plants: Array<[string, string, RegExp]> = [
    ['hex', `${randomBytes(5).toString('hex')}${k.toString('hex')}${randomBytes(3).toString('hex')}`, /^hex$/],
    ['HEX', k.toString('hex').toUpperCase(), /^HEX$/],
    ['util.inspect of a Buffer', inspect(Buffer.concat([randomBytes(3), k])), /^separated hex$/],
    ['colon-separated fingerprint', k.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:'), /^separated hex$/],
    ['base64 padded', k.toString('base64'), /^base64@0$/],
    ['base64 unpadded', k.toString('base64').replace(/=+$/, ''), /^base64@0$/],
    // (A key whose base64 has no + or / has one needle for both alphabets: base64@0.)
    ['base64url', k.toString('base64url'), /^base64(url)?@0$/],
    ['base64url padded', `${k.toString('base64url')}=`, /^base64(url)?@0$/],
    ['Buffer JSON', JSON.stringify({ b: k }), /^byte list$/],
    ['Uint8Array JSON', JSON.stringify({ u: new Uint8Array(k) }), /^byte list$/],
    ['Buffer JSON inside a longer buffer', JSON.stringify({ b: Buffer.concat([randomBytes(9), k, randomBytes(4)]) }), /^byte list$/],
    ['first 16 bytes in hex', k.subarray(0, 16).toString('hex'), /^hex$/],
    ['last 16 bytes in base64', k.subarray(16).toString('base64'), /^base64@0$/],
  ];
  // The key inside a longer base64 blob: every prefix length 0..5 (alignments 0, 1, 2, 0, 1, 2).
  for (let p = 0; p < 6; p++) {
    const blob = Buffer.concat([randomBytes(p), k, randomBytes(7)]);
    plants.push([`base64 of ${p} bytes + key + 7 bytes`, `prefix:${blob.toString('base64')}`, new RegExp(`^base64@${p % 3}$`)]);
    plants.push([`base64url of ${p} bytes + key + 7 bytes`, blob.toString('base64url'), new RegExp(`^base64(url)?@${p % 3}$`)]);
  }
  for (const [what, v, enc] of plants) {
    const hits = findKeyLeaks(keys, { log: `${line('clean')}\n${line(v)}\n` });
    t.ok(hits.some((h) => h.key === 1 && h.line === 2 && enc.test(h.encoding)), `${what}: found (${hits.map((h) => `${h.encoding}/${h.part}`).join(', ') || 'no hit'})`);
    t.ok(hits.every((h) => h.key === 1), `${what}: no other key reported`);
  }
  // 3 key bytes after 1 byte: bits 8..32 of the blob; characters 2, 3, 4 (bits 12..30) are the key's alone.
  t.same(base64Core(Buffer.from([0xff, 0xff, 0xff]), 1), '///', 'alignment 1: only the characters that depend on key bits alone');
  t.same(base64Core(Buffer.from([0xff, 0xff, 0xff]), 0), '////', 'alignment 0: all four');
  t.same(base64Core(Buffer.from([0xff, 0xff, 0xff, 0xff]), 2), '/////', 'alignment 2: bits 16..48, characters 3..7');
  const clean = [other.toString('hex'), other.toString('base64'), JSON.stringify({ b: other }), randomUUID(), sha(k), sha(other)].map(line).join('\n');
  t.same(findKeyLeaks(keys, { clean }), [], 'text with other keys, UUIDs and hashes of the key: no hit');
  t.same(findRawKeys(keys, { out: Buffer.concat([randomBytes(100), k.subarray(16), randomBytes(9)]) }), ['key #1 (last 16 bytes) raw in out'], 'raw bytes of half a key');
  t.same(findRawKeys(keys, { out: Buffer.from(clean) }), [], 'raw: nothing in clean output');

  // Through a real pino logger: a key under an innocent field name is printed, and found.
  const out: string[] = [];
  const log = makeLogger({ level: 'trace', name: 't', dest: { write: (s: string) => void out.push(s) } });
  log.debug({ event: 'kme_answer', body: JSON.stringify({ keys: [{ key_ID: randomUUID(), key: k.toString('base64') }] }) });
  t.ok(findKeyLeaks(keys, { pino: out.join('') }).length > 0, 'a key in free text is not redacted (fields only), and the finder sees it');
});

t.test('issue5-6 no key bytes in any log: kme-sim + gw-b + gw-a as processes at trace level, rekeys and a mis-keyed epoch', async (t) => {
  const dir = t.testdir({ ledger: {} });
  const ledger = join(dir, 'ledger');
  process.env[KEY_LEDGER_ENV] = ledger;
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
  // The PKI generated once per process is shared with the in-process test below.
  const pki = await makeTestPki(t, { dir: join(dir, 'pki') });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  const raw = new RawOutput();
  const lab = await startLabProcesses(
    {
      dir,
      pki: pki.layout,
      target: { host: '127.0.0.1', port: (target.address() as { port: number }).port },
      rekeyAfterTime: '1s',
      rekeyJitter: '0s',
      hardLimitTime: '30s',
      handshakeTimeout: '2s',
      logLevel: 'trace',
      simAdmin: true,
      kmePool: 0,
      retryBackoffMin: '200ms',
      retryBackoffMax: '1s',
    },
    (c) => raw.attach(c),
  );
  t.teardown(() => lab.stop());
  const { sim, gwA: a, gwB: b } = lab;
  await a.waitFor((l) => l.event === 'epoch_switch', 20_000, 'first epoch');

  // A flow runs the whole time, so records are sealed and opened under every epoch.
  const s: Socket = connect({ host: '127.0.0.1', port: lab.servicePort, allowHalfOpen: true });
  const sent = createHash('sha256');
  const back = createHash('sha256');
  s.on('data', (c: Buffer) => back.update(c));
  const ended = new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve());
    s.once('error', reject);
  });
  let pumping = true;
  const pump = (): void => {
    if (!pumping) return;
    const c = randomBytes(32 * 1024);
    sent.update(c);
    s.write(c);
    setTimeout(pump, 50);
  };
  pump();

  await a.waitFor((l) => l.event === 'epoch_switch' && Number(l.epoch) >= 2, 10_000, 'a rekey');
  // KME_B (gw-b's) hands gw-b other bytes for the next key: key confirmation fails (S34).
  const armed = await fetch(`${lab.adminUrl}/admin/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kme: 'KME_B', mismatchNext: 1 }) });
  t.equal(armed.status, 200, 'mis-keying armed through the admin endpoint');
  const failed = await a.waitFor((l) => l.event === 'handshake_failed', 10_000, 'the mis-keyed handshake to fail');
  await a.waitFor((l) => l.event === 'epoch_switch' && Number(l.epoch) > Number(failed.epoch), 10_000, 'an epoch after the mis-keyed one');
  pumping = false;
  s.end();
  await ended;
  t.equal(back.digest('hex'), sent.digest('hex'), 'the flow came back intact');

  await a.stop();
  await b.stop();
  await sim.stop();
  for (const c of [a, b, sim]) t.equal(c.exited?.code, 0, `${c.name} exits 0`);

  const keys = readKeyLedgerDir(ledger);
  const encIds = sim.events('kme_delivery').filter((l) => l.side === 'enc').flatMap((l) => l.key_IDs as string[]);
  t.ok(keys.length >= 4, `the ledger holds ${keys.length} keys`);
  t.equal(keys.length, encIds.length + 1, 'the ledger holds every key enc_keys issued, plus the mis-keyed copy');
  t.ok(sim.events('key_ledger_enabled').length === 1, 'the simulator warned that the ledger is on');
  t.equal(a.events('key_ledger_enabled').length + b.events('key_ledger_enabled').length, 0, 'the gateways know nothing of it');

  const texts = raw.texts();
  const bytes = Object.values(texts).reduce((n, x) => n + x.length, 0);
  // (Nothing logs at trace yet; debug is the most the code has.)
  t.ok(texts['gw-a.stdout'].includes('"level":20') && texts['gw-b.stdout'].includes('"level":20'), 'the gateways logged at debug level');
  const hits = findKeyLeaks(keys, texts);
  t.same(hits, [], `no key in ${bytes} bytes of output of 3 processes${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
  t.same(findRawKeys(keys, raw.bytes()), [], 'nor as raw bytes');
  t.comment(`checked ${keys.length} keys against ${bytes} bytes of log output`);
  // The second fence never had to act: nothing was logged under a secret field name or as bytes.
  for (const [name, text] of Object.entries(texts)) t.notMatch(text, /\[REDACTED\]|\[binary \d+ bytes\]|\[KeyObject /, `${name}: redaction never triggered`);
});

t.test('issue5-6 no key bytes in any log: in-process lab, every MemoryLogger line (before redaction), rekeys and a mis-keyed epoch', async (t) => {
  // Not under t.testdir(): startLab's makeTestPki(t) wipes that folder.
  const ledger = mkdtempSync(join(tmpdir(), 'qkdgw-key-ledger-'));
  t.teardown(() => rmSync(ledger, { recursive: true, force: true }));
  process.env[KEY_LEDGER_ENV] = ledger;
  t.teardown(() => void delete process.env[KEY_LEDGER_ENV]);
  const lab = await startLab(t, {
    rekeyAfterTime: '1s',
    rekeyJitter: '0s',
    handshakeTimeout: '1s',
    hardLimitTime: '10s',
    grace: '2s',
    policy: { retry_backoff_min: '200ms', retry_backoff_max: '1s' },
    editA: kmeSection({ pool: 0 }),
  });
  await lab.ready();
  const switches = (): number => lab.logA.lines.filter((l) => l.event === 'epoch_switch').length;
  await until(() => switches() >= 2, 10_000, 'a rekey');
  lab.sim.control.setFaults({ kme: 'KME_B', mismatchNext: 1 });
  await until(() => lab.logA.lines.some((l) => l.event === 'handshake_failed'), 10_000, 'the mis-keyed handshake to fail');
  const n = switches();
  await until(() => switches() > n, 10_000, 'the next epoch');
  await lab.stop();

  const keys = readKeyLedgerDir(ledger);
  t.equal(keys.length, lab.sim.stats().encDelivered + 1, `the ledger holds every key issued plus the mis-keyed copy (${keys.length})`);
  const texts = { 'gw-a': memoryLogText(lab.logA.lines), 'gw-b': memoryLogText(lab.logB.lines) };
  t.ok(lab.logA.lines.length > 20 && lab.logB.lines.length > 20, `both gateways logged (${lab.logA.lines.length} + ${lab.logB.lines.length} lines)`);
  const hits = findKeyLeaks(keys, texts);
  t.same(hits, [], `no key in the gateways' log lines${hits.length ? `:\n${describeLeaks(hits)}` : ''}`);
});
