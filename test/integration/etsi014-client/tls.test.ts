/**
 * Transport and identity: checklist C1, C2, C6 and field report BC-04, against mock
 * KMEs on 127.0.0.1 with real mTLS.
 */
import t from 'tap';
import net from 'node:net';
import { once } from 'node:events';
import { Etsi014Client, type Etsi014ClientOptions } from '../../../src/kms/etsi014/index.js';
import { ErrorCodes, isQkdgwError, QkdgwError } from '../../../src/errors.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { testCerts } from './certs.js';
import { sendJson, startMockKme, statusBody, type MockKme } from './mock-kme.js';
import { rejects } from './client-helpers.js';

const certs = testCerts();

function client(t: { teardown(fn: () => unknown): void }, kme: { url: string }, over: Partial<Etsi014ClientOptions> = {}) {
  const c = new Etsi014Client({
    baseUrl: kme.url,
    ca: certs.ca,
    cert: certs.saeA.cert,
    key: certs.saeA.key,
    selfSaeId: 'SAE_A',
    ...over,
  });
  t.teardown(() => c.close());
  return c;
}

const okStatus = (kme: MockKme) => {
  kme.handler = (req, res) => sendJson(res, 200, statusBody({ slave_SAE_ID: 'SAE_B' }));
};


t.test('BC-04 positive: client certificate is presented and the KME sees SAE_A', async (t) => {
  const kme = await startMockKme(t);
  okStatus(kme);
  const c = client(t, kme);
  const s = await c.status('SAE_B');
  t.equal(s.slave_SAE_ID, 'SAE_B');
  t.equal(kme.requests.length, 1);
  t.equal(kme.requests[0].peerCn, 'SAE_A', 'KME saw our SAE certificate CN');
  t.match(kme.requests[0].peerSan, /URI:urn:qkd:sae:SAE_A/);
});

t.test('BC-04 negative: client cert signed by another CA -> KMS_TLS naming the rejection, not ECONNRESET', async (t) => {
  const kme = await startMockKme(t);
  okStatus(kme);
  const c = client(t, kme, { cert: certs.saeAByOtherCa.cert, key: certs.saeAByOtherCa.key });
  const e = await rejects(c.status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS, e.message);
  t.match(e.message, /rejected our SAE client certificate/);
  t.notMatch(e.message, /^ECONNRESET|fetch failed/);
  t.equal(c.socketRetries, 0, 'not mistaken for a stale pooled socket');
  t.equal(kme.requests.length, 0, 'no HTTP request was served');
});

t.test('BC-04 negative: client cert from another CA, KME limited to TLS 1.2 -> KMS_TLS during the handshake', async (t) => {
  const kme = await startMockKme(t, { maxVersion: 'TLSv1.2' });
  okStatus(kme);
  const c = client(t, kme, { cert: certs.saeAByOtherCa.cert, key: certs.saeAByOtherCa.key });
  const e = await rejects(c.status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS, e.message);
  t.match(e.message, /TLS handshake.*client certificate|rejected our SAE client certificate/);
  t.equal(c.socketRetries, 0, 'a handshake rejection is not a stale socket: no retry');
  t.equal(kme.requests.length, 0);
});

t.test('BC-04 negative: key file that does not match the cert is named at load time', async (t) => {
  const e = await rejects(
    (async () =>
      new Etsi014Client({ baseUrl: 'https://127.0.0.1:1/api/v1', ca: certs.ca, cert: certs.saeA.cert, key: certs.strayKey, selfSaeId: 'SAE_A' }))(),
  );
  t.equal(e.code, ErrorCodes.KMS_CONFIG);
  t.match(e.message, /key .*does not match the SAE client certificate/);
});

t.test('BC-04 negative: server cert SAN kme.example, URL host is an IP, no serverName -> KMS_TLS hostname mismatch', async (t) => {
  const kme = await startMockKme(t, { serverCert: certs.kmeNamed });
  okStatus(kme);
  const e = await rejects(client(t, kme).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS);
  t.match(e.message, /does not match the expected KME identity "127\.0\.0\.1"/);
  t.equal(kme.requests.length, 0);
  // with serverName set to the certificate's name the same KME is accepted
  const ok = await client(t, kme, { serverName: 'kme.example' }).status('SAE_B');
  t.equal(ok.source_KME_ID, 'KME_A');
});

t.test('etsi014-C1 KME cert from an unknown CA aborts before any HTTP request', async (t) => {
  const kme = await startMockKme(t, { serverCert: certs.kmeByOtherCa });
  okStatus(kme);
  const e = await rejects(client(t, kme).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS);
  t.match(e.message, /does not chain to the configured CA/);
  t.equal(kme.requests.length, 0);
});

t.test('etsi014-C1 SPKI pin: right pin accepted, wrong pin aborts before any request', async (t) => {
  const kme = await startMockKme(t);
  okStatus(kme);
  await client(t, kme, { spkiSha256: certs.spkiSha256(certs.kme.cert) }).status('SAE_B');
  t.equal(kme.requests.length, 1);
  const e = await rejects(client(t, kme, { spkiSha256: `sha256:${certs.spkiSha256(certs.kmeNamed.cert)}` }).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS);
  t.match(e.message, /pin/);
  t.equal(kme.requests.length, 1, 'the pinned-out call sent nothing');
  t.throws(() => client(t, kme, { spkiSha256: 'not-a-pin' }), { code: ErrorCodes.KMS_CONFIG });
});

t.test('etsi014-C1 KME limited to TLS 1.1 is refused (TLS >= 1.2)', async (t) => {
  let kme: MockKme;
  try {
    kme = await startMockKme(t, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
  } catch {
    t.pass('this OpenSSL cannot even configure TLS 1.1; nothing to test');
    return;
  }
  okStatus(kme);
  const e = await rejects(client(t, kme).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS, e.message);
  t.equal(kme.requests.length, 0);
});

t.test('etsi014-C2 there is no way to disable KME certificate verification', async (t) => {
  const kme = await startMockKme(t, { serverCert: certs.kmeByOtherCa });
  okStatus(kme);
  const sneaky = { rejectUnauthorized: false, insecure: true, checkServerIdentity: () => undefined } as unknown as Partial<Etsi014ClientOptions>;
  const e = await rejects(client(t, kme, sneaky).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_TLS);
  t.equal(kme.requests.length, 0);
  t.throws(() => client(t, { url: 'http://127.0.0.1:1/api/v1' }), { code: ErrorCodes.KMS_CONFIG }, 'http:// refused');
});

t.test('etsi014-C6 HTTP/1.1 over ALPN http/1.1, JSON content type on POST, charset=utf-8 accepted', async (t) => {
  const kme = await startMockKme(t, { ALPNProtocols: ['h2', 'http/1.1'] });
  kme.handler = (req, res) => {
    if (req.url.endsWith('/status')) sendJson(res, 200, statusBody(), 'application/json; charset=utf-8');
    else sendJson(res, 200, { keys: [{ key_ID: 'k-1', key: Buffer.alloc(32, 7).toString('base64') }] }, 'application/json;charset=UTF-8');
  };
  const c = client(t, kme);
  await c.status('SAE_B');
  const [k] = await c.getKeys('SAE_B', { number: 1, sizeBits: 256 });
  t.equal(k.keyId, 'k-1');
  k.key.wipe();
  for (const r of kme.requests) {
    t.equal(r.httpVersion, '1.1');
    t.equal(r.alpn, 'http/1.1', 'never h2');
  }
  t.equal(kme.requests[0].method, 'GET');
  t.equal(kme.requests[1].method, 'POST');
  t.equal(kme.requests[1].headers['content-type'], 'application/json');
  t.same(kme.requests[1].json, { number: 1, size: 256 });
});

t.test('refused port -> KMS_CONNECT', async (t) => {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const e = await rejects(client(t, { url: `https://127.0.0.1:${port}/api/v1` }).status('SAE_B'));
  t.equal(e.code, ErrorCodes.KMS_CONNECT);
  t.match(e.message, /ECONNREFUSED/);
  t.equal(e.details?.retryable, true);
});

t.test('plain TCP server that is not TLS -> KMS_TLS, not a hang', async (t) => {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => undefined); // the client resets it
    s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as net.AddressInfo).port;
  const e = await rejects(client(t, { url: `https://127.0.0.1:${port}/api/v1` }, { timeoutMs: 2000 }).status('SAE_B'));
  t.ok(isQkdgwError(e));
  t.equal(e.code, ErrorCodes.KMS_TLS, e.message);
  for (const s of socks) s.destroy();
  srv.close();
});

t.test('client logs nothing at error level on a healthy call', async (t) => {
  const kme = await startMockKme(t);
  okStatus(kme);
  const log = new MemoryLogger();
  await client(t, kme, { logger: log }).status('SAE_B');
  t.same(
    log.lines.filter((l) => l.level === 'error' || l.level === 'warn'),
    [],
  );
});
