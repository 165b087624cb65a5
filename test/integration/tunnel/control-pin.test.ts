// protocol.md s2 pin mode: SPKI SHA-256 pins instead of the control CA; a wrong pin is refused.
import t, { type Test } from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { makeTestPki } from '../../helpers/pki.js';
import { spkiSha256 } from '../../../src/pki/index.js';
import { writeGwAConfig, writeGwBConfig, type LabOptions } from '../../../src/daemon/lab.js';
import { loadGatewayConfig } from '../../../src/config/gateway.js';
import { Gateway } from '../../../src/daemon/gateway.js';
import { startKmeSimulator } from '../../../src/kms/simulator/index.js';
import { MemoryLogger } from '../../../src/util/logger.js';

const until = async (pred: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

/** Swaps `ca:` under control for a pin on the peer entry. */
function pinned(file: string, peer: string, pin: string): void {
  let y = readFileSync(file, 'utf8');
  y = y.replace(/^(control:\n(?:  listen: .*\n)?)  ca: .*\n/m, '$1');
  y = y.replace(`  - identity: ${peer}\n`, `  - identity: ${peer}\n    pin: sha256:${pin}\n`);
  writeFileSync(file, y);
}

async function lab(t: Test, pinForB: (real: string) => string) {
  const pki = await makeTestPki(t);
  const sim = await startKmeSimulator({
    link: { initialKeyCount: 20 },
    kmes: [
      { kmeId: 'KME_A', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['gw-a'] },
      { kmeId: 'KME_B', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['gw-b'] },
    ],
  });
  t.teardown(() => sim.close());
  const target = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  const o: LabOptions = { dir: pki.dir, pki: pki.layout, target: { host: '127.0.0.1', port: (target.address() as { port: number }).port }, rekeyAfterTime: '60s', rekeyJitter: '0s', hardLimitTime: '120s' };
  const addr = { kmeAUrl: sim.kmes[0].url, kmeBUrl: sim.kmes[1].url };
  const fB = writeGwBConfig(o, addr);
  pinned(fB, 'gw-a', spkiSha256(pki.gateways['gw-a'].cert));
  const logB = new MemoryLogger();
  const b = await Gateway.start(loadGatewayConfig(fB), { logger: logB });
  t.teardown(() => b.stop());
  const fA = writeGwAConfig(o, { ...addr, controlB: b.addresses.control, dataB: b.addresses.data });
  pinned(fA, 'gw-b', pinForB(spkiSha256(pki.gateways['gw-b'].cert)));
  const logA = new MemoryLogger();
  const a = await Gateway.start(loadGatewayConfig(fA), { logger: logA });
  t.teardown(() => a.stop());
  return { a, b, logA, logB };
}

t.test('pins on both sides, no control CA: the first epoch comes up', async (t) => {
  const { a, b } = await lab(t, (real) => real);
  await until(() => a.peers.get('gw-b')!.sendEpoch() !== null && b.peers.get('gw-a')!.sendEpoch() !== null, 10_000, 'first epoch');
  t.equal(a.cfg.control.ca, undefined, 'no control CA configured');
  t.pass('epoch 1 installed on both sides');
});

t.test('a wrong pin is refused by the initiator: no epoch, logged, no crash', async (t) => {
  const { a, logA } = await lab(t, (real) => Buffer.alloc(32, 7).toString('base64'));
  await until(() => logA.lines.some((l) => l.event === 'control_connect_failed'), 10_000, 'refusal');
  const f = logA.lines.find((l) => l.event === 'control_connect_failed')!;
  t.match(String(f.reason), /pin/, 'the reason names the pin');
  t.equal(a.peers.get('gw-b')!.session.slots.current, null, 'no epoch');
});
