/**
 * The gateway's ETSI 014 client against the REAL bundled KME simulator pair, over mTLS with
 * the shared test PKI: status, enc_keys on the master's KME, dec_keys on the slave's KME
 * with the same bytes (checklist C1, C6, C12, etsi014.md s1.1 flow), plus the simulator's
 * spec error answers seen through the client (401 unknown SAE, 400 used key_ID, 503
 * exhaustion) and the KeySource end to end.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etsi014Client, spkiSha256 } from '../../../src/kms/etsi014/index.js';
import { Etsi014KeySource } from '../../../src/kms/key-source.js';
import { startKmeSimulator } from '../../../src/kms/simulator/index.js';
import { ErrorCodes, QkdgwError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { makeTestPki } from '../../helpers/pki.js';
import { rejects } from './client-helpers.js';


async function setup(t: Parameters<typeof makeTestPki>[0] & { teardown(fn: () => unknown): void }, initialKeyCount = 20) {
  // A private folder, not t.testdir(): two runs of this file at once (e.g. the whole suite
  // started twice) would otherwise write the same fixture path and collide.
  const root = mkdtempSync(join(tmpdir(), 'qkdgw-etsi014-sim-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pki = await makeTestPki(t, { dir: join(root, 'pki') });
  const sim = await startKmeSimulator({
    // A frozen clock: the pool holds exactly initialKeyCount keys, nothing accrues.
    clock: new ManualClock(),
    link: { initialKeyCount, keyRateBps: 0 },
    kmes: [
      { kmeId: 'KME_A', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['gw-a'] },
      { kmeId: 'KME_B', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['gw-b'] },
    ],
  });
  t.teardown(() => sim.close());
  const clientFor = (sae: 'gw-a' | 'gw-b', kme: 0 | 1) => {
    const c = new Etsi014Client({
      baseUrl: sim.kmes[kme].url,
      ca: pki.qkdCa.cert,
      cert: pki.saes[sae].cert,
      key: pki.saes[sae].key,
      selfSaeId: sae,
    });
    t.teardown(() => c.close());
    return c;
  };
  return { pki, sim, master: clientFor('gw-a', 0), slave: clientFor('gw-b', 1), clientFor };
}

t.test('simulator happy path: status, enc_keys, dec_keys round trip with equal bytes', async (t) => {
  const { sim, master, slave } = await setup(t);
  const s = await master.status('gw-b');
  t.equal(s.source_KME_ID, 'KME_A');
  t.equal(s.target_KME_ID, 'KME_B');
  t.equal(s.master_SAE_ID, 'gw-a');
  t.equal(s.slave_SAE_ID, 'gw-b');
  t.equal(s.key_size, 256);
  t.equal(s.stored_key_count, 20);

  const enc = await master.getKeys('gw-b', { number: 3, sizeBits: 256 });
  t.equal(enc.length, 3);
  const ids = enc.map((k) => k.keyId);
  for (const id of ids) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'UUIDv4 key_ID');

  // the slave asks its own KME, with the master's SAE ID in the path, in a different order
  const dec = await slave.getKeysWithIds('gw-a', [ids[2], ids[0], ids[1]], { sizeBits: 256 });
  t.same(
    dec.map((k) => k.keyId),
    [ids[2], ids[0], ids[1]],
  );
  for (const d of dec) {
    const e = enc.find((k) => k.keyId === d.keyId)!;
    t.ok(d.key.expose().equals(e.key.expose()), `same bytes for ${e.keyId}`);
    t.equal(d.key.length, 32);
  }
  for (const k of [...enc, ...dec]) k.key.wipe();
  t.equal(sim.stats().encDelivered, 3);
  t.equal(sim.stats().decDelivered, 3);
  t.equal((await master.status('gw-b')).stored_key_count, 17);
});

t.test('simulator + client: the spec error answers arrive as the right codes', async (t) => {
  const { sim, pki, master, slave } = await setup(t, 2);
  const [k] = await master.getKeys('gw-b', { number: 1, sizeBits: 256 });
  const [d] = await slave.getKeysWithIds('gw-a', [k.keyId], { sizeBits: 256 });
  k.key.wipe();
  d.key.wipe();
  // etsi014 C22: a key is delivered once on each side
  const used = await rejects(slave.getKeysWithIds('gw-a', [k.keyId], { sizeBits: 256 }));
  t.equal(used.code, ErrorCodes.KMS_KEY_UNAVAILABLE);
  t.equal(used.details?.status, 400);
  // C14 via the client: above max_key_size is refused locally (clamping from status), nothing sent
  await master.status('gw-b');
  const before = sim.stats().requests;
  t.equal((await rejects(master.getKeys('gw-b', { number: 1, sizeBits: 2048 }))).code, ErrorCodes.KMS_CONFIG);
  t.equal(sim.stats().requests, before);
  // C17: exhaustion is 503 insufficient key material -> KMS_EXHAUSTED, retryable
  const ex = await rejects(master.getKeys('gw-b', { number: 2, sizeBits: 256 }));
  t.equal(ex.code, ErrorCodes.KMS_EXHAUSTED, ex.message);
  t.equal(ex.details?.retryable, true);
  // an SAE the KME does not serve (gw-b calling KME_A) is 401 -> KMS_AUTH
  const stranger = new Etsi014Client({ baseUrl: sim.kmes[0].url, ca: pki.qkdCa.cert, cert: pki.saes['gw-b'].cert, key: pki.saes['gw-b'].key, selfSaeId: 'gw-b' });
  t.teardown(() => stranger.close());
  t.equal((await rejects(stranger.status('gw-a'))).code, ErrorCodes.KMS_AUTH);
});

t.test('simulator + client: KME identity checks (pin, wrong serverName) still hold against the real server', async (t) => {
  const { sim, pki } = await setup(t);
  const base = { baseUrl: sim.kmes[0].url, ca: pki.qkdCa.cert, cert: pki.saes['gw-a'].cert, key: pki.saes['gw-a'].key, selfSaeId: 'gw-a' };
  const pinned = new Etsi014Client({ ...base, spkiSha256: spkiSha256(pki.kmes.KME_A.cert) });
  t.teardown(() => pinned.close());
  t.equal((await pinned.status('gw-b')).source_KME_ID, 'KME_A');
  const wrongPin = new Etsi014Client({ ...base, spkiSha256: spkiSha256(pki.kmes.KME_B.cert) });
  t.teardown(() => wrongPin.close());
  t.equal((await rejects(wrongPin.status('gw-b'))).code, ErrorCodes.KMS_TLS);
  const wrongName = new Etsi014Client({ ...base, serverName: 'kme.elsewhere.example' });
  t.teardown(() => wrongName.close());
  t.equal((await rejects(wrongName.status('gw-b'))).code, ErrorCodes.KMS_TLS);
  // an SAE cert from a CA the KME does not trust: rejected at TLS, named as such
  const rogue = await pki.issue('none', { commonName: 'gw-a' }); // self-signed: not under the QKD CA
  const r = new Etsi014Client({ ...base, cert: rogue.cert, key: rogue.key });
  t.teardown(() => r.close());
  const e = await rejects(r.status('gw-b'));
  t.equal(e.code, ErrorCodes.KMS_TLS, e.message);
  t.match(e.message, /client certificate/);
});

t.test('simulator + KeySource: master getKey and slave getKeyById agree, key_IDs burn once', async (t) => {
  const { master, slave } = await setup(t);
  const a = new Etsi014KeySource(master);
  const b = new Etsi014KeySource(slave);
  const km = await a.getKey('gw-b');
  const ks = await b.getKeyById('gw-a', km.keyId);
  t.ok(km.key.expose().equals(ks.key.expose()));
  t.equal(km.key.length, 32);
  t.equal((await rejects(b.getKeyById('gw-a', km.keyId))).code, ErrorCodes.KMS_KEY_REUSED);
  km.key.wipe();
  ks.key.wipe();
});

