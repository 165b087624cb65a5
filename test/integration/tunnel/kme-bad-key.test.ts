// A KME that returns a 16-byte key for a 256-bit request yields a typed error and no epoch
// (BC-03 (a) seen from the gateway): the key never reaches the KDF, nothing is installed.
import t from 'tap';
import { createServer } from 'node:https';
import { createServer as tcpServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { makeTestPki } from '../../helpers/pki.js';
import { writeGwAConfig, writeGwBConfig, type LabOptions } from '../../../src/daemon/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { Gateway } from '../../../src/daemon/gateway.js';
import { MemoryLogger } from '../../../src/util/logger.js';

t.test('16-byte key from enc_keys: KMS_KEY_INVALID, no epoch on either side', async (t) => {
  const pki = await makeTestPki(t);
  let encCalls = 0;
  const kme = createServer({ cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.endsWith('/status')) {
      res.end(JSON.stringify({ source_KME_ID: 'KME_A', target_KME_ID: 'KME_B', master_SAE_ID: 'gw-a', slave_SAE_ID: 'gw-b', key_size: 256, stored_key_count: 10, max_key_count: 100, max_key_per_request: 1, max_key_size: 256, min_key_size: 256, max_SAE_ID_count: 0 }));
      return;
    }
    encCalls++;
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ keys: [{ key_ID: randomUUID(), key: 'AAECAwQFBgcICQoLDA0ODw==' }] })));
  });
  await new Promise<void>((r) => kme.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => { kme.closeAllConnections(); kme.close(r); }));
  const target = tcpServer();
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));

  const o: LabOptions = { dir: pki.dir, pki: pki.layout, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '60s', rekeyJitter: '0s', hardLimitTime: '120s' };
  const url = `https://127.0.0.1:${(kme.address() as { port: number }).port}/api/v1`;
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(writeGwBConfig(o, { kmeAUrl: url, kmeBUrl: url })), { logger: logB });
  t.teardown(() => b.stop());
  const logA = new MemoryLogger();
  const a = await Gateway.start(loadGatewayConfig(writeGwAConfig(o, { kmeAUrl: url, kmeBUrl: url, controlB: b.addresses.control, dataB: b.addresses.data })), { logger: logA });
  t.teardown(() => a.stop());

  const deadline = Date.now() + 10_000;
  while (!logA.lines.some((l) => l.event === 'handshake_failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const failed = logA.lines.find((l) => l.event === 'handshake_failed');
  t.ok(failed, 'the handshake failed');
  t.match(String(failed?.reason), /QKDGW_E_KMS_KEY_INVALID/, 'with the typed error');
  t.ok(encCalls >= 1, 'enc_keys was called');
  t.equal(a.peers.get('gw-b')!.session.slots.current, null, 'no epoch on gw-a');
  t.equal(b.peers.get('gw-a')!.session.slots.current, null, 'no epoch on gw-b');
  t.notOk(logA.lines.some((l) => l.event === 'epoch_switch') || logB.lines.some((l) => l.event === 'epoch_switch' || l.event === 'epoch_next'), 'nothing installed anywhere');
  t.notOk(JSON.stringify(logA.lines).includes('AAECAwQFBgcICQoLDA0ODw'), 'the key bytes were never logged');
});
