import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { issueCertificate, spkiSha256 } from '../../../src/pki/index.js';
import { ErrorCodes } from '../../../src/errors.js';
import { makeTestPki } from '../../helpers/pki.js';

t.test('issueCertificate makes odd certificates for tests: wrong CA, wrong SAN, wrong EKU, expired', async (t) => {
  const pki = await makeTestPki(t);
  const qkd = new X509Certificate(pki.qkdCa.cert);
  const control = new X509Certificate(pki.controlCa.cert);

  const wrongCa = await pki.issue('qkd', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: ['serverAuth', 'clientAuth'] });
  const x1 = new X509Certificate(wrongCa.cert);
  t.ok(x1.verify(qkd.publicKey) && !x1.verify(control.publicKey), 'gateway-looking cert under the QKD CA');

  const dnsSan = await pki.issue('control', { commonName: 'gw-a', dnsNames: ['gw-a'], uris: ['urn:qkdgw:gw-a', 'urn:qkdgw:gw-x'] });
  t.equal(new X509Certificate(dnsSan.cert).subjectAltName, 'DNS:gw-a, URI:urn:qkdgw:gw-a, URI:urn:qkdgw:gw-x');

  const serverOnly = await pki.issue('qkd', { commonName: 'gw-a', extKeyUsage: ['serverAuth'] });
  t.same(new X509Certificate(serverOnly.cert).keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const noEku = await pki.issue('qkd', { commonName: 'gw-a' });
  t.equal(new X509Certificate(noEku.cert).keyUsage, undefined, 'no EKU extension at all');

  const expired = await pki.issue('qkd', {
    commonName: 'old',
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2021-01-01T00:00:00Z'),
  });
  const x2 = new X509Certificate(expired.cert);
  t.equal(new Date(x2.validTo).toISOString(), '2021-01-01T00:00:00.000Z');
  t.ok(x2.verify(qkd.publicKey));

  const rogueRoot = await issueCertificate({ commonName: 'rogue CA', ca: true, keyPem: (await pki.issue('none', { commonName: 'x' })).key });
  const rogueLeaf = await pki.issue('none', { commonName: 'gw-a', issuer: rogueRoot, uris: ['urn:qkdgw:gw-a'] });
  const x3 = new X509Certificate(rogueLeaf.cert);
  t.ok(x3.verify(new X509Certificate(rogueRoot.cert).publicKey));
  t.notOk(x3.verify(control.publicKey));
  t.equal(x3.issuer, 'CN=rogue CA');
});

t.test('issueCertificate: self-signed by default, odd subject characters survive, facts returned', async (t) => {
  const pki = await makeTestPki(t);
  const odd = 'SAE a/b %c_é';
  const c = await pki.issue('qkd', { commonName: odd, extKeyUsage: ['clientAuth'] });
  const x = new X509Certificate(c.cert);
  t.equal(x.subject, `CN=${odd}`);
  t.equal(x.issuer, new X509Certificate(pki.qkdCa.cert).subject);
  const r = await issueCertificate({ commonName: 'self', keyPem: c.key });
  const xs = new X509Certificate(r.cert);
  t.ok(xs.verify(xs.publicKey) && xs.issuer === 'CN=self', 'self-signed');
  t.equal(r.spkiSha256, spkiSha256(c.cert), 'same key, same pin');
  t.equal(r.serialHex, xs.serialNumber.toLowerCase());
});

t.test('issueCertificate rejects bad input with QKDGW_E_PKI', async (t) => {
  const pki = await makeTestPki(t);
  await t.rejects(pki.issue('qkd', { commonName: '' }), { code: ErrorCodes.PKI });
  await t.rejects(pki.issue('qkd', { commonName: 'x', ipAddresses: ['999.1.1.1'] }), { code: ErrorCodes.PKI });
  await t.rejects(
    pki.issue('qkd', { commonName: 'x', notBefore: new Date(2000, 1), notAfter: new Date(1999, 1) }),
    { code: ErrorCodes.PKI },
  );
  await t.rejects(
    pki.issue('none', { commonName: 'x', issuer: { cert: pki.qkdCa.cert, key: pki.controlCa.key } }),
    { code: ErrorCodes.PKI, message: /does not match/ },
  );
  await t.rejects(pki.issue('none', { commonName: 'x', issuer: { cert: 'junk', key: pki.qkdCa.key } }), { code: ErrorCodes.PKI });
});
