/**
 * Etsi014KeySource against a fake client: BC-08 (key_ID reuse), BC-02 / C28 (bounded
 * dec_keys retries inside one deadline), 32-byte check, status freshness. Time is virtual.
 */
import t from 'tap';
import { Etsi014KeySource } from '../../../src/kms/key-source.js';
import type { Etsi014Client } from '../../../src/kms/etsi014/client.js';
import type { KmeStatus, QkdKey } from '../../../src/kms/etsi014/types.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { SecretBytes } from '../../../src/util/secret.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { SteppingClock } from './stepping-clock.js';

const STATUS: KmeStatus = {
  source_KME_ID: 'A',
  target_KME_ID: 'B',
  master_SAE_ID: 'SAE_A',
  slave_SAE_ID: 'SAE_B',
  key_size: 256,
  stored_key_count: 10,
  max_key_count: 100,
  max_key_per_request: 10,
  max_key_size: 1024,
  min_key_size: 64,
  max_SAE_ID_count: 0,
};

type Call = { op: string; args: unknown[]; signal?: AbortSignal };

/** A scriptable stand-in for Etsi014Client: each op pops its next scripted answer. */
class FakeClient {
  timeoutMs = 5000;
  calls: Call[] = [];
  enc: Array<() => QkdKey[] | Promise<QkdKey[]>> = [];
  dec: Array<(signal?: AbortSignal) => QkdKey[] | Promise<QkdKey[]>> = [];
  statusAnswer: () => KmeStatus = () => STATUS;
  closed = false;
  async status(slave: string, call?: { signal?: AbortSignal }) {
    this.calls.push({ op: 'status', args: [slave], signal: call?.signal });
    return this.statusAnswer();
  }
  async getKeys(slave: string, req: unknown, call?: { signal?: AbortSignal }) {
    this.calls.push({ op: 'enc_keys', args: [slave, req], signal: call?.signal });
    const f = this.enc.shift();
    if (!f) throw new Error('no scripted enc_keys answer');
    return f();
  }
  async getKeysWithIds(master: string, ids: string[], opts?: { signal?: AbortSignal; sizeBits?: number }) {
    this.calls.push({ op: 'dec_keys', args: [master, ids, opts?.sizeBits], signal: opts?.signal });
    const f = this.dec.shift();
    if (!f) throw new Error('no scripted dec_keys answer');
    return f(opts?.signal);
  }
  async close() {
    this.closed = true;
  }
  count(op: string) {
    return this.calls.filter((c) => c.op === op).length;
  }
}

const key = (id: string, len = 32, fill = 7): QkdKey => ({ keyId: id, key: SecretBytes.from(Buffer.alloc(len, fill)) });
const unavailable = () => {
  throw new QkdgwError(ErrorCodes.KMS_KEY_UNAVAILABLE, 'KME cannot deliver the requested key_ID(s) yet (HTTP 404): key not found', {
    status: 404,
  });
};

function source(fake: FakeClient, opts: ConstructorParameters<typeof Etsi014KeySource>[1] = {}) {
  return new Etsi014KeySource(fake as unknown as Etsi014Client, { random: () => 0.5, ...opts });
}

async function rejects(p: Promise<unknown>): Promise<QkdgwError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QkdgwError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

t.test('BC-08 the same key_ID on two consecutive enc_keys -> KMS_KEY_REUSED, repeated key zeroized', async (t) => {
  const fake = new FakeClient();
  const id = 'ffffffff-0000-4000-8000-000000000001';
  const second = key(id);
  fake.enc.push(() => [key(id)], () => [second]);
  const log = new MemoryLogger();
  const ks = source(fake, { logger: log });
  const first = await ks.getKey('SAE_B');
  t.equal(first.keyId, id);
  const e = await rejects(ks.getKey('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_KEY_REUSED);
  t.match(e.message, id);
  t.ok(second.key.wiped, 'the repeated key was zeroized');
  t.notOk(first.key.wiped, 'the active key is untouched');
  t.equal(first.key.expose().length, 32);
  t.ok(log.lines.some((l) => l.level === 'error' && l.keyId === id));
});

t.test('BC-08 reuse is detected case-insensitively and across roles', async (t) => {
  const fake = new FakeClient();
  fake.enc.push(() => [key('ABCDEF-1')]);
  const ks = source(fake);
  await ks.getKey('SAE_B');
  // a peer announcing the same key_ID (any case) is refused without asking the KME
  const e = await rejects(ks.getKeyById('SAE_B', 'abcdef-1'));
  t.equal(e.code, ErrorCodes.KMS_KEY_REUSED);
  t.equal(fake.count('dec_keys'), 0);
  // a key fetched as slave is remembered too
  fake.dec.push(() => [key('Slave-Key-1')]);
  await ks.getKeyById('SAE_C', 'Slave-Key-1');
  t.equal((await rejects(ks.getKeyById('SAE_C', 'SLAVE-KEY-1'))).code, ErrorCodes.KMS_KEY_REUSED);
  fake.enc.push(() => [key('slave-key-1')]);
  t.equal((await rejects(ks.getKey('SAE_B'))).code, ErrorCodes.KMS_KEY_REUSED);
  t.ok(ks.wasUsed('AbCdEf-1'));
});

t.test('BC-08 the same key_ID fetched concurrently by two responders is handed out once', async (t) => {
  const fake = new FakeClient();
  let release!: () => void;
  fake.dec.push(() => new Promise<QkdKey[]>((r) => (release = () => r([key('dup')]))));
  const ks = source(fake);
  const p1 = ks.getKeyById('SAE_B', 'dup');
  const e = await rejects(ks.getKeyById('SAE_B', 'DUP'));
  t.equal(e.code, ErrorCodes.KMS_KEY_REUSED);
  release();
  t.equal((await p1).keyId, 'dup');
  t.equal(fake.count('dec_keys'), 1);
});

t.test('BC-08 the key_ID history is bounded (oldest forgotten first)', async (t) => {
  const fake = new FakeClient();
  for (let i = 0; i < 5; i++) fake.enc.push(() => [key(`id-${fake.count('enc_keys')}`)]);
  const ks = source(fake, { keyIdHistory: 3 });
  for (let i = 0; i < 4; i++) await ks.getKey('SAE_B');
  t.notOk(ks.wasUsed('id-1'), 'evicted');
  t.ok(ks.wasUsed('id-2') && ks.wasUsed('id-3') && ks.wasUsed('id-4'));
});

t.test('keys must be exactly 32 bytes; others are zeroized and refused', async (t) => {
  const fake = new FakeClient();
  const short = key('short', 16);
  fake.enc.push(() => [short]);
  const ks = source(fake);
  const e = await rejects(ks.getKey('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_KEY_INVALID);
  t.ok(short.key.wiped);
  t.notOk(ks.wasUsed('short'), 'a refused key does not burn its key_ID');
  t.same(fake.calls.find((c) => c.op === 'enc_keys')?.args, ['SAE_B', { number: 1, sizeBits: 256 }]);
  fake.dec.push(() => [key('x')]);
  await ks.getKeyById('SAE_B', 'x');
  t.equal(fake.calls.find((c) => c.op === 'dec_keys')?.args[2], 256, 'dec_keys asks the client to check 256 bits');
});

t.test('etsi014-C9 getKey reads status first, then again only when older than statusMaxAgeMs', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  for (let i = 0; i < 3; i++) fake.enc.push(() => [key(`s-${fake.count('enc_keys')}`)]);
  const ks = source(fake, { clock, statusMaxAgeMs: 10_000 });
  await ks.getKey('SAE_B');
  await ks.getKey('SAE_B');
  t.same(
    fake.calls.map((c) => c.op),
    ['status', 'enc_keys', 'enc_keys'],
  );
  clock.advance(10_001);
  await ks.getKey('SAE_B');
  t.equal(fake.count('status'), 2);
});

t.test('BC-01 an invalid status blocks the rotation: no enc_keys call', async (t) => {
  const fake = new FakeClient();
  fake.statusAnswer = () => {
    throw new QkdgwError(ErrorCodes.KMS_STATUS_INVALID, 'slave_SAE_ID mismatch');
  };
  const ks = source(fake);
  t.equal((await rejects(ks.getKey('SAE_B'))).code, ErrorCodes.KMS_STATUS_INVALID);
  t.equal(fake.count('enc_keys'), 0);
});

t.test('BC-02 / etsi014-C28 key not found three times, then found: succeeds with 4 attempts inside the deadline', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  const id = '9b1f3c2e-0000-4000-8000-00000000a001';
  fake.dec.push(unavailable, unavailable, unavailable, () => [key(id)]);
  const ks = source(fake, { clock, decKeysAttempts: 4 });
  const p = ks.getKeyById('SAE_A', id);
  t.equal(await clock.nextTimer(), 3000, 'one deadline of 3000 ms for all attempts');
  const delays: number[] = [];
  for (let i = 0; i < 3; i++) {
    const d = await clock.nextTimer();
    delays.push(d);
    clock.advance(d);
  }
  const k = await p;
  t.equal(k.keyId, id);
  t.same(delays, [100, 200, 400], 'exponential backoff (jitter fixed at x1.0)');
  t.ok(clock.now() < 3000, `all within the deadline (${clock.now()} ms)`);
  t.equal(fake.count('dec_keys'), 4);
  t.same(fake.calls[0].args, ['SAE_A', [id], 256], 'master SAE ID and key_ID passed through');
});

t.test('BC-02 / etsi014-C28 default 3 retries: the same KME gives up after 4 attempts, with KMS_KEY_UNAVAILABLE', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  fake.dec.push(unavailable, unavailable, unavailable, unavailable, () => [key('late')]);
  const ks = source(fake, { clock });
  const p = rejects(ks.getKeyById('SAE_A', 'late'));
  await clock.nextTimer(); // deadline
  for (let i = 0; i < 3; i++) clock.advance(await clock.nextTimer());
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(e.details?.attempts, 4);
  t.match(e.message, /after 4 attempt\(s\) within 3000 ms/);
  t.equal(fake.count('dec_keys'), 4);
  t.ok(clock.now() <= 1000, 'C28: retries end well within 1 s');
  t.notOk(ks.wasUsed('late'), 'a key_ID never delivered is not marked used');
});

t.test('BC-02 variant 2: never available -> KMS_KEY_UNAVAILABLE, attempts bounded by the deadline too', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  for (let i = 0; i < 10; i++) fake.dec.push(unavailable);
  const ks = source(fake, { clock, decKeysAttempts: 10, decKeysBackoffMs: 200 });
  const p = rejects(ks.getKeyById('SAE_A', 'never', { deadlineMs: 1000 }));
  t.equal(await clock.nextTimer(), 1000);
  clock.advance(await clock.nextTimer()); // 200
  clock.advance(await clock.nextTimer()); // 400 (t=600); next would be 800 > 400 left
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(fake.count('dec_keys'), 3, 'stopped because the next backoff would pass the deadline');
  t.ok(clock.now() < 1000);
});

t.test('etsi014-C28 the deadline aborts a hanging dec_keys call (signal passed to the client)', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  fake.dec.push(
    (signal) =>
      new Promise<QkdKey[]>((_r, reject) =>
        signal?.addEventListener('abort', () => reject(new QkdgwError(ErrorCodes.KMS_TIMEOUT, 'caller deadline passed'))),
      ),
  );
  const ks = source(fake, { clock });
  const p = rejects(ks.getKeyById('SAE_A', 'hang'));
  t.equal(await clock.nextTimer(), 3000);
  clock.advance(3000);
  t.equal((await p).code, ErrorCodes.KMS_TIMEOUT);
});

t.test('etsi014-C28 only KMS_KEY_UNAVAILABLE is retried', async (t) => {
  const fake = new FakeClient();
  fake.dec.push(() => {
    throw new QkdgwError(ErrorCodes.KMS_AUTH, '401');
  });
  const ks = source(fake);
  t.equal((await rejects(ks.getKeyById('SAE_A', 'k'))).code, ErrorCodes.KMS_AUTH);
  t.equal(fake.count('dec_keys'), 1);
  t.equal((await rejects(ks.getKeyById('SAE_A', 'bad\u0001id'))).code, ErrorCodes.KMS_REQUEST);
  t.equal((await rejects(ks.getKeyById('SAE_A', 'x'.repeat(65)))).code, ErrorCodes.KMS_REQUEST);
});

t.test('getKey passes an abort signal that fires at its deadline', async (t) => {
  const clock = new SteppingClock();
  const fake = new FakeClient();
  fake.enc.push(() => [key('e1')]);
  const ks = source(fake, { clock, getKeyDeadlineMs: 1234 });
  const p = ks.getKey('SAE_B');
  t.equal(await clock.nextTimer(), 1234);
  await p;
  const sig = fake.calls.find((c) => c.op === 'enc_keys')?.signal;
  t.ok(sig && !sig.aborted);
  t.equal(clock.pending, 0, 'deadline timer cancelled after success');
});

t.test('status() and close() delegate', async (t) => {
  const fake = new FakeClient();
  const ks = source(fake);
  t.same(await ks.status('SAE_B'), STATUS);
  await ks.close();
  t.ok(fake.closed);
  t.throws(() => source(fake, { decKeysAttempts: 0 }), { code: ErrorCodes.KMS_CONFIG });
});
