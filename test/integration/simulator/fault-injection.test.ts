// etsi014-S37 fault injection, observed by an ETSI 014 client over real mTLS sockets.
import https from 'node:https';
import t from 'tap';
import { fromB64Strict } from '../../../src/util/bytes.js';
import { ErrorCodes } from '../../../src/errors.js';
import { MSG_INJECTED_503, STALL_CONTENT_LENGTH } from '../../../src/kms/simulator/index.js';
import { startHarness, type Harness } from './harness.js';

const msSince = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = process.hrtime.bigint();
  const value = await fn();
  return { value, ms: msSince(start) };
}

const stored = async (h: Harness): Promise<number> => (await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).json.stored_key_count;

t.test('etsi014-S37 latency delays each answer of the chosen KME by at least latencyMs', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  // Warm both keep-alive connections so the measurement holds no TLS handshake.
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).status, 200);
  t.equal((await h.call(1, 'gw-b', 'GET', '/keys/gw-a/status')).status, 200);

  const latency = 400;
  const st = h.sim.control.setFaults({ kme: 'KME_A', latencyMs: latency });
  t.equal(st.faults.KME_A.latencyMs, latency);
  t.equal(st.faults.KME_B.latencyMs, 0, 'kme: KME_A leaves KME_B alone');

  const status = await timed(() => h.call(0, 'gw-a', 'GET', '/keys/gw-b/status'));
  t.equal(status.value.status, 200, 'a delayed answer is still a normal answer');
  t.ok(status.ms >= latency, `status on KME_A took ${status.ms.toFixed(1)} ms >= ${latency} ms`);
  const enc = await timed(() => h.encKeys('gw-a', 'gw-b', { number: 1 }));
  t.equal(enc.value.status, 200);
  t.ok(enc.ms >= latency, `enc_keys on KME_A took ${enc.ms.toFixed(1)} ms >= ${latency} ms`);
  const onB = await timed(() => h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${enc.value.json.keys[0].key_ID}`));
  t.equal(onB.value.status, 200);
  t.ok(onB.ms < latency, `KME_B is not delayed (${onB.ms.toFixed(1)} ms)`);
  t.equal(h.sim.control.state().injected.KME_A.latency, 2);

  h.sim.control.setFaults({ latencyMs: 0 });
  const after = await timed(() => h.call(0, 'gw-a', 'GET', '/keys/gw-b/status'));
  t.ok(after.ms < latency, `latency 0 removes the delay (${after.ms.toFixed(1)} ms)`);
});

t.test('etsi014-S37 latency: a client that gives up first finds the key consumed on the master side, as with a slow real KME', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 3 } });
  h.sim.control.setFaults({ kme: 'KME_A', latencyMs: 300 });
  const got = await new Promise<string>((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: h.sim.kmes[0].port,
        method: 'POST',
        path: '/api/v1/keys/gw-b/enc_keys',
        headers: { 'content-type': 'application/json' },
        agent: false,
        ca: h.pki.qkdCa.cert,
        cert: h.certs['gw-a'].cert,
        key: h.certs['gw-a'].key,
      },
      () => resolve('response'),
    );
    req.setTimeout(50, () => {
      req.destroy();
      resolve('timeout');
    });
    req.on('error', () => undefined);
    req.end('{}');
  });
  t.equal(got, 'timeout', 'the client timed out before the answer');
  // The delayed request is still handled once its delay is over: wait for that real event.
  const rec = await new Promise<{ side: string }>((resolve) => h.sim.once('delivery', resolve));
  t.equal(rec.side, 'enc');
  h.sim.control.setFaults({ latencyMs: 0 });
  t.equal(await stored(h), 2);
});

t.test('etsi014-S37 stallMidBody: headers and part of the body arrive, the body never completes, the client gives up', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  h.sim.control.setFaults({ stallMidBody: true });
  const idleMs = 300;
  const start = process.hrtime.bigint();
  const seen = await new Promise<{ status: number; length: string | undefined; body: string; ended: boolean; gaveUpAfter: number }>((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: h.sim.kmes[0].port,
      method: 'POST',
      path: '/api/v1/keys/gw-b/enc_keys',
      headers: { 'content-type': 'application/json' },
      agent: false,
      ca: h.pki.qkdCa.cert,
      cert: h.certs['gw-a'].cert,
      key: h.certs['gw-a'].key,
    });
    req.on('response', (res) => {
      let body = '';
      let ended = false;
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => (ended = true));
      res.on('error', () => undefined);
      // The client's own idle timeout (a real socket event) is how it gives up.
      req.setTimeout(idleMs, () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], body, ended, gaveUpAfter: msSince(start) });
      });
    });
    req.on('error', (e) => {
      if (!req.destroyed) reject(e);
    });
    req.end(JSON.stringify({ number: 1 }));
  });
  t.equal(seen.status, 200, 'the status line and headers arrived');
  t.equal(seen.length, String(STALL_CONTENT_LENGTH), 'a Content-Length that is never reached');
  t.ok(seen.body.length > 0 && seen.body.length < STALL_CONTENT_LENGTH, `part of the body arrived (${seen.body.length} bytes)`);
  t.throws(() => JSON.parse(seen.body), 'the partial body is not a complete JSON document');
  t.equal(seen.ended, false, 'the body never completed');
  t.ok(seen.gaveUpAfter >= idleMs, 'the client gave up on its idle timeout');

  const st = h.sim.control.state();
  t.same(st.requests.KME_A.enc_keys, { stalled: 1 }, 'counted as stalled, not as an answer');
  t.equal(st.injected.KME_A.stall, 1);
  h.sim.control.setFaults({ stallMidBody: false });
  t.equal(await stored(h), 5, 'nothing was consumed by the stalled requests');
  t.equal((await h.encKeys('gw-a', 'gw-b')).status, 200, 'normal again once cleared');
});

t.test('etsi014-S37 status503: the next N requests answer 503 and consume nothing; always holds until cleared', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  h.sim.control.setFaults({ status503: 2 });
  for (let i = 0; i < 2; i++) {
    const r = await h.encKeys('gw-a', 'gw-b', { number: 1 });
    t.equal(r.status, 503, `request ${i + 1}: 503`);
    t.equal(r.headers['content-type'], 'application/json');
    t.same(r.json, { message: MSG_INJECTED_503 });
  }
  t.equal(h.sim.control.state().faults.KME_A.status503, 0, 'the count ran down');
  t.equal(h.sim.control.state().faults.KME_B.status503, 2, 'KME_B has its own count');
  t.equal(await stored(h), 5, 'the third request passes, and the 503s consumed nothing');
  const r = await h.call(1, 'gw-b', 'GET', '/keys/gw-a/status');
  t.equal(r.status, 503, 'KME_B answers its first request with 503 too');

  h.sim.control.setFaults({ kme: 'KME_A', status503: 'always' });
  for (let i = 0; i < 5; i++) t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).status, 503);
  t.equal(h.sim.control.state().faults.KME_A.status503, 'always');
  // 401 is decided before faults: an unknown SAE still gets 401 without a body.
  const stranger = await h.call(0, 'stranger', 'GET', '/keys/gw-b/status');
  t.equal(stranger.status, 401);
  t.equal(stranger.text, '');
  h.sim.control.setFaults({ kme: 'KME_A', status503: 0 });
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).status, 200);
  const st = h.sim.control.state();
  t.same(st.requests.KME_A.enc_keys, { 503: 2 });
  t.same(st.requests.KME_A.status, { 200: 2, 401: 1, 503: 5 });
  t.equal(st.injected.KME_A.status503, 7);
});

t.test('etsi014-S37 mismatchNext: the slave gets other bytes under the same key_ID; the next key is equal again', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10 } });
  h.sim.control.setFaults({ kme: 'KME_B', mismatchNext: 1 });
  const enc = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  t.equal(enc.status, 200);
  const ids = enc.json.keys.map((k: { key_ID: string }) => ({ key_ID: k.key_ID }));
  const dec = await h.call(1, 'gw-b', 'POST', '/keys/gw-a/dec_keys', { body: { key_IDs: ids } });
  t.equal(dec.status, 200);
  const master = enc.json.keys.map((k: { key: string }) => fromB64Strict(k.key));
  const slave = dec.json.keys.map((k: { key: string }) => fromB64Strict(k.key));
  t.equal(dec.json.keys[0].key_ID, enc.json.keys[0].key_ID, 'same key_ID');
  t.equal(slave[0].length, master[0].length, 'same length');
  t.notOk(slave[0].equals(master[0]), 'first key: DIFFERENT bytes on the slave side');
  t.ok(slave[1].equals(master[1]), 'second key of the same request: equal (the count is per key)');
  const next = await h.encKeys('gw-a', 'gw-b');
  const nextDec = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${next.json.keys[0].key_ID}`);
  t.equal(nextDec.json.keys[0].key, next.json.keys[0].key, 'the next key is equal again');
  const st = h.sim.control.state();
  t.equal(st.faults.KME_B.mismatchNext, 0, 'counted down on KME_B, the KME that delivered the wrong copy');
  t.equal(st.injected.KME_B.mismatch, 1);
  t.equal(st.injected.KME_A.mismatch, 0);
  t.match(h.logger.lines.find((l) => l.event === 'kme_fault_injected' && l.fault === 'mismatch'), { kme: 'KME_B', master_kme: 'KME_A', key_ID: enc.json.keys[0].key_ID });
  // The other direction is untouched: a KME_A fault would act on keys for slaves at KME_A.
  h.sim.control.setFaults({ kme: 'KME_A', mismatchNext: 1 });
  const ab = await h.encKeys('gw-a', 'gw-b');
  const abDec = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${ab.json.keys[0].key_ID}`);
  t.equal(abDec.json.keys[0].key, ab.json.keys[0].key, 'KME_A mismatch does not touch keys delivered by KME_B');
  const ba = await h.encKeys('gw-b', 'gw-a');
  const baDec = await h.call(0, 'gw-a', 'GET', `/keys/gw-b/dec_keys?key_ID=${ba.json.keys[0].key_ID}`);
  t.not(baDec.json.keys[0].key, ba.json.keys[0].key, 'but the next key KME_A delivers to its slave differs');
  t.notOk(JSON.stringify(h.logger.lines).includes(enc.json.keys[0].key), 'no key bytes in any log line');
});

t.test('etsi014-S37 setFaults refuses unknown members, wrong types and unknown KMEs, changing nothing', async (t) => {
  const h = await startHarness(t);
  const before = h.sim.control.state().faults;
  const bad: Array<[unknown, RegExp]> = [
    [{ latency: 5 }, /faults\.latency: unknown member/],
    [{ latency_ms: 5 }, /did you mean latencyMs\?/],
    [{ latencyMs: '5' }, /faults\.latencyMs: must be an integer/],
    [{ latencyMs: -1 }, /faults\.latencyMs/],
    [{ latencyMs: 1.5 }, /faults\.latencyMs/],
    [{ stallMidBody: 1 }, /faults\.stallMidBody: must be true or false/],
    [{ status503: 'sometimes' }, /faults\.status503: .*"always"/],
    [{ mismatchNext: true }, /faults\.mismatchNext/],
    [{ kme: 'KME_X', latencyMs: 1 }, /faults\.kme: must be one of the KME IDs "KME_A", "KME_B"/],
    [[1], /faults: must be a JSON object/],
    [{ latencyMs: 5, bogus: 1 }, /faults\.bogus/],
  ];
  for (const [input, re] of bad) {
    t.throws(() => h.sim.control.setFaults(input as never), { code: ErrorCodes.KMS_CONFIG, message: re }, JSON.stringify(input));
  }
  t.same(h.sim.control.state().faults, before, 'a refused setting changed nothing, not even its valid members');
});
