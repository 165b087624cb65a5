import t from 'tap';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import forge from 'node-forge';
import { initPki, spkiSha256, CONTROL_CA_NAME, QKD_CA_NAME } from '../../../src/pki/index.js';
import { isQkdgwError, ErrorCodes } from '../../../src/errors.js';
import { makeTestPki } from '../../helpers/pki.js';

const fcert = (pem: string) => forge.pki.certificateFromPem(pem);
const mode = async (p: string) => (await stat(p)).mode & 0o777;

t.test('both CAs are distinct self-signed roots with CA:true and keyCertSign/cRLSign', async (t) => {
  const pki = await makeTestPki(t);
  const q = new X509Certificate(pki.qkdCa.cert);
  const c = new X509Certificate(pki.controlCa.cert);
  t.equal(q.subject, `CN=${QKD_CA_NAME}`);
  t.equal(c.subject, `CN=${CONTROL_CA_NAME}`);
  t.not(spkiSha256(pki.qkdCa.cert), spkiSha256(pki.controlCa.cert), 'different keys');
  for (const x of [q, c]) {
    t.ok(x.ca, 'CA:true');
    t.ok(x.checkIssued(x) && x.verify(x.publicKey), 'self-signed');
  }
  t.notOk(c.verify(q.publicKey), 'control CA not signed by QKD CA');
  for (const pem of [pki.qkdCa.cert, pki.controlCa.cert]) {
    const f = fcert(pem);
    const ku = f.getExtension('keyUsage') as Record<string, unknown>;
    t.match(ku, { critical: true, keyCertSign: true, cRLSign: true, digitalSignature: false });
    t.match(f.getExtension('basicConstraints'), { cA: true, critical: true });
    t.equal(forge.pki.oids[f.siginfo.algorithmOid], 'sha256WithRSAEncryption');
  }
});

t.test('a gateway cert verifies only against the control CA', async (t) => {
  const pki = await makeTestPki(t);
  const q = new X509Certificate(pki.qkdCa.cert);
  const c = new X509Certificate(pki.controlCa.cert);
  for (const id of ['gw-a', 'gw-b']) {
    const gw = new X509Certificate(pki.gateways[id].cert);
    t.ok(gw.checkIssued(c) && gw.verify(c.publicKey), `${id} chains to the control CA`);
    t.notOk(gw.verify(q.publicKey), `${id} does not verify with the QKD CA`);
    t.notOk(gw.checkIssued(q));
  }
  for (const leaf of [...Object.values(pki.kmes), ...Object.values(pki.saes)]) {
    const x = new X509Certificate(leaf.cert);
    t.ok(x.verify(q.publicKey), 'KME/SAE cert chains to the QKD CA');
    t.notOk(x.verify(c.publicKey), 'KME/SAE cert does not verify with the control CA');
  }
});

t.test('a real TLS 1.3 handshake between gw-a and gw-b succeeds with the control CA and fails with the QKD CA', async (t) => {
  const pki = await makeTestPki(t);
  const handshake = async (clientCa: string): Promise<string> => {
    const server = tls.createServer({
      cert: pki.gateways['gw-a'].cert,
      key: pki.gateways['gw-a'].key,
      ca: pki.controlCa.cert,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    server.on('secureConnection', (s) => s.end());
    server.on('tlsClientError', () => undefined);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          cert: pki.gateways['gw-b'].cert,
          key: pki.gateways['gw-b'].key,
          ca: clientCa,
          minVersion: 'TLSv1.3',
          // protocol.md s2: gateways check the SAN URI themselves, not DNS names.
          checkServerIdentity: (_h, cert) =>
            cert.subjectaltname === 'URI:urn:qkdgw:gw-a' ? undefined : new Error('bad identity'),
        });
        s.on('secureConnect', () => {
          resolve('ok');
          s.destroy();
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    } finally {
      server.close();
    }
  };
  t.equal(await handshake(pki.controlCa.cert), 'ok');
  t.not(await handshake(pki.qkdCa.cert), 'ok', 'the QKD CA does not vouch for a gateway');
});

t.test('SAN, EKU, CN, key usage and validity of every leaf', async (t) => {
  const before = Date.now();
  const pki = await makeTestPki(t);
  for (const id of ['gw-a', 'gw-b']) {
    const x = new X509Certificate(pki.gateways[id].cert);
    t.equal(x.subject, `CN=${id}`);
    t.equal(x.subjectAltName, `URI:urn:qkdgw:${id}`, 'exactly one SAN URI, no DNS');
    t.same([...(x.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth + clientAuth');
    const s = new X509Certificate(pki.saes[id].cert);
    t.equal(s.subject, `CN=${id}`);
    t.equal(s.subjectAltName, `URI:urn:etsi:qkd:sae:${id}`);
    t.same(s.keyUsage, ['1.3.6.1.5.5.7.3.2'], 'clientAuth only');
  }
  for (const id of ['KME_A', 'KME_B']) {
    const x = new X509Certificate(pki.kmes[id].cert);
    t.equal(x.subject, `CN=${id}`);
    t.equal(x.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    t.same(x.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');
    t.ok(x.checkIP('127.0.0.1') && x.checkIP('::1') && x.checkHost('localhost'));
  }
  const leaves = [...Object.values(pki.kmes), ...Object.values(pki.saes), ...Object.values(pki.gateways)];
  const serials = new Set<string>();
  for (const l of leaves) {
    const f = fcert(l.cert);
    t.match(f.getExtension('basicConstraints'), { cA: false });
    t.match(f.getExtension('keyUsage'), { digitalSignature: true, keyEncipherment: true, keyCertSign: false });
    t.equal(forge.pki.oids[f.siginfo.algorithmOid], 'sha256WithRSAEncryption');
    t.equal((f.publicKey as forge.pki.rsa.PublicKey).n.bitLength(), 2048);
    t.ok(parseInt(f.serialNumber.slice(0, 2), 16) < 0x80 && f.serialNumber.length === 32, 'positive 16-byte serial');
    serials.add(f.serialNumber);
    // The cache may hold certificates made a little earlier in this process.
    const nb = f.validity.notBefore.getTime();
    t.ok(nb <= before - 3600_000 + 1000 && nb > before - 3600_000 - 600_000, 'notBefore about 1 h back');
    t.equal(f.validity.notAfter.getTime() - nb, 825 * 86400_000 + 3600_000, '825 days from now');
  }
  t.equal(serials.size, leaves.length, 'serials are unique');
});

t.test('spkiSha256 is base64 SHA-256 of the DER SubjectPublicKeyInfo', async (t) => {
  const pki = await makeTestPki(t);
  const der = createPublicKey(pki.saes['gw-a'].key).export({ type: 'spki', format: 'der' });
  const want = createHash('sha256').update(der).digest('base64');
  t.equal(spkiSha256(pki.saes['gw-a'].cert), want);
  t.equal(want.length, 44);
  t.throws(() => spkiSha256('not a cert'), { code: ErrorCodes.CERT });
});

t.test('initPki: modes, layout, hosts, refusal to overwrite, force', async (t) => {
  const root = t.testdir();
  const outDir = join(root, 'fresh', 'pki');
  const layout = await initPki({
    outDir,
    gateways: ['SAE_MAD_A'],
    kmes: ['KME_MAD'],
    saes: ['SAE_MAD_A', 'SAE_X'],
    hosts: ['kme.example', '10.1.2.3'],
    validityDays: 30,
  });
  t.equal(await mode(outDir), 0o700, 'outDir created 0700');
  t.ok(isAbsolute(layout.outDir) && isAbsolute(layout.qkdCa.key));
  t.same(Object.keys(layout.saes), ['SAE_MAD_A', 'SAE_X']);
  t.equal(layout.gateways.SAE_MAD_A.cert, join(outDir, 'gw-SAE_MAD_A.pem'));
  t.equal(layout.kmes.KME_MAD.key, join(outDir, 'kme-KME_MAD.key'));
  const pairs = [layout.qkdCa, layout.controlCa, layout.kmes.KME_MAD, layout.saes.SAE_MAD_A, layout.saes.SAE_X, layout.gateways.SAE_MAD_A];
  for (const p of pairs) {
    t.equal(await mode(p.key), 0o600, `${p.key} is 0600`);
    t.equal((await mode(p.cert)) & ~0o644, 0, `${p.cert} is at most 0644`);
    t.ok((await mode(p.cert)) & 0o400);
  }
  const kme = new X509Certificate(await readFile(layout.kmes.KME_MAD.cert, 'utf8'));
  t.ok(kme.checkHost('kme.example') && kme.checkIP('10.1.2.3') && kme.checkIP('127.0.0.1'));
  const nb = new Date(kme.validFrom).getTime();
  t.equal(new Date(kme.validTo).getTime() - nb, 30 * 86400_000 + 3600_000);

  // Refusal writes nothing.
  const before = await readFile(layout.saes.SAE_X.cert, 'utf8');
  await t.rejects(initPki({ outDir, gateways: ['SAE_MAD_A'], kmes: ['KME_MAD'], saes: ['SAE_X'] }), {
    code: ErrorCodes.PKI,
    message: /already exists/,
  });
  t.equal(await readFile(layout.saes.SAE_X.cert, 'utf8'), before);

  // force replaces; a key file left at 0644 by someone comes back 0600 (created, not chmod-ed).
  await chmod(layout.saes.SAE_X.key, 0o644);
  await writeFile(join(outDir, 'unrelated.txt'), 'keep');
  const again = await initPki({ outDir, gateways: ['SAE_MAD_A'], kmes: ['KME_MAD'], saes: ['SAE_X'], force: true });
  t.not(await readFile(again.saes.SAE_X.cert, 'utf8'), before, 'replaced');
  t.equal(await mode(again.saes.SAE_X.key), 0o600);
  t.equal(await readFile(join(outDir, 'unrelated.txt'), 'utf8'), 'keep');
});

t.test('initPki rejects bad IDs and hosts before touching the disk', async (t) => {
  const dir = join(t.testdir(), 'never');
  for (const bad of [
    { gateways: ['a/b'], kmes: ['K'] },
    { gateways: ['a'], kmes: ['K', 'K'] },
    { gateways: [''], kmes: ['K'] },
    { gateways: ['a'], kmes: ['K'], saes: ['x'.repeat(65)] },
    { gateways: ['a'], kmes: ['K'], hosts: ['a b'] },
  ]) {
    const e = await initPki({ outDir: dir, ...bad }).catch((x: unknown) => x);
    t.ok(isQkdgwError(e, ErrorCodes.PKI), JSON.stringify(bad));
  }
  await t.rejects(stat(dir), { code: 'ENOENT' });
});
