// protocol.md s2: the responder accepts a control connection only from a certificate of
// the control CA with exactly one SAN URI urn:qkdgw:<configured peer> (SAN DNS is not
// accepted) and an EKU that includes clientAuth. Anything else: close, count, log
// (`control_rejected`); never an epoch, never a crash.
import t from 'tap';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLab, dial, collect, until } from '../../helpers/lab.js';

t.test('a gw-a control certificate with the wrong identity is refused by gw-b', async (t) => {
  // gw-a reads its control certificate from these files; each variant overwrites them.
  const lab = await startLab(t, {
    deferA: true,
    uncheckedCertsA: true,
    editA: (y) => y.replace(/(gw-gw-a)\.(pem|key)$/gm, 'gw-a-variant.$2'),
  });
  const pki = lab.pki;
  const certPath = join(pki.dir, 'gw-a-variant.pem');
  const keyPath = join(pki.dir, 'gw-a-variant.key');
  const usePair = (p: { cert: string; key: string }): void => {
    writeFileSync(certPath, p.cert, { mode: 0o644 });
    writeFileSync(keyPath, p.key, { mode: 0o600 });
  };
  const control = { cert: pki.controlCa.cert, key: pki.controlCa.key };
  const qkd = { cert: pki.qkdCa.cert, key: pki.qkdCa.key };
  const both: Array<'serverAuth' | 'clientAuth'> = ['serverAuth', 'clientAuth'];
  const variants: Array<[string, () => Promise<{ cert: string; key: string }>]> = [
    ['SAN URI urn:qkdgw:gw-x (CN gw-a)', () => pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-x'], extKeyUsage: both })],
    ['two SAN URIs (gw-a and gw-x)', () => pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a', 'urn:qkdgw:gw-x'], extKeyUsage: both })],
    ['only a SAN DNS name gw-a', () => pki.issue('control', { commonName: 'gw-a', dnsNames: ['gw-a'], extKeyUsage: both })],
    ['issued by the QKD CA', () => pki.issue('qkd', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: both, issuer: qkd })],
    ['no clientAuth EKU (serverAuth only)', () => pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: ['serverAuth'], issuer: control })],
    ['no EKU extension at all', () => pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], issuer: control })],
    ['self-signed, SAN URI urn:qkdgw:gw-a', () => pki.issue('none', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: both })],
    ['expired, from the control CA', () => pki.issue('control', { commonName: 'gw-a', uris: ['urn:qkdgw:gw-a'], extKeyUsage: both, notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) })],
    ["gw-b's own certificate (reflected)", async () => ({ cert: pki.gateways['gw-b'].cert, key: pki.gateways['gw-b'].key })],
  ];

  const rejected = (): number => lab.logB.lines.filter((l) => l.event === 'control_rejected').length;
  for (const [what, make] of variants) {
    usePair(await make());
    const before = rejected();
    await lab.restartA();
    await until(() => rejected() > before, 5_000, `${what}: control_rejected`);
    const line = lab.logB.lines.filter((l) => l.event === 'control_rejected').at(-1)!;
    t.pass(`${what}: refused (${String(line.kind)}: ${String(line.msg)})`);
    t.equal(lab.rtB().session.slots.current, null, `${what}: gw-b installed no epoch`);
    t.equal(lab.rtB().session.slots.next, null, `${what}: gw-b holds no next epoch`);
    t.equal(lab.rtA().session.slots.current, null, `${what}: gw-a installed no epoch`);
    t.notOk(lab.rtB().controlUp, `${what}: no control session at gw-b`);
  }
  t.equal(lab.sim.deliveries.length, 0, 'no QKD key was ever delivered to gw-b');

  // gw-b is alive and accepts the real gw-a.
  copyFileSync(pki.layout.gateways['gw-a'].cert, certPath);
  copyFileSync(pki.layout.gateways['gw-a'].key, keyPath);
  await lab.restartA();
  await lab.ready();
  const s = await dial(lab.servicePort);
  const out = collect(s);
  s.end('after all that');
  t.equal((await out).data.toString(), 'after all that', 'the real gw-a gets through');
});
