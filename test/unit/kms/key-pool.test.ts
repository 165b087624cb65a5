/**
 * KeyPool (src/kms/key-pool.ts) against a scriptable fake KeySource, time on a
 * ManualClock: prefetch/take/refill, one enc_keys in flight at most, clamping to the KME
 * status, each key handed out once, zeroization on close/expiry, status polling every
 * 10 s and consecutiveGoodChecks (protocol.md s6 `preferred`), forecasts and their events,
 * refill backoff (BC-26). `flush()` lets already-settled promise chains run (one
 * macrotask turn: the fake source does no I/O), it does not wait for time to pass.
 */
import t from 'tap';
import { KeyPool, type KeyPoolEvent, type KeyPoolOptions, type KeyPoolSource } from '../../../src/kms/key-pool.js';
import type { KmeStatus, QkdKey } from '../../../src/kms/etsi014/types.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { SecretBytes } from '../../../src/util/secret.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

async function rejects(p: Promise<unknown>): Promise<QkdgwError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof QkdgwError) return e;
    throw e;
  }
  throw new Error('expected a rejection');
}

const status = (over: Partial<KmeStatus> = {}): KmeStatus => ({
  source_KME_ID: 'KME_A',
  target_KME_ID: 'KME_B',
  master_SAE_ID: 'SAE_A',
  slave_SAE_ID: 'SAE_B',
  key_size: 256,
  stored_key_count: 1000,
  max_key_count: 10_000,
  max_key_per_request: 128,
  max_key_size: 1024,
  min_key_size: 64,
  max_SAE_ID_count: 0,
  ...over,
});

interface Held {
  n: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** Fake KeySource: getKeys delivers `n` fresh keys at once (auto) or when released (hold). */
class FakeSource implements KeyPoolSource {
  made: QkdKey[] = [];
  encCalls: Array<{ n: number; deadlineMs?: number }> = [];
  statusCalls = 0;
  inFlight = 0;
  maxInFlight = 0;
  hold = false;
  held: Held[] = [];
  /** thrown by the next getKeys calls (one per call) */
  encErrors: unknown[] = [];
  /** when set, every getKeys throws it */
  encAlways: (() => unknown) | null = null;
  st: KmeStatus = status();
  statusError: (() => unknown) | null = null;
  #seq = 0;

  #make(n: number): QkdKey[] {
    const out: QkdKey[] = [];
    for (let i = 0; i < n; i++) {
      const s = ++this.#seq;
      const k = { keyId: `key-${s}`, key: SecretBytes.from(Buffer.alloc(32, s & 0xff)) };
      this.made.push(k);
      out.push(k);
    }
    return out;
  }

  async getKeys(_peer: string, n: number, opts: { deadlineMs?: number } = {}): Promise<QkdKey[]> {
    this.encCalls.push({ n, deadlineMs: opts.deadlineMs });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.encAlways) throw this.encAlways();
      if (this.encErrors.length) throw this.encErrors.shift();
      if (this.hold) {
        await new Promise<void>((resolve, reject) => this.held.push({ n, resolve, reject }));
      }
      return this.#make(n);
    } finally {
      this.inFlight--;
    }
  }

  async status(): Promise<KmeStatus> {
    this.statusCalls++;
    if (this.statusError) throw this.statusError();
    return { ...this.st };
  }

  release(): void {
    this.held.shift()?.resolve();
  }
}

const unavailable = () => new QkdgwError(ErrorCodes.KMS_UNAVAILABLE, 'KME server error (HTTP 503)', { retryable: true });
const exhausted = () => new QkdgwError(ErrorCodes.KMS_EXHAUSTED, 'KME key material exhausted (HTTP 503): insufficient key material', { retryable: true });

function makePool(over: Partial<KeyPoolOptions> = {}, src = new FakeSource()) {
  const clock = new ManualClock();
  const events: KeyPoolEvent[] = [];
  const log = new MemoryLogger();
  const pool = new KeyPool({ source: src, peerSaeId: 'SAE_B', clock, logger: log, random: () => 0.5, onEvent: (e) => events.push(e), ...over });
  const named = (n: string) => events.filter((e) => e.event === n);
  return { pool, src, clock, events, named, log };
}

t.test('prefetch: start() reads status, then fills to target in one enc_keys; take hands out the oldest and refills', async (t) => {
  const { pool, src } = makePool({ target: 4 });
  pool.start();
  await flush();
  t.equal(src.statusCalls, 1);
  t.same(src.encCalls.map((c) => c.n), [4], 'one call for the 4 keys');
  t.equal(pool.stock, 4);
  const k = await pool.take();
  t.equal(k.keyId, 'key-1', 'oldest first');
  await flush();
  t.same(src.encCalls.map((c) => c.n), [4, 1], 'refilled after the take');
  t.equal(pool.stock, 4);
  t.same((await Promise.all([pool.take(), pool.take()])).map((x) => x.keyId), ['key-2', 'key-3']);
  t.equal(src.maxInFlight, 1);
  pool.close();
});

t.test('target 0: no prefetch, every take fetches one key on demand', async (t) => {
  const { pool, src } = makePool({ target: 0 });
  pool.start();
  await flush();
  t.equal(src.encCalls.length, 0, 'nothing fetched ahead');
  const a = await pool.take({ deadlineMs: 2000 });
  const b = await pool.take();
  t.not(a.keyId, b.keyId);
  t.same(src.encCalls, [{ n: 1, deadlineMs: 2000 }, { n: 1, deadlineMs: undefined }], 'the take deadline is passed to the fetch');
  t.equal(pool.stock, 0);
  pool.close();
});

t.test('etsi014-C9 / BC-01 batches are clamped to max_key_per_request and stored_key_count; one enc_keys in flight', async (t) => {
  const src = new FakeSource();
  src.st = status({ max_key_per_request: 1 });
  src.hold = true;
  const { pool } = makePool({ target: 4 }, src);
  pool.start();
  for (let i = 0; i < 4; i++) {
    await flush();
    t.equal(src.held.length, 1, `call ${i + 1}: exactly one enc_keys in flight`);
    src.release();
  }
  await flush();
  t.same(src.encCalls.map((c) => c.n), [1, 1, 1, 1]);
  t.equal(pool.stock, 4);
  t.equal(src.maxInFlight, 1);
  pool.close();

  const src2 = new FakeSource();
  src2.st = status({ stored_key_count: 2 });
  const p2 = makePool({ target: 4 }, src2);
  p2.pool.start();
  await flush();
  t.same(src2.encCalls.map((c) => c.n).slice(0, 2), [2, 1], 'never more than the KME said it stores (less what we took since), at least 1');
  p2.pool.close();

  const src3 = new FakeSource();
  const p3 = makePool({ target: 40, maxBatch: 16 }, src3);
  p3.pool.start();
  await flush();
  t.same(src3.encCalls.map((c) => c.n), [16, 16, 8], 'maxBatch');
  p3.pool.close();
});

t.test('a key is never handed out twice: concurrent takes on a draining pool get distinct keys', async (t) => {
  const src = new FakeSource();
  src.hold = true;
  const { pool } = makePool({ target: 2 }, src);
  pool.start();
  await flush();
  src.release(); // initial 2
  await flush();
  const takes = Array.from({ length: 7 }, () => pool.take());
  for (let i = 0; i < 10; i++) {
    await flush();
    src.release();
  }
  const got = await Promise.all(takes);
  const ids = got.map((k) => k.keyId);
  t.equal(new Set(ids).size, 7, `distinct key_IDs: ${ids.join(',')}`);
  t.equal(new Set(got).size, 7, 'distinct objects');
  t.equal(src.maxInFlight, 1, 'takers joined the one enc_keys in flight');
  for (const k of got) t.notOk(k.key.wiped);
  // every key the source made is either handed out, in the pool, or (after close) wiped
  pool.close();
  for (const k of src.made) t.ok(got.includes(k) ? !k.key.wiped : k.key.wiped, `${k.keyId} handed out xor zeroized`);
});

t.test('etsi014-C32 close(): pooled keys zeroized, waiting and later takes fail, a late refill is zeroized', async (t) => {
  const src = new FakeSource();
  const { pool, log } = makePool({ target: 3 }, src);
  pool.start();
  await flush();
  const pooled = [...src.made];
  t.equal(pooled.length, 3);
  const taken = await pool.take();
  await flush();
  src.hold = true;
  // drain the pool so a take waits on a held refill
  await pool.take();
  await pool.take();
  await pool.take();
  const waiting = pool.take().then(
    () => null,
    (e: QkdgwError) => e,
  );
  await flush();
  t.ok(src.held.length >= 1, 'a refill is in flight');
  pool.close();
  const e = await waiting;
  t.equal(e?.code, ErrorCodes.INTERNAL, 'the waiting take fails at close');
  while (src.held.length) src.release();
  await flush();
  const late = src.made.slice(-src.encCalls.at(-1)!.n);
  for (const k of late) t.ok(k.key.wiped, `late refill key ${k.keyId} zeroized`);
  t.notOk(taken.key.wiped, 'a key already handed out belongs to the caller');
  t.equal((await rejects(pool.take())).code, ErrorCodes.INTERNAL);
  t.equal(pool.stock, 0);
  t.ok(log.lines.some((l) => l.event === 'key_pool_closed'));

  const { pool: p2, src: s2 } = makePool({ target: 4 });
  p2.start();
  await flush();
  p2.close();
  t.equal(s2.made.length, 4);
  for (const k of s2.made) t.ok(k.key.wiped, `${k.keyId} zeroized by close()`);
});

t.test('keys older than maxKeyAgeMs are zeroized (on take and on the status tick) and replaced', async (t) => {
  const { pool, src, clock, named } = makePool({ target: 2, maxKeyAgeMs: 60_000, statusIntervalMs: 10_000 });
  pool.start();
  await flush();
  const first = [...src.made];
  clock.advance(30_000);
  await flush();
  t.equal(named('key_pool_expired').length, 0);
  clock.advance(30_001); // ticks at 40 s, 50 s, 60 s: not expired yet (60 000 is the limit); the 60.001 take
  await flush();
  const k = await pool.take();
  t.ok(first.every((x) => x.key.wiped), 'both old keys zeroized');
  t.notOk(first.includes(k), 'the take got a fresh key, not an expired one');
  t.equal(named('key_pool_expired')[0]?.discarded, 2);
  t.equal(pool.stats().discarded, 2);
  await flush();
  t.equal(pool.stock, 2, 'refilled');
  // on the status tick, without a take
  const second = src.made.filter((x) => !x.key.wiped && x !== k);
  clock.advance(70_000);
  await flush();
  t.ok(second.every((x) => x.key.wiped), 'expired at a status tick');
  t.equal(pool.stock, 2);
  pool.close();
});

t.test('protocol.md s6: status every 10 s; consecutiveGoodChecks counts checks with stored_key_count >= 1', async (t) => {
  const { pool, src, clock, named, log } = makePool({ target: 0 });
  pool.start();
  await flush();
  const tick = async () => {
    clock.advance(10_000);
    await flush();
  };
  t.equal(src.statusCalls, 1);
  t.equal(pool.stats().consecutiveGoodChecks, 1);
  await tick();
  await tick();
  t.equal(src.statusCalls, 3, 'one check per 10 s');
  t.equal(pool.stats().consecutiveGoodChecks, 3);
  t.equal(pool.stats().lastStatusAt, 20_000);
  src.st = status({ stored_key_count: 0 });
  await tick();
  t.equal(pool.stats().consecutiveGoodChecks, 0, 'an empty store resets the count');
  src.st = status({ stored_key_count: 5 });
  await tick();
  t.equal(pool.stats().consecutiveGoodChecks, 1);
  src.statusError = unavailable;
  await tick();
  await tick();
  t.equal(pool.stats().consecutiveGoodChecks, 0, 'a failed check resets the count');
  t.same(
    named('kme_status_failed').map((e) => [e.code, e.consecutiveFailures, e.totalFailures]),
    [
      [ErrorCodes.KMS_UNAVAILABLE, 1, 1],
      [ErrorCodes.KMS_UNAVAILABLE, 2, 2],
    ],
  );
  t.equal(log.lines.filter((l) => l.event === 'kme_status_failed').length, 2, 'BC-26 one line per failed check, with a running count');
  t.equal(pool.stats().lastError?.op, 'status');
  t.equal(pool.stats().kmeStoredKeyCount, 5, 'last known value kept');
  src.statusError = null;
  await tick();
  t.equal(named('kme_status_recovered')[0]?.consecutiveFailures, 2);
  t.equal(pool.stats().consecutiveGoodChecks, 1);
  const checked = named('kme_status_checked').map((e) => e.kmeStoredKeyCount);
  t.same(checked, [1000, 1000, 1000, 0, 5, null, null, 5], 'every check is reported (null when it failed) for the session');
  t.equal(src.statusCalls, 8);
  pool.close();
  clock.advance(60_000);
  t.equal(src.statusCalls, 8, 'no checks after close');
});

t.test('stats: consumption, supply and both dry forecasts; key_forecast_low/ok only on crossings', async (t) => {
  // the KME stores 50 keys and makes none; we take one every 10 s (0.1/s)
  const src = new FakeSource();
  src.st = status({ stored_key_count: 50 });
  const { pool, clock, named } = makePool({ target: 4, rekeyIntervalMs: 120_000, rateMinSpanMs: 10_000 }, src);
  pool.start();
  await flush();
  let s = pool.stats();
  t.equal(s.consumptionPerSec, 0);
  t.equal(s.forecastPoolDrySec, null, 'no consumption: never');
  t.equal(s.forecastKmeDrySec, null);
  t.equal(s.supplyPerSec, null, 'one status reading: unknown');
  let stored = 50 - 4; // the prefetch took 4 out of the KME
  src.st = status({ stored_key_count: stored });
  for (let i = 1; i <= 30; i++) {
    clock.advance(10_000); // status tick at every step
    const k = await pool.take();
    k.key.wipe();
    stored -= 1; // the pool refills one per take from the KME
    src.st = status({ stored_key_count: stored });
    await flush();
  }
  s = pool.stats();
  t.ok(Math.abs(s.consumptionPerSec - 0.1) < 1e-9, `consumption ${s.consumptionPerSec}`);
  t.equal(s.supplyPerSec, 0, 'stored fell exactly by what we fetched: no generation');
  t.ok(Math.abs(s.forecastPoolDrySec! - 40) < 1e-6, `pool: 4 keys at 0.1/s = 40 s (${s.forecastPoolDrySec})`);
  t.equal(s.kmeStoredKeyCount, stored + 1, 'as of the last check');
  t.ok(Math.abs(s.forecastKmeDrySec! - (stored + 1) / 0.1) < 1e-6, `KME: ${s.forecastKmeDrySec}`);
  const low = named('key_forecast_low');
  t.equal(low.length, 1, 'one key_forecast_low, at the crossing below 240 s');
  t.ok(low[0].forecastKmeDrySec! < 240);
  t.equal(low[0].thresholdSec, 240, 'default threshold: 2 x rekey interval');
  t.ok(s.forecastLow);
  t.equal(named('key_forecast_ok').length, 0);
  // the KME starts generating 1 key/s: supply > consumption -> never dry -> ok, once
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000);
    stored += 10;
    src.st = status({ stored_key_count: stored });
    await flush();
  }
  // the supply window still spans the draining phase; it turns positive but not above 0.1
  // until the window holds mostly generation: keep ticking
  for (let i = 0; i < 30 && named('key_forecast_ok').length === 0; i++) {
    clock.advance(10_000);
    stored += 10;
    src.st = status({ stored_key_count: stored });
    await flush();
  }
  t.equal(named('key_forecast_ok').length, 1, 'one key_forecast_ok');
  t.equal(named('key_forecast_low').length, 1, 'no second low');
  t.notOk(pool.stats().forecastLow);
  t.ok(pool.stats().supplyPerSec! > 0.1);
  pool.close();
});

t.test('key_pool_empty and key_pool_refilled: once per empty spell; refill backoff grows and is capped (BC-26)', async (t) => {
  const src = new FakeSource();
  const { pool, clock, named, log } = makePool({ target: 2, refillBackoffMs: 1000, refillBackoffMaxMs: 4000, statusIntervalMs: 600_000 }, src);
  pool.start();
  await flush();
  src.encAlways = exhausted;
  (await pool.take()).key.wipe();
  await flush();
  t.equal(src.encCalls.length, 2, 'the refill after the take failed');
  (await pool.take()).key.wipe();
  t.equal(named('key_pool_empty').length, 1, 'empty when the last key left');
  const e = await rejects(pool.take());
  t.equal(e.code, ErrorCodes.KMS_EXHAUSTED, 'the take gets the fetch error');
  t.equal(named('key_pool_empty').length, 1, 'not again while still empty');
  // background refill retries: 1 s, 2 s, 4 s, 4 s (cap)
  const before = src.encCalls.length;
  const at: number[] = [];
  for (let ms = 0; ms < 15_000; ms += 250) {
    clock.advance(250);
    await flush();
    if (src.encCalls.length > before + at.length) at.push(clock.now());
  }
  const gaps = at.map((x, i) => (i === 0 ? NaN : x - at[i - 1])).slice(1);
  t.ok(gaps.length >= 2, `retries at ${at.join(',')}`);
  for (const g of gaps) t.ok(g >= 1000 && g <= 4000, `gap ${g} within [1 s, 4 s]`);
  t.equal(gaps.at(-1), 4000, 'capped at refillBackoffMaxMs');
  t.ok(named('key_pool_refill_failed').every((x) => x.code === ErrorCodes.KMS_EXHAUSTED));
  t.equal(src.encCalls.at(-1)?.n, 1, 'after an exhausted batch, single keys only');
  t.equal(src.maxInFlight, 1);
  t.equal(log.lines.filter((l) => l.event === 'key_pool_refill_failed' && l.level !== 'debug').length, 0, 'the KeySource logs the failure line, not the pool');
  // recovery
  src.encAlways = null;
  clock.advance(4000);
  await flush();
  await flush();
  t.equal(pool.stock, 2);
  t.equal(named('key_pool_refilled').length, 1);
  t.equal(named('key_pool_empty').length, 1);
  pool.close();
});

t.test('refill honours the KeySource retryInMs hint (a suppressed call says how long the gate stays closed)', async (t) => {
  const src = new FakeSource();
  const { pool, clock } = makePool({ target: 1, statusIntervalMs: 600_000 }, src);
  src.encErrors.push(new QkdgwError(ErrorCodes.KMS_EXHAUSTED, 'not sent: backing off', { suppressed: true, retryInMs: 20_000, retryable: true }));
  pool.start();
  await flush();
  t.equal(src.encCalls.length, 1);
  clock.advance(19_999);
  await flush();
  t.equal(src.encCalls.length, 1, 'no refill before the hint');
  clock.advance(1);
  await flush();
  t.equal(src.encCalls.length, 2);
  t.equal(pool.stock, 1);
  pool.close();
});

t.test('take deadline: waiting on a slow refill ends with KMS_TIMEOUT; the keys still land in the pool', async (t) => {
  const src = new FakeSource();
  src.hold = true;
  const { pool, clock } = makePool({ target: 2 }, src);
  pool.start();
  await flush();
  t.equal(src.held.length, 1);
  const p = pool.take({ deadlineMs: 1500 }).catch((e: QkdgwError) => e);
  await flush();
  clock.advance(1500);
  const e = (await p) as QkdgwError;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT);
  t.match(e.message, /within 1500 ms/);
  t.equal(src.encCalls.length, 1, 'the take did not start a second enc_keys');
  src.release();
  await flush();
  t.equal(pool.stock, 2);
  pool.close();
});

t.test('log lines carry event names and counts, never key bytes', async (t) => {
  const src = new FakeSource();
  const { pool, log, clock } = makePool({ target: 2 }, src);
  pool.start();
  await flush();
  src.encAlways = unavailable;
  await pool.take();
  await pool.take();
  await pool.take().catch(() => undefined);
  clock.advance(10_000);
  await flush();
  pool.close();
  const text = JSON.stringify(log.lines);
  for (const k of src.made) {
    t.notOk(text.includes(Buffer.alloc(32, Number(k.keyId.slice(4)) & 0xff).toString('base64')), 'no key bytes (base64)');
    t.notOk(text.includes(Buffer.alloc(32, Number(k.keyId.slice(4)) & 0xff).toString('hex')), 'no key bytes (hex)');
  }
  const names = new Set(log.lines.map((l) => l.event));
  for (const n of ['key_pool_empty', 'kme_status_checked', 'key_pool_closed']) t.ok(names.has(n), n);
  const empty = log.lines.find((l) => l.event === 'key_pool_empty')!;
  t.equal(empty.level, 'warn');
  t.equal(empty.stock, 0);
  t.equal(empty.target, 2);
});

t.test('options are validated; a throwing listener does not break the pool', async (t) => {
  const src = new FakeSource();
  for (const bad of [{ target: -1 }, { target: 1.5 }, { maxBatch: 0 }, { statusIntervalMs: 0 }, { forecastOkFactor: 0.5 }, { maxKeyAgeMs: -5 }]) {
    t.throws(() => new KeyPool({ source: src, peerSaeId: 'B', ...bad }), { code: ErrorCodes.KMS_CONFIG }, JSON.stringify(bad));
  }
  t.throws(() => new KeyPool({ source: src, peerSaeId: '' }), { code: ErrorCodes.KMS_CONFIG });
  const log = new MemoryLogger();
  const clock = new ManualClock();
  const pool = new KeyPool({ source: src, peerSaeId: 'B', clock, logger: log, target: 1, onEvent: () => {
    throw new Error('listener bug');
  } });
  pool.start();
  await flush();
  t.equal(pool.stock, 1);
  t.ok(log.lines.some((l) => l.event === 'key_pool_listener_failed'));
  t.equal((await pool.take()).keyId, 'key-1');
  pool.close();
});
