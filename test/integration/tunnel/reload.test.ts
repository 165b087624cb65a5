// BC-07: a reload picks up rotated KME certificates and CA and the new timeout, keeps
// tunnels up, and a bad reload changes nothing.
import t from 'tap';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { makeTestPki } from '../../helpers/pki.js';
import { initPki } from '../../../src/pki/index.js';
import { writeGwAConfig, writeGwBConfig, type LabOptions } from '../../../src/daemon/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { Gateway } from '../../../src/daemon/gateway.js';
import { startKmeSimulator, type KmeSimulator } from '../../../src/kms/simulator/index.js';
import { MemoryLogger } from '../../../src/util/logger.js';

const until = async (pred: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function sim(pki: { kmes: Record<string, { cert: string; key: string }>; qkdCa: { cert: string } }, ports: [number, number] = [0, 0]): Promise<KmeSimulator> {
  return startKmeSimulator({
    link: { initialKeyCount: 50 },
    kmes: [
      { kmeId: 'KME_A', port: ports[0], cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['gw-a'] },
      { kmeId: 'KME_B', port: ports[1], cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['gw-b'] },
    ],
  });
}

t.test('BC-07: rotated SAE certificate, key and KME CA plus a new timeout, applied by reload with tunnels up', async (t) => {
  const base = t.testdir(); // testdir() wipes on each call: take it once
  const pki = await makeTestPki(t, { dir: join(base, 'pki1') });
  const target = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  let sim1: KmeSimulator | null = await sim(pki);
  t.teardown(() => sim1?.close());
  const o: LabOptions = { dir: pki.dir, pki: pki.layout, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '2s', rekeyJitter: '0s', hardLimitTime: '30s' };
  const addr = { kmeAUrl: sim1.kmes[0].url, kmeBUrl: sim1.kmes[1].url };
  const fileB = writeGwBConfig(o, addr);
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(fileB), { logger: logB });
  t.teardown(() => b.stop());
  const fileA = writeGwAConfig(o, { ...addr, controlB: b.addresses.control, dataB: b.addresses.data });
  const logA = new MemoryLogger();
  const a = await Gateway.start(loadGatewayConfig(fileA), { logger: logA });
  t.teardown(() => a.stop());
  const rtA = a.peers.get('gw-b')!;
  await until(() => rtA.sendEpoch() !== null, 10_000, 'first epoch');

  // A stream that must survive everything below.
  const s = connect({ host: '127.0.0.1', port: a.addresses.services.web, allowHalfOpen: true });
  const sent = createHash('sha256');
  const back = createHash('sha256');
  let nBack = 0;
  let nSent = 0;
  s.on('data', (c: Buffer) => {
    back.update(c);
    nBack += c.length;
  });
  let resetSeen = false;
  s.on('error', () => (resetSeen = true));
  const write = () => {
    const c = randomBytes(4096);
    sent.update(c);
    nSent += c.length;
    s.write(c);
  };
  write();

  // Rotate: a new QKD CA, new SAE certificates and keys under the same paths, a KME pair
  // with new server certificates on the same ports, and kme.timeout 5s -> 3s.
  const pki2 = await initPki({ outDir: join(base, 'pki2'), gateways: ['gw-a', 'gw-b'], kmes: ['KME_A', 'KME_B'] });
  const ports: [number, number] = [sim1.kmes[0].port, sim1.kmes[1].port];
  await sim1.close();
  sim1 = null;
  const read = (p: string) => readFileSync(p, 'utf8');
  const sim2 = await sim({ kmes: { KME_A: { cert: read(pki2.kmes.KME_A.cert), key: read(pki2.kmes.KME_A.key) }, KME_B: { cert: read(pki2.kmes.KME_B.cert), key: read(pki2.kmes.KME_B.key) } }, qkdCa: { cert: read(pki2.qkdCa.cert) } }, ports);
  t.teardown(() => sim2.close());
  copyFileSync(pki2.qkdCa.cert, pki.layout.qkdCa.cert);
  for (const id of ['gw-a', 'gw-b']) {
    writeFileSync(pki.layout.saes[id].cert, read(pki2.saes[id].cert));
    writeFileSync(pki.layout.saes[id].key, read(pki2.saes[id].key));
  }
  for (const f of [fileA, fileB]) writeFileSync(f, read(f).replace(/^(kme:\n)/m, '$1  timeout: 3s\n'));

  write();
  const appliedA = await a.reload(loadGatewayConfig(fileA));
  const appliedB = await b.reload(loadGatewayConfig(fileB));
  t.same(appliedA.changed, ['kme'], 'gw-a applied the kme section');
  t.same(appliedB.changed, ['kme']);
  t.ok(appliedA.kme, 'and rebuilt its KME client');
  t.same(appliedA.peers, { kept: ['gw-b'], retuned: [], added: [], rebuilt: [], removed: [] }, 'the tunnel to gw-b was kept');
  t.equal(a.cfg.kme.timeoutMs, 3000, 'the new timeout is in effect');
  t.ok(logA.lines.some((l) => l.event === 'reload_applied'));

  // The next rekey draws its key from the new KME pair with the new certificates.
  const fromSim2 = () => sim2.deliveries.some((d) => d.key_ID === rtA.session.slots.current?.keyIds[0]);
  await until(() => { write(); return fromSim2(); }, 15_000, 'an epoch keyed by the new KME pair');
  t.ok(fromSim2(), 'epoch key_ID delivered by the rotated KME pair');

  // Bad reloads change nothing.
  const before = a.cfg;
  const good = read(fileA);
  writeFileSync(fileA, `${good}crypto:\n  backend: noble\n`);
  await t.rejects(a.reload(loadGatewayConfig(fileA)), { code: 'QKDGW_E_CONFIG_RELOAD', message: /crypto .*restart/ }, 'a backend change needs a restart');
  t.equal(a.cfg, before, 'config unchanged');
  const wrongKey = (await pki.issue('qkd', { commonName: 'gw-a', extKeyUsage: ['clientAuth'] })).cert;
  writeFileSync(fileA, good);
  writeFileSync(pki.layout.saes['gw-a'].cert, wrongKey);
  t.throws(() => loadGatewayConfig(fileA), { code: 'QKDGW_E_CONFIG_INVALID', message: /kme\.key: this private key does not belong to kme\.cert/ }, 'a certificate that does not match its key is refused before reload');
  await t.rejects(a.reload(loadGatewayConfig(fileA, { checkCertificates: false })), { code: 'QKDGW_E_KMS_CONFIG' }, 'and by the reload itself');
  t.equal(a.cfg, before);
  writeFileSync(fileA, '');
  t.throws(() => loadGatewayConfig(fileA), { code: 'QKDGW_E_CONFIG_EMPTY' }, 'a truncated file is refused before reload');

  // The running key source still works: one more rekey on the kept state.
  const n = rtA.session.slots.current!.n;
  await until(() => { write(); return rtA.session.slots.current!.n > n; }, 15_000, 'a rekey after the refused reloads');

  const ended = new Promise<void>((r) => s.once('end', () => r()));
  s.end();
  await ended;
  t.notOk(resetSeen, 'the stream was never reset');
  t.equal(nBack, nSent, 'every byte echoed');
  t.equal(back.digest('hex'), sent.digest('hex'), 'and intact');
});
