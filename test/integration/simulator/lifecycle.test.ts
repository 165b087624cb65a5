import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { resolveKmeSimConfig, startKmeSimulator, LINK_DEFAULTS } from '../../../src/kms/simulator/index.js';
import { sanUrisFromDer, saeIdFromSanUris } from '../../../src/kms/simulator/identity.js';
import { ErrorCodes } from '../../../src/errors.js';
import { makeTestPki } from '../../helpers/pki.js';
import { startHarness } from './harness.js';

t.test('resolveKmeSimConfig: JSON-shaped options get defaults; typos and bad types name their path', async (t) => {
  const ep = (kmeId: string, saes: string[]) => ({ kmeId, cert: 'C', key: 'K', ca: 'A', saes });
  const r = resolveKmeSimConfig({ kmes: [ep('A', ['a']), ep('B', ['b'])] });
  t.same(r.link, LINK_DEFAULTS);
  t.match(r, { saeIdFrom: 'cn', quirks: { exhaustion: '503' }, kmes: [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }] });
  const cases: Array<[unknown, RegExp]> = [
    [null, /\(root\)/],
    [{ kmes: [ep('A', ['a'])] }, /kmes: must list exactly two/],
    [{ kmes: [ep('A', ['a']), { ...ep('B', ['b']), prot: 1 }] }, /kmes\[1\]\.prot: unknown option/],
    [{ kmes: [ep('A', ['a']), { ...ep('B', ['b']), port: 70000 }] }, /kmes\[1\]\.port/],
    [{ kmes: [ep('A', ['a']), ep('B', [''])] }, /kmes\[1\]\.saes\[0\]/],
    [{ kmes: [ep('A', ['a', 'a']), ep('B', ['b'])] }, /kmes\[0\]\.saes: has duplicates/],
    [{ kmes: [ep('A', ['a']), ep('B', ['b'])], link: { keyRateBps: '10k' } }, /link\.keyRateBps/],
    [{ kmes: [ep('A', ['a']), ep('B', ['b'])], saeIdFrom: 'serial' }, /saeIdFrom/],
    [{ kmes: [ep('A', ['a']), ep('B', ['b'])], quirks: { exhaustion: 'short' } }, /quirks\.exhaustion/],
  ];
  for (const [input, re] of cases) t.throws(() => resolveKmeSimConfig(input), { code: ErrorCodes.KMS_CONFIG, message: re });
});

t.test('identity: SAN URIs are read from the DER; exactly one urn:etsi:qkd:sae: URI names the SAE', async (t) => {
  const pki = await makeTestPki(t);
  const der = new X509Certificate(pki.saes['gw-a'].cert).raw;
  t.same(sanUrisFromDer(der), ['urn:etsi:qkd:sae:gw-a']);
  t.same(sanUrisFromDer(new X509Certificate(pki.qkdCa.cert).raw), [], 'no SAN');
  t.equal(sanUrisFromDer(Buffer.from('not der')), null);
  t.equal(saeIdFromSanUris(['urn:x', 'urn:etsi:qkd:sae:a%2Fb%20c']), 'a/b c');
  t.equal(saeIdFromSanUris(['urn:etsi:qkd:sae:a', 'urn:etsi:qkd:sae:b']), null);
  t.equal(saeIdFromSanUris(['urn:etsi:qkd:sae:']), null);
  t.equal(saeIdFromSanUris(['urn:etsi:qkd:sae:%E0%A4%A']), null);
});

t.test('pending keys are bounded: the oldest is dropped with a warning and then is not found', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 10, maxPendingKeys: 3 } });
  const r = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  const r2 = await h.encKeys('gw-a', 'gw-b', { number: 2 });
  const [old] = r.json.keys;
  const warn = h.logger.lines.find((l) => l.event === 'kme_pending_dropped');
  t.match(warn, { level: 'warn', key_IDs: [old.key_ID] });
  t.equal(h.sim.stats().pendingKeyCount, 3);
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${old.key_ID}`)).status, 400);
  t.equal((await h.call(1, 'gw-b', 'GET', `/keys/gw-a/dec_keys?key_ID=${r2.json.keys[1].key_ID}`)).status, 200);
});

t.test('close is idempotent and frees the ports; a busy port fails with QKDGW_E_LISTEN', async (t) => {
  const h = await startHarness(t, { link: { initialKeyCount: 1 } });
  const [a, b] = h.sim.kmes;
  t.match(a, { kmeId: 'KME_A', host: '127.0.0.1', url: `https://127.0.0.1:${a.port}/api/v1` });
  t.equal(b.kmeId, 'KME_B');
  t.not(a.port, b.port);
  const pki = h.pki;
  const kmes = [
    { kmeId: 'KME_C', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['x'] },
    { kmeId: 'KME_D', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['y'], port: b.port },
  ] as const;
  await t.rejects(startKmeSimulator({ kmes: [kmes[0], kmes[1]] }), { code: ErrorCodes.LISTEN });
  await h.sim.close();
  await h.sim.close();
  const again = await startKmeSimulator({ kmes: [kmes[0], kmes[1]] });
  t.equal(again.kmes[1].port, b.port, 'the port is free after close');
  await again.close();
  const v6 = await startKmeSimulator({ kmes: [{ ...kmes[0], host: '::1' }, { ...kmes[1], port: 0 }] }).catch(() => null);
  if (v6) {
    t.match(v6.kmes[0].url, /^https:\/\/\[::1\]:\d+\/api\/v1$/, 'IPv6 hosts are bracketed');
    await v6.close();
  }
});
