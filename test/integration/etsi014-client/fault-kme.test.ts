/**
 * KME fault tolerance of the real client + Etsi014KeySource against the scriptable mock
 * KME over mTLS (checklist etsi014-C28, C29, C30; field reports BC-02, BC-26):
 * a KME that stalls mid-body, 5xx retried with capped jittered backoff and a bounded
 * count, request bugs and auth failures never retried, an enc_keys whose response was
 * lost re-sent exactly once, exhaustion backed off on its own schedule, and one log line
 * per failed call with a running count.
 *
 * The client runs on the system clock (its per-call deadline is real time, kept short);
 * the KeySource's deadline and backoff run on a DrivenClock, so backoff sleeps cost no
 * real time. Exact backoff values use random() = 0.5 (jitter factor 1.0).
 */
import t from 'tap';
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { Etsi014KeySource, type Etsi014KeySourceOptions } from '../../../src/kms/key-source.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { systemClock } from '../../../src/util/clock.js';
import { testCerts } from './certs.js';
import { DrivenClock, keyContainer, resetMidBody, sendJson, stallMidBody, startMockKme, statusBody, type MockKme, type SeenRequest } from './mock-kme.js';
import { rejects } from './client-helpers.js';

const certs = testCerts();
type T = { teardown(fn: () => unknown): void };

function setup(t: T, kme: MockKme, o: { client?: Partial<Etsi014ClientOptions>; ks?: Etsi014KeySourceOptions } = {}) {
  const log = new MemoryLogger();
  const clock = new DrivenClock();
  const client = new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'SAE_A', timeoutMs: 2000, ...o.client });
  const ks = new Etsi014KeySource(client, { clock, logger: log, random: () => 0.5, ...o.ks });
  t.teardown(() => ks.close());
  const failLines = () => log.lines.filter((l) => l.event === 'kme_call_failed');
  const loud = () => log.lines.filter((l) => l.level === 'warn' || l.level === 'error');
  return { client, ks, clock, log, failLines, loud };
}

const isStatus = (r: SeenRequest) => r.url.endsWith('/status');
const encCount = (kme: MockKme) => kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length;

/** A KME whose status is fine and whose enc_keys is answered by `enc`. */
async function kmeWith(t: Parameters<typeof startMockKme>[0], enc: (req: SeenRequest, res: Parameters<MockKme['handler']>[1], n: number) => void) {
  const kme = await startMockKme(t);
  let n = 0;
  kme.handler = (req, res) => {
    if (isStatus(req)) return sendJson(res, 200, statusBody());
    enc(req, res, ++n);
  };
  return kme;
}

/** Total of a gate wait, which the KeySource takes in slices of at most 250 ms. */
const gateWait = (sleeps: number[]): number => {
  if (!sleeps.every((d) => d <= 250)) throw new Error(`gate slices above 250 ms: ${sleeps.join(', ')}`);
  return sleeps.reduce((a, b) => a + b, 0);
};

t.test('etsi014-C30 a KME that stalls MID-BODY fails with KMS_TIMEOUT within the deadline (real clock)', async (t) => {
  const kme = await kmeWith(t, (_req, res) => stallMidBody(res));
  // the client alone: per-call deadline 400 ms
  const client = new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'SAE_A', timeoutMs: 400 });
  t.teardown(() => client.close());
  let t0 = performance.now();
  const e = await rejects(client.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  let ms = performance.now() - t0;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT, e.message);
  t.ok(ms >= 390 && ms < 1400, `failed after ${Math.round(ms)} ms (deadline 400 ms)`);
  t.equal(e.details?.responseLost, true, 'a cut-off enc_keys counts as possibly served');

  // through the KeySource: one total deadline of 700 ms for the whole getKey (no room for a retry)
  const ks = new Etsi014KeySource(
    new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'SAE_A', timeoutMs: 5000 }),
    { clock: systemClock, getKeyDeadlineMs: 700 },
  );
  t.teardown(() => ks.close());
  const before = encCount(kme);
  t0 = performance.now();
  const e2 = await rejects(ks.getKey('SAE_B'));
  ms = performance.now() - t0;
  t.equal(e2.code, ErrorCodes.KMS_TIMEOUT, e2.message);
  t.ok(ms < 700 + 700, `getKey failed after ${Math.round(ms)} ms (deadline 700 ms)`);
  t.equal(encCount(kme) - before, 1, 'no retry that would not fit the deadline');
});

t.test('etsi014-C28/C30 dec_keys retries (slow 404s) all end within the getKeyById deadline (real clock)', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = (_req, res) => {
    setTimeout(() => sendJson(res, 404, { message: 'key not found' }), 250);
  };
  const ks = new Etsi014KeySource(
    new Etsi014Client({ baseUrl: kme.url, ca: certs.ca, cert: certs.saeA.cert, key: certs.saeA.key, selfSaeId: 'SAE_B' }),
    { clock: systemClock, decKeysAttempts: 10 },
  );
  t.teardown(() => ks.close());
  const t0 = performance.now();
  const e = await rejects(ks.getKeyById('SAE_A', '9b1f3c2e-0000-4000-8000-00000000a001', { deadlineMs: 1000 }));
  const ms = performance.now() - t0;
  t.ok(e.code === ErrorCodes.KMS_KEY_UNAVAILABLE || e.code === ErrorCodes.KMS_TIMEOUT, e.code);
  // 10 attempts of 250 ms plus their backoff would take > 4 s; the margin only absorbs a loaded machine
  t.ok(ms < 1000 + 900, `gave up after ${Math.round(ms)} ms (deadline 1000 ms, retries included)`);
  t.ok(kme.requests.length >= 2 && kme.requests.length <= 4, `${kme.requests.length} dec_keys calls`);
});

t.test('etsi014-C29 5xx is retried with jittered exponential backoff, a bounded number of times', async (t) => {
  for (const status of [500, 502, 503, 504]) {
    const kme = await kmeWith(t, (_req, res) => sendJson(res, status, { message: 'internal error' }));
    const { ks, clock, failLines, loud } = setup(t, kme);
    const r = await clock.drive(() => ks.getKey('SAE_B'));
    const e = r.error as QkdgwError;
    t.equal(e.code, ErrorCodes.KMS_UNAVAILABLE, `${status}: ${e.message}`);
    t.equal(encCount(kme), 3, `${status}: encKeysAttempts = 3 (the first try and 2 retries)`);
    t.same(r.sleeps, [500, 1000], `${status}: 500 ms, then doubled`);
    t.equal(e.details?.attempts, 3);
    t.same(e.details?.errors, [ErrorCodes.KMS_UNAVAILABLE, ErrorCodes.KMS_UNAVAILABLE, ErrorCodes.KMS_UNAVAILABLE]);
    t.equal(failLines().length, 1, `${status}: BC-26 one log line for the whole call`);
    t.equal(loud().length, 1, `${status}: and no other warn/error line`);
    t.match(failLines()[0], { op: 'enc_keys', code: ErrorCodes.KMS_UNAVAILABLE, attempts: 3, consecutiveFailures: 1, totalFailures: 1 });
  }
});

t.test('etsi014-C29 transient then success: the key arrives, spaced retries, no failure line', async (t) => {
  const at: number[] = [];
  let clockRef: DrivenClock | undefined;
  const kme = await kmeWith(t, (_req, res, n) => {
    at.push(clockRef!.now());
    if (n <= 2) return sendJson(res, 503, { message: 'try again' });
    sendJson(res, 200, keyContainer(1).body);
  });
  const { ks, clock, failLines } = setup(t, kme);
  clockRef = clock;
  const r = await clock.drive(() => ks.getKey('SAE_B'));
  t.ok(r.value, 'key obtained');
  t.equal(r.value!.key.length, 32);
  t.equal(encCount(kme), 3);
  t.ok(at[1] - at[0] >= 500 && at[2] - at[1] >= 500, `BC-26 minimum spacing between calls (${at.join(', ')})`);
  t.equal(failLines().length, 0, 'retries inside a successful call log no failure');
  r.value!.key.wipe();
});

t.test('etsi014-C29 400/401/403/404/405/422 and protocol errors are never retried', async (t) => {
  const rows: Array<[number, unknown, string]> = [
    [400, { message: 'bad request' }, ErrorCodes.KMS_REQUEST],
    [400, { message: 'size shall be a multiple of 8' }, ErrorCodes.KMS_CONFIG],
    [401, '', ErrorCodes.KMS_AUTH],
    [403, '<html><h1>Forbidden</h1></html>', ErrorCodes.KMS_AUTH],
    [404, { detail: 'Not Found' }, ErrorCodes.KMS_REQUEST],
    [405, { message: 'method not allowed' }, ErrorCodes.KMS_REQUEST],
    [422, { message: 'Validation error', details: [{ loc: 'number' }] }, ErrorCodes.KMS_REQUEST],
    [200, { keys: [] }, ErrorCodes.KMS_PROTOCOL],
  ];
  for (const [status, body, code] of rows) {
    const kme = await kmeWith(t, (_req, res) => sendJson(res, status, body, typeof body === 'string' ? 'text/html' : 'application/json'));
    const { ks, clock, failLines } = setup(t, kme);
    const r = await clock.drive(() => ks.getKey('SAE_B'));
    t.equal((r.error as QkdgwError).code, code, `${status} ${JSON.stringify(body)}`);
    t.equal(encCount(kme), 1, `${status}: one request, no retry`);
    t.same(r.sleeps, [], 'no backoff');
    t.equal(failLines().length, 1);
    t.equal(failLines()[0].level, 'error', 'not a transient condition: error level');
    // and no gate: the next call goes out at once (nothing to wait for)
    const r2 = await clock.drive(() => ks.getKey('SAE_B'));
    t.equal((r2.error as QkdgwError).code, code);
    t.same(r2.sleeps, []);
    t.equal(failLines()[1]?.consecutiveFailures, 2, 'running count');
  }
});

t.test('etsi014-C29 lost enc_keys response (stall after the request was sent): re-sent exactly once', async (t) => {
  const kme = await kmeWith(t, () => undefined); // never answers enc_keys
  const { ks, clock, failLines } = setup(t, kme, { client: { timeoutMs: 300 } });
  const r = await clock.drive(() => ks.getKey('SAE_B'));
  const e = r.error as QkdgwError;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT, e.message);
  t.equal(encCount(kme), 2, 'the first send and ONE re-send');
  t.same(r.sleeps, [500]);
  t.equal(failLines().length, 1);
  t.equal(failLines()[0].lostResends, 1);
});

t.test('etsi014-C29 lost enc_keys response (reset mid-body): re-sent once; the lost key is never used', async (t) => {
  let ids: string[] = [];
  const kme = await kmeWith(t, (req, res, n) => {
    if (n === 1) return resetMidBody(req, res); // the KME served key "lost-1" but we never read it
    const c = keyContainer(1, 'good');
    ids = c.ids;
    sendJson(res, 200, c.body);
  });
  const { ks, clock } = setup(t, kme);
  const r = await clock.drive(() => ks.getKey('SAE_B'));
  t.ok(r.value, String(r.error));
  t.equal(r.value!.keyId, ids[0]);
  t.equal(encCount(kme), 2);
  t.notOk(ks.wasUsed('lost-1'), 'the lost key_ID is unknown to us: nobody will ever announce it');
  r.value!.key.wipe();

  // always reset mid-body: exactly two sends
  const kme2 = await kmeWith(t, (req, res) => resetMidBody(req, res));
  const s2 = setup(t, kme2);
  const r2 = await s2.clock.drive(() => s2.ks.getKey('SAE_B'));
  t.equal((r2.error as QkdgwError).code, ErrorCodes.KMS_CONNECT, (r2.error as Error).message);
  t.equal((r2.error as QkdgwError).details?.responseLost, true);
  t.equal(encCount(kme2), 2);
});

t.test('etsi014-C29 lost enc_keys on a stale pooled socket: the BC-05 reconnect IS the one re-send', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  kme.handler = (req, res) => {
    if (isStatus(req)) return sendJson(res, 200, statusBody());
    req.socket.destroy(); // after the request arrived: the response is lost
  };
  const { ks, clock, client, failLines } = setup(t, kme);
  await ks.status('SAE_B'); // the pooled connection has delivered a response
  await new Promise<void>((r) => setImmediate(r)); // undici frees the socket for reuse in a setImmediate
  const r = await clock.drive(() => ks.getKey('SAE_B'));
  const e = r.error as QkdgwError;
  t.ok(e.code === ErrorCodes.KMS_CONNECT || e.code === ErrorCodes.KMS_TLS, e.message);
  t.equal(client.socketRetries, 1, 'the transport reconnected once');
  t.equal(encCount(kme), 2, 'and the KeySource did not send a third time');
  t.same(r.sleeps, []);
  t.equal(failLines().length, 1);
});

t.test('etsi014-C29 exhaustion (503 insufficient) is its own kind: not retried in the call, backed off 1 s, 2 s, 4 s ...', async (t) => {
  const kme = await kmeWith(t, (_req, res) => sendJson(res, 503, { message: 'insufficient key material' }));
  const { ks, clock, failLines } = setup(t, kme);
  const r1 = await clock.drive(() => ks.getKey('SAE_B'));
  t.equal((r1.error as QkdgwError).code, ErrorCodes.KMS_EXHAUSTED);
  t.equal(encCount(kme), 1, 'no retry inside the call');
  t.same(r1.sleeps, []);
  t.equal(failLines()[0].retryInMs, 1000, 'the log line says when the next enc_keys may go');
  // the next rekey attempt right away waits for the exhaustion gate (it fits in its deadline)
  const r2 = await clock.drive(() => ks.getKey('SAE_B'));
  t.same(gateWait(r2.sleeps), 1000, 'waits 1 s at the exhaustion gate (in 250 ms slices: the gate may open early)');
  t.equal(encCount(kme), 2);
  const r3 = await clock.drive(() => ks.getKey('SAE_B'));
  t.same(gateWait(r3.sleeps), 2000);
  // a 400 with such a message is exhaustion too (py-qkd-kme-sim, CreepPork)
  kme.handler = (req, res) => (isStatus(req) ? sendJson(res, 200, statusBody()) : sendJson(res, 400, { message: 'not enough keys available' }));
  const r4 = await clock.drive(() => ks.getKey('SAE_B'));
  t.same(gateWait(r4.sleeps), 4000);
  t.equal((r4.error as QkdgwError).code, ErrorCodes.KMS_EXHAUSTED);
  t.equal(ks.health('SAE_B').consecutiveExhausted, 4);
  t.same(failLines().map((l) => l.consecutiveFailures), [1, 2, 3, 4], 'one line per failure, running count');
});

t.test('BC-26 enc_keys answers 503 "key pool empty" for 10 minutes: bounded, spaced KME calls, one line each, one recovery', async (t) => {
  const at: number[] = [];
  let clockRef: DrivenClock | undefined;
  let healthy = false;
  const kme = await kmeWith(t, (_req, res) => {
    at.push(clockRef!.now());
    if (healthy) return sendJson(res, 200, keyContainer(1, 'ok').body);
    sendJson(res, 503, { message: 'key pool empty' });
  });
  const { ks, clock, failLines, loud, log } = setup(t, kme);
  clockRef = clock;
  // the harshest caller: a rekey attempt every 100 ms, whatever the outcome
  let suppressed = 0;
  let calls = 0;
  const codes = new Set<string>();
  while (clock.now() < 600_000) {
    const r = await clock.drive(() => ks.getKey('SAE_B'));
    calls++;
    const e = r.error as QkdgwError;
    codes.add(e?.code);
    if (e?.details?.suppressed) suppressed++;
    clock.advance(100);
  }
  t.same([...codes], [ErrorCodes.KMS_EXHAUSTED], 'every attempt failed as exhausted (sent or suppressed)');
  const n = at.length;
  // gates 1, 2, 4, 8, 16 s, then every 30 s (random fixed): calls at 0, 1, 3, 7, 15, 31, 61, ..., 601 s
  // (the last attempt started before 600 s waited for its gate) -> 25 calls
  t.ok(n <= 25, `${n} enc_keys calls in 10 minutes (caller tried ${calls} times, ${suppressed} suppressed)`);
  t.ok(n >= 20, 'but the KME is still asked about every 30 s (the tunnel never stops, protocol.md s6)');
  const gaps = at.slice(1).map((x, i) => x - at[i]);
  t.ok(Math.min(...gaps) >= 500, `no two calls within the minimum spacing (smallest gap ${Math.min(...gaps)} ms)`);
  t.ok(Math.max(...gaps) <= 30_000 + 200, `backoff capped at 30 s (largest gap ${Math.max(...gaps)} ms)`);
  t.equal(failLines().length, n, 'exactly one log line per failed KME call, none per suppressed attempt');
  t.equal(loud().length, n, 'and no other warn/error lines');
  t.same(failLines().map((l) => l.consecutiveFailures), Array.from({ length: n }, (_, i) => i + 1), 'with a running count');
  // recovery: the next call that reaches the KME succeeds; exactly one recovery line
  healthy = true;
  clock.advance(30_000);
  const r = await clock.drive(() => ks.getKey('SAE_B'));
  t.ok(r.value, String(r.error));
  r.value?.key.wipe();
  t.equal(at.length, n + 1);
  const rec = log.lines.filter((l) => l.event === 'kme_recovered');
  t.equal(rec.length, 1);
  t.equal(rec[0].failedCalls, n);
  t.equal(ks.health('SAE_B').consecutiveFailures, 0);
});

t.test('BC-26 a suppressed call carries the gate: code of the last failure, retryInMs, no KME request', async (t) => {
  const kme = await kmeWith(t, (_req, res) => sendJson(res, 503, { message: 'insufficient key material' }));
  const { ks, clock } = setup(t, kme, { ks: { exhaustedBackoffMs: 20_000 } });
  await clock.drive(() => ks.getKey('SAE_B'));
  const r = await clock.drive(() => ks.getKey('SAE_B')); // 20 s > 8 s deadline: not waited for
  const e = r.error as QkdgwError;
  t.equal(e.code, ErrorCodes.KMS_EXHAUSTED);
  t.equal(e.details?.suppressed, true);
  t.equal(e.details?.retryInMs, 20_000);
  t.match(e.message, /not sent: backing off 20000 ms/);
  t.equal(encCount(kme), 1);
  t.same(r.sleeps, []);
  t.equal(ks.health('SAE_B').suppressed, 1);
  // status is not held back by the exhaustion gate (it is how recovery is noticed)
  t.same(gateWait((await clock.drive(() => ks.status('SAE_B'))).sleeps), 500, 'only the 500 ms spacing, not the 20 s');
});

t.test('BC-02 / etsi014-C28 dec_keys: 404 three times then 200 still works; transient 503 on dec_keys retried with spacing', async (t) => {
  const ID = '9b1f3c2e-0000-4000-8000-00000000a001';
  const KEY = Buffer.alloc(32, 0x42).toString('base64');
  const kme = await startMockKme(t);
  let n = 0;
  kme.handler = (_req, res) => {
    n++;
    if (n <= 3) return sendJson(res, 404, { message: 'key not found' });
    sendJson(res, 200, { keys: [{ key_ID: ID, key: KEY }] });
  };
  const { ks, clock, failLines } = setup(t, kme);
  const r = await clock.drive(() => ks.getKeyById('SAE_A', ID));
  t.equal(r.value?.keyId, ID);
  t.same(r.sleeps, [100, 200, 400]);
  t.equal(failLines().length, 0);
  r.value?.key.wipe();

  const kme2 = await startMockKme(t);
  let m = 0;
  kme2.handler = (_req, res) => {
    m++;
    if (m <= 2) return sendJson(res, 503, { message: 'busy' });
    sendJson(res, 200, { keys: [{ key_ID: 'k2', key: KEY }] });
  };
  const s2 = setup(t, kme2);
  const r2 = await s2.clock.drive(() => s2.ks.getKeyById('SAE_A', 'k2'));
  t.equal(r2.value?.keyId, 'k2', String(r2.error));
  t.ok(r2.sleeps.every((d) => d >= 500), `spaced by >= 500 ms: ${r2.sleeps.join(', ')}`);
  t.ok(r2.sleeps.reduce((a, b) => a + b, 0) < 3000, 'inside the 3 s deadline');
  r2.value?.key.wipe();

  // never available: key_unavailable after the attempts, one line
  const kme3 = await startMockKme(t);
  kme3.handler = (_req, res) => sendJson(res, 400, { message: 'one or more keys specified are not found on KME' });
  const s3 = setup(t, kme3);
  const r3 = await s3.clock.drive(() => s3.ks.getKeyById('SAE_A', 'never'));
  t.equal((r3.error as QkdgwError).code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(kme3.requests.length, 4);
  t.equal(s3.failLines().length, 1);
  t.equal(s3.failLines()[0].keyId, 'never');
  t.equal(s3.failLines()[0].level, 'warn');
});
