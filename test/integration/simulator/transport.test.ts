import t from 'tap';
import https from 'node:https';
import { startHarness, msFor } from './harness.js';

t.test('etsi014-S3 no client certificate or an untrusted one is refused in the TLS handshake', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  for (const as of [null, 'rogue']) {
    for (const fresh of [false, true]) {
      const e = await h.call(0, as, 'GET', '/keys/gw-b/status', { fresh }).then(
        (r) => r,
        (err: NodeJS.ErrnoException) => err,
      );
      t.ok(e instanceof Error, `${as ?? 'no cert'}: no HTTP answer at all`);
      t.match((e as NodeJS.ErrnoException).code ?? '', /ECONNRESET|ERR_SSL|EPIPE/, `${as ?? 'no cert'}: TLS-level failure`);
    }
  }
  const s = h.sim.stats();
  t.equal(s.requests, 0, 'no request reached the HTTP layer');
  t.ok(s.tlsRejected >= 4, 'server counted the refused handshakes');
  t.equal(s.storedKeyCount, 5);
});

t.test('etsi014-S3 a valid but unknown certificate gets 401 with no body on every endpoint', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 5 } });
  const k = (await h.encKeys('gw-a', 'gw-b')).json.keys[0].key_ID as string;
  const cases: Array<[string, string, unknown?]> = [
    ['GET', '/keys/gw-b/status'],
    ['POST', '/keys/gw-b/status', {}],
    ['GET', '/keys/gw-b/enc_keys'],
    ['GET', '/keys/gw-b/enc_keys?number=1'],
    ['POST', '/keys/gw-b/enc_keys', {}],
    ['GET', `/keys/gw-a/dec_keys?key_ID=${k}`],
    ['POST', '/keys/gw-a/dec_keys', { key_IDs: [{ key_ID: k }] }],
    ['DELETE', '/keys/gw-b/enc_keys'],
    ['GET', '/no/such/path'],
  ];
  // `stranger` chains to the QKD CA but is attached to no KME; `gw-b` is a real SAE, but of the other KME.
  for (const as of ['stranger', 'gw-b']) {
    for (const [method, path, body] of cases) {
      const r = await h.call(0, as, method, path, { body });
      t.equal(r.status, 401, `${as} ${method} ${path}`);
      t.equal(r.text, '', 'no body');
      t.equal(r.headers['content-length'], '0');
    }
  }
  t.equal(h.sim.stats().storedKeyCount, 4, 'nothing consumed by the refused calls');
  const slave = await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${k}`);
  t.equal(slave.status, 200, 'the key is still there for its slave');
});

t.test('etsi014-S4 the caller SAE ID comes only from the client certificate (cn mode)', async (t) => {
  const h = await startHarness(t, {
    link: { initialKeyCount: 4 },
    // CN says gw-a, the SAN URI says gw-c: in cn mode this client is gw-a.
    extraCerts: { mixed: { cn: 'gw-a', uris: ['urn:etsi:qkd:sae:gw-c'] } },
  });
  const spoof = { 'x-sae-id': 'gw-c', 'x-ssl-client-s-dn': 'CN=gw-c', 'x-forwarded-client-cert': 'Subject="CN=gw-c"' };
  const st = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status', { headers: spoof });
  t.equal(st.json.master_SAE_ID, 'gw-a', 'headers ignored');
  const enc = await h.call(0, 'gw-a', 'POST', '/keys/gw-b/enc_keys', {
    headers: spoof,
    body: { number: 1, master_SAE_ID: 'gw-c', SAE_ID: 'gw-c' },
  });
  t.equal(enc.status, 200);
  t.equal(h.sim.deliveries.at(-1)?.master, 'gw-a', 'body members ignored');
  const mixed = await h.call(0, 'mixed', 'GET', '/keys/gw-b/status');
  t.equal(mixed.json.master_SAE_ID, 'gw-a', 'CN decides in cn mode');
  // A body/header claiming to be the slave does not let the master fetch its own key as slave.
  const k = enc.json.keys[0].key_ID;
  const steal = await h.call(1, 'gw-c', 'POST', '/keys/gw-a/dec_keys', {
    headers: { 'x-sae-id': 'gw-b' },
    body: { key_IDs: [{ key_ID: k }], SAE_ID: 'gw-b' },
  });
  t.equal(steal.status, 401);
});

t.test('etsi014-S4 san-uri mode reads urn:etsi:qkd:sae:<ID> and ignores the CN', async (t) => {
  const h = await startHarness(t, {
    saeIdFrom: 'san-uri',
    link: { initialKeyCount: 4 },
    extraCerts: {
      mixed: { cn: 'gw-c', uris: ['urn:etsi:qkd:sae:gw-a'] },
      twoUris: { cn: 'gw-a', uris: ['urn:etsi:qkd:sae:gw-a', 'urn:etsi:qkd:sae:gw-c'] },
      noUri: { cn: 'gw-a', uris: ['urn:other:gw-a'] },
    },
  });
  t.equal((await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status')).json.master_SAE_ID, 'gw-a', 'initPki SAE cert works');
  t.equal((await h.call(0, 'mixed', 'GET', '/keys/gw-b/status')).json.master_SAE_ID, 'gw-a', 'SAN URI decides');
  t.equal((await h.call(0, 'twoUris', 'GET', '/keys/gw-b/status')).status, 401, 'two SAE URIs are ambiguous');
  t.equal((await h.call(0, 'noUri', 'GET', '/keys/gw-b/status')).status, 401, 'no SAE URI, no identity');
});

t.test('etsi014-S5 SAE IDs with "/", space and "%" round-trip through percent-encoded paths', async (t) => {
  const master = 'site A/sae%01';
  const slave = 'b/ c%2F';
  const h = await startHarness(t, {
    saes: [[master], [slave]],
    link: { initialKeyCount: 3 },
    extraCerts: { m: { cn: master }, s: { cn: slave } },
  });
  const st = await h.call(0, 'm', 'GET', `/keys/${encodeURIComponent(slave)}/status`);
  t.equal(st.status, 200);
  t.equal(st.json.slave_SAE_ID, slave, 'path decoded');
  t.equal(st.json.master_SAE_ID, master, 'caller from the CN, verbatim');
  const enc = await h.call(0, 'm', 'POST', `/keys/${encodeURIComponent(slave)}/enc_keys`, { body: {} });
  t.equal(enc.status, 200);
  const k = enc.json.keys[0];
  const dec = await h.call(1, 's', 'GET', `/keys/${encodeURIComponent(master)}/dec_keys?key_ID=${k.key_ID}`);
  t.equal(dec.status, 200);
  t.same(dec.json.keys[0], k, 'same key under the decoded master ID');
  const raw = await h.call(0, 'm', 'GET', `/keys/b/ c%2F/status`.replace(' ', '%20'));
  t.equal(raw.status, 404, 'an unencoded "/" splits the path: not an API resource');
  const badPct = await h.call(0, 'm', 'GET', '/keys/%E0%A4%A/status');
  t.equal(badPct.status, 400, 'invalid percent-encoding is a 400');
  t.equal(badPct.headers['content-type'], 'application/json');
});

t.test('keep-alive: connections are reused and the server announces a 5 s idle timeout', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 0 } });
  h.clock.advance(msFor(2));
  const r1 = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status');
  const r2 = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status');
  t.equal(r1.headers.connection, 'keep-alive');
  t.equal(r1.headers['keep-alive'], 'timeout=5');
  t.equal(r2.json.stored_key_count, 2);
  // A second request on a reused (possibly TLS-resumed) connection is still identified.
  t.equal(r2.json.master_SAE_ID, 'gw-a');
});

t.test('etsi014-S4 a resumed TLS session still identifies the caller from its certificate', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 1 } });
  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    // keepAlive off: every request opens a new connection, resuming the cached session.
    const agent = new https.Agent({
      keepAlive: false,
      ca: h.pki.qkdCa.cert,
      cert: h.certs['gw-a'].cert,
      key: h.certs['gw-a'].key,
      maxVersion: version,
    });
    t.teardown(() => agent.destroy());
    const seen: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await h.call(0, 'gw-a', 'GET', '/keys/gw-b/status', { agent });
      t.equal(r.status, 200, `${version} request ${i}`);
      t.equal(r.json.master_SAE_ID, 'gw-a');
      seen.push(r.sessionReused);
    }
    t.ok(seen.slice(1).some(Boolean), `${version}: at least one connection resumed a session`);
  }
});
