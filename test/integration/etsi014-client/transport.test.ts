/**
 * Connection reuse and deadlines: field report BC-05 (stale keep-alive socket), the total
 * per-call deadline of C30 (stall before headers and mid-body), caller abort and close().
 * Time is driven by a ManualClock; no sleeps.
 */
import t from 'tap';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { testCerts } from './certs.js';
import { sendJson, startMockKme, statusBody, type MockKme } from './mock-kme.js';
import { mockClient, rejects } from './client-helpers.js';

const certs = testCerts();
const KEY = Buffer.alloc(32, 0x5a).toString('base64');

const client = (t: { teardown(fn: () => unknown): void }, kme: MockKme, over: Partial<Etsi014ClientOptions> = {}) => mockClient(t, kme, 'SAE_A', over);


/**
 * undici frees a pipelining-1 connection for the next request in a setImmediate after
 * the response completes; yielding one macrotask turn makes the next call reuse the
 * pooled socket deterministically (an event-loop ordering fact, not a timed wait).
 */
const poolIdle = () => new Promise<void>((r) => setImmediate(r));

let keySeq = 0;
function normalKme(req: { url: string }, res: Parameters<MockKme['handler']>[1]) {
  if (req.url.endsWith('/status')) sendJson(res, 200, statusBody());
  else sendJson(res, 200, { keys: [{ key_ID: `id-${++keySeq}`, key: KEY }] });
}

t.test('BC-05 keep-alive below the KME idle timeout', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  kme.handler = normalKme;
  const c = client(t, kme);
  t.equal(c.keepAliveTimeoutMs, 4000);
  t.ok(c.keepAliveTimeoutMs < 5000, 'pooled sockets are dropped before the KME drops them');
});

t.test('BC-05 KME closes the pooled socket as the next request arrives: one retry on a new connection, no error log', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  const log = new MemoryLogger();
  const c = client(t, kme, { logger: log });
  kme.handler = normalKme;
  await c.status('SAE_B');
  await poolIdle();
  // From now on the KME behaves as if its idle timer had fired on the pooled socket:
  // a request arriving on a reused connection finds it closed.
  kme.handler = (req, res) => {
    if (req.seqOnSocket > 0) req.socket.destroy();
    else normalKme(req, res);
  };
  const [k] = await c.getKeys('SAE_B', { number: 1, sizeBits: 256 });
  t.equal(k.key.length, 32);
  k.key.wipe();
  t.equal(c.socketRetries, 1, 'retried exactly once');
  t.equal(kme.requests.length, 3, 'status, enc_keys on the stale socket, enc_keys on a new one');
  t.equal(kme.requests[1].seqOnSocket, 1);
  t.equal(kme.requests[2].seqOnSocket, 0, 'the retry used a new connection');
  t.same(
    log.lines.filter((l) => l.level === 'error' || l.level === 'warn' || l.level === 'fatal'),
    [],
    'no error-level log',
  );
  t.ok(log.lines.some((l) => l.level === 'debug' && /retrying once on a new connection/.test(String(l.msg))), 'a debug line');
});

t.test('BC-05 idle socket destroyed server-side between calls: the next call still succeeds', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  kme.handler = normalKme;
  const c = client(t, kme);
  await c.status('SAE_B');
  const sock = kme.requests[0].socket;
  const closed = once(sock, 'close');
  sock.destroy();
  await closed;
  const [k] = await c.getKeys('SAE_B', { number: 1, sizeBits: 256 });
  k.key.wipe();
  t.ok(c.socketRetries <= 1);
  t.equal(kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length, 1, 'enc_keys served once: no key drained');
});

t.test('BC-05 retry is capped at one: a flapping KME link cannot drain the pool', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  const c = client(t, kme);
  kme.handler = normalKme;
  await c.status('SAE_B');
  await poolIdle();
  kme.handler = (req) => req.socket.destroy();
  const encKeys = () => kme.requests.filter((r) => r.url.endsWith('/enc_keys')).length;
  const e = await rejects(c.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_CONNECT, e.message);
  t.match(e.message, /closed the connection before answering enc_keys.*retry over a new connection/);
  t.notMatch(e.message, /^ECONNRESET|other side closed$/);
  t.equal(encKeys(), 2, 'the KME saw the request twice: stale socket + one retry');
  t.equal(c.socketRetries, 1);
  const e2 = await rejects(c.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.ok(e2.code === ErrorCodes.KMS_CONNECT || e2.code === ErrorCodes.KMS_TLS, e2.message);
  t.ok(encKeys() <= 4, 'each call: at most one attempt + one retry');
  t.ok(c.socketRetries <= 2);
});

t.test('BC-05 a new connection closed before delivering anything is not retried', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000 });
  const c = client(t, kme);
  kme.handler = (req) => req.socket.destroy();
  const e = await rejects(c.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_TLS, 'on TLS 1.3 this is what a certificate rejection looks like');
  t.match(e.message, /new TLS 1\.3 connection/);
  t.equal(kme.requests.length, 1, 'no second enc_keys: nothing drained');
  t.equal(c.socketRetries, 0);
});

t.test('BC-05 same on TLS 1.2: a new connection closed without answer is KMS_CONNECT, not retried', async (t) => {
  const kme = await startMockKme(t, { keepAliveTimeout: 5000, maxVersion: 'TLSv1.2' });
  const c = client(t, kme);
  kme.handler = (req) => req.socket.destroy();
  const e = await rejects(c.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  t.equal(e.code, ErrorCodes.KMS_CONNECT, e.message);
  t.equal(kme.requests.length, 1);
  t.equal(c.socketRetries, 0);
});

t.test('etsi014-C30 KME that never answers: KMS_TIMEOUT at the total deadline', async (t) => {
  const clock = new ManualClock();
  const kme = await startMockKme(t);
  kme.handler = () => undefined; // stall: no headers
  const c = client(t, kme, { clock, timeoutMs: 5000 });
  const p = rejects(c.status('SAE_B'));
  await kme.waitForRequests(1);
  clock.advance(4999);
  clock.advance(1);
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT);
  t.match(e.message, /within 5000 ms/);
  t.equal(e.details?.retryable, true);
});

t.test('etsi014-C30 KME that stalls mid-body cannot hang the call (one deadline covers the body read)', async (t) => {
  const clock = new ManualClock();
  const kme = await startMockKme(t);
  kme.handler = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 500 });
    res.write('{"keys":[{"key_ID":"stall-1","key":"'); // and never more
  };
  const c = client(t, kme, { clock, timeoutMs: 5000 });
  const headers = new Promise<void>((resolve) => {
    const fn = () => {
      diagnostics.unsubscribe('undici:request:headers', fn);
      resolve();
    };
    diagnostics.subscribe('undici:request:headers', fn);
  });
  const p = rejects(c.getKeys('SAE_B', { number: 1, sizeBits: 256 }));
  await headers; // the client is now reading the body
  clock.advance(5000);
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT, e.message);
});

t.test('etsi014-C30 the real timer also fires (system clock, short deadline)', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = () => undefined;
  const c = client(t, kme, { timeoutMs: 150 });
  const e = await rejects(c.status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT);
});

t.test('caller signal aborts the call with KMS_TIMEOUT; close() fails in-flight calls and later ones', async (t) => {
  const kme = await startMockKme(t);
  kme.handler = () => undefined;
  const c = client(t, kme);
  const ac = new AbortController();
  const p = rejects(c.status('SAE_B', { signal: ac.signal }));
  await kme.waitForRequests(1);
  ac.abort();
  const e = await p;
  t.equal(e.code, ErrorCodes.KMS_TIMEOUT);
  t.match(e.message, /caller deadline/);

  const p2 = rejects(c.status('SAE_B'));
  await kme.waitForRequests(2);
  await c.close();
  t.equal((await p2).code, ErrorCodes.INTERNAL);
  t.equal((await rejects(c.status('SAE_B'))).code, ErrorCodes.INTERNAL);
});

t.test('oversized response body is refused (KMS_PROTOCOL), not buffered without bound', async (t) => {
  const kme = await startMockKme(t);
  const big = 'x'.repeat(2 * 1024 * 1024);
  kme.handler = (_req, res) => sendJson(res, 200, `{"pad":"${big}"}`);
  const e = await rejects(client(t, kme).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_PROTOCOL, e.message);
});
