// check-config looks inside the PEM files: parse, key/cert match, control identity/EKU/CA.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestPki } from '../../helpers/pki.js';
import { checkCertificates, type CertCheckInput } from '../../../src/config/certificates.js';

t.test('certificate table', async (t) => {
  const base = t.testdir();
  const pki = await makeTestPki(t, { dir: join(base, 'pki') });
  const L = pki.layout;
  const good: CertCheckInput = {
    identity: 'gw-a',
    kme: { ca: L.qkdCa.cert, cert: L.saes['gw-a'].cert, key: L.saes['gw-a'].key },
    control: { ca: L.controlCa.cert, cert: L.gateways['gw-a'].cert, key: L.gateways['gw-a'].key },
    initiatorOfSome: true,
    responderOfSome: true,
  };
  t.same(checkCertificates(good), [], 'the PKI from `qkdgw pki init` passes');
  const write = (name: string, text: string) => {
    const p = join(base, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  const junk = write('junk.pem', 'not a certificate\n');
  const noEku = await pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: [] });
  const cases: Array<[string, Partial<CertCheckInput>, string, RegExp]> = [
    ['junk kme.cert', { kme: { ...good.kme, cert: junk } }, 'kme.cert', /not a usable certificate/],
    ['junk kme.key', { kme: { ...good.kme, key: junk } }, 'kme.key', /not a usable private key/],
    ['key of another certificate', { kme: { ...good.kme, key: L.saes['gw-b'].key } }, 'kme.key', /does not belong to kme\.cert/],
    ['control cert of the peer', { control: { ...good.control, cert: L.gateways['gw-b'].cert, key: L.gateways['gw-b'].key } }, 'control.cert', /names identity gw-b, but this gateway is gw-a/],
    ['KME server certificate as control cert', { control: { ...good.control, cert: L.kmes.KME_A.cert, key: L.kmes.KME_A.key } }, 'control.cert', /not a gateway control certificate/],
    ['control cert without EKU', { control: { ...good.control, cert: write('noeku.pem', noEku.cert), key: write('noeku.key', noEku.key) } }, 'control.cert', /clientAuth/],
    ['control.ca = the KME CA', { control: { ...good.control, ca: L.qkdCa.cert } }, 'control.ca', /also the KME CA/],
  ];
  for (const [name, over, field, msg] of cases) {
    const problems = checkCertificates({ ...good, ...over });
    const p = problems.find((x) => x.path.join('.') === field && msg.test(x.message));
    t.ok(p, `${name}: ${field} ${msg}`, { problems });
  }
  const wrongCa = checkCertificates({ ...good, control: { ...good.control, ca: write('other-ca.pem', (await pki.issue('none', { commonName: 'other', ca: true })).cert) } });
  t.ok(wrongCa.some((x) => /not issued by control\.ca/.test(x.message)), 'a control cert from another CA');
});

t.test('check-config reports a missing file and the certificate problems of the files present, together', async (t) => {
  const base = t.testdir();
  const pki = await makeTestPki(t, { dir: join(base, 'pki') });
  const L = pki.layout;
  const { loadGatewayConfig } = await import('../../../src/config/gateway.js');
  const yaml = `identity: gw-a
kme:
  url: https://127.0.0.1:1/api/v1
  ca: ${L.qkdCa.cert}
  cert: ${join(base, 'missing.pem')}
  key: ${L.saes['gw-a'].key}
control:
  ca: ${L.controlCa.cert}
  cert: ${L.gateways['gw-a'].cert}
  key: ${L.saes['gw-a'].key}
peers:
  - identity: gw-b
    control: 127.0.0.1:1
`;
  const file = join(base, 'gw.yaml');
  writeFileSync(file, yaml, { mode: 0o600 });
  let msg = '';
  try {
    loadGatewayConfig(file);
  } catch (e) {
    msg = (e as Error).message;
  }
  t.match(msg, /gw\.yaml:5:\d+: kme\.cert: file not found/, 'the missing file');
  t.match(msg, /control\.key: this private key does not belong to control\.cert/, 'and, in the same report, the swapped control key');
  t.notMatch(msg, /kme\.cert: not a usable/, 'the missing file is not reported twice');
});
