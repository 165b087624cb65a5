/**
 * KeyPool over the real Etsi014KeySource, client and bundled KME simulator pair (mTLS,
 * shared test PKI): prefetch, take, background refill and clamping to the KME status,
 * the slave getting the same bytes for a pooled key, zeroization on close (etsi014-C32),
 * the supply estimate and consecutiveGoodChecks from a simulated key rate (protocol.md s6
 * `preferred`), and exhaustion at the simulator (etsi014-C17, C36) with recovery.
 *
 * One ManualClock drives the simulator's key accrual, the pool's status ticks and the
 * KeySource's deadlines; HTTP is real. Tests wait on whenIdle(), never on time.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etsi014Client } from '../../../src/kms/etsi014/index.js';
import { Etsi014KeySource } from '../../../src/kms/key-source.js';
import { KeyPool, type KeyPoolEvent, type KeyPoolOptions, type KeyPoolSource } from '../../../src/kms/key-pool.js';
import type { QkdKey } from '../../../src/kms/etsi014/types.js';
import { startKmeSimulator, type KmeLinkOptions } from '../../../src/kms/simulator/index.js';
import { ErrorCodes } from '../../../src/errors.js';
import { ManualClock } from '../../../src/util/clock.js';
import { MemoryLogger } from '../../../src/util/logger.js';
import { makeTestPki } from '../../helpers/pki.js';
import { rejects } from './client-helpers.js';

type TT = Parameters<typeof makeTestPki>[0] & { teardown(fn: () => unknown): void };

async function setup(t: TT, link: KmeLinkOptions) {
  const root = mkdtempSync(join(tmpdir(), 'qkdgw-keypool-sim-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pki = await makeTestPki(t, { dir: join(root, 'pki') });
  const clock = new ManualClock();
  const sim = await startKmeSimulator({
    clock,
    link,
    kmes: [
      { kmeId: 'KME_A', cert: pki.kmes.KME_A.cert, key: pki.kmes.KME_A.key, ca: pki.qkdCa.cert, saes: ['gw-a'] },
      { kmeId: 'KME_B', cert: pki.kmes.KME_B.cert, key: pki.kmes.KME_B.key, ca: pki.qkdCa.cert, saes: ['gw-b'] },
    ],
  });
  t.teardown(() => sim.close());
  const sourceFor = (sae: 'gw-a' | 'gw-b', kme: 0 | 1) => {
    const c = new Etsi014Client({ baseUrl: sim.kmes[kme].url, ca: pki.qkdCa.cert, cert: pki.saes[sae].cert, key: pki.saes[sae].key, selfSaeId: sae });
    const ks = new Etsi014KeySource(c, { clock, random: () => 0.5 });
    t.teardown(() => ks.close());
    return ks;
  };
  const master = sourceFor('gw-a', 0);
  const slave = sourceFor('gw-b', 1);
  /** every key the master source delivered, to check zeroization */
  const delivered: QkdKey[] = [];
  const recording: KeyPoolSource = {
    getKeys: async (peer, n, o) => {
      const ks = await master.getKeys(peer, n, o);
      delivered.push(...ks);
      return ks;
    },
    status: (peer, o) => master.status(peer, o),
  };
  const events: KeyPoolEvent[] = [];
  const log = new MemoryLogger();
  const pool = (o: Partial<KeyPoolOptions> = {}) => {
    const p = new KeyPool({ source: recording, peerSaeId: 'gw-b', clock, logger: log, random: () => 0.5, onEvent: (e) => events.push(e), ...o });
    t.teardown(() => p.close());
    return p;
  };
  /**
   * Advances virtual time in 1 s steps, letting the pool's calls finish in between
   * (ManualClock fires every timer of one advance() before any promise continuation
   * runs, so one big jump could fire a call's deadline before the call is even sent).
   */
  const tick = async (p: KeyPool, ms: number) => {
    for (let done = 0; done < ms; done += 1000) {
      clock.advance(Math.min(1000, ms - done));
      await p.whenIdle();
    }
  };
  return { sim, clock, master, slave, pool, delivered, events, log, tick };
}

t.test('simulator: prefetch to target, take the oldest, refill in the background; the slave gets the same bytes', async (t) => {
  const { sim, slave, pool } = await setup(t, { initialKeyCount: 20, keyRateBps: 0 });
  const p = pool({ target: 4 });
  p.start();
  await p.whenIdle();
  t.equal(p.stock, 4);
  t.equal(sim.stats().encDelivered, 4, 'one enc_keys for 4 keys');
  t.equal(p.stats().kmeStoredKeyCount, 20, 'read before the prefetch');
  const ids = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const k = await p.take();
    t.notOk(ids.has(k.keyId), `key_ID ${k.keyId} handed out once`);
    ids.add(k.keyId);
    const d = await slave.getKeyById('gw-a', k.keyId);
    t.ok(d.key.expose().equals(k.key.expose()), 'the slave KME delivers the same bytes for a pooled key');
    k.key.wipe();
    d.key.wipe();
    await p.whenIdle();
    t.equal(p.stock, 4, 'refilled after the take');
  }
  t.equal(sim.stats().encDelivered, 10, '4 ahead + 6 refills');
  t.equal(sim.stats().decDelivered, 6);
  t.equal(p.stats().taken, 6);
});

t.test('etsi014-C9 simulator: refill batches are clamped to max_key_per_request from status', async (t) => {
  const { sim, pool } = await setup(t, { initialKeyCount: 20, keyRateBps: 0, maxKeyPerRequest: 2 });
  const before = sim.stats().requests;
  const p = pool({ target: 5 });
  p.start();
  await p.whenIdle();
  t.equal(p.stock, 5);
  t.equal(sim.stats().encDelivered, 5);
  t.equal(sim.stats().requests - before, 1 + 3, 'one status, then enc_keys of 2 + 2 + 1');
  t.equal(sim.stats().responsesByStatus['400'] ?? 0, 0, 'never asked above the limit');
});

t.test('etsi014-C32 simulator: close() zeroizes every pooled key; keys already taken stay with the caller', async (t) => {
  const { pool, delivered } = await setup(t, { initialKeyCount: 20, keyRateBps: 0 });
  const p = pool({ target: 4 });
  p.start();
  await p.whenIdle();
  const taken = await p.take();
  await p.whenIdle();
  t.equal(delivered.length, 5);
  p.close();
  for (const k of delivered) {
    if (k === taken) t.notOk(k.key.wiped, 'the taken key belongs to the caller');
    else t.ok(k.key.wiped, `pooled key ${k.keyId} zeroized`);
  }
  t.equal(p.stock, 0);
  t.equal((await rejects(p.take())).code, ErrorCodes.INTERNAL);
  taken.key.wipe();
});

t.test('protocol.md s6 simulator at 1 key/s: status every 10 s, consecutiveGoodChecks, supply ~ 1 key/s', async (t) => {
  const { pool, tick } = await setup(t, { initialKeyCount: 10, keyRateBps: 256, keySizeBits: 256, maxKeyCount: 1000 });
  const p = pool({ target: 2 });
  p.start();
  await p.whenIdle();
  t.equal(p.stats().consecutiveGoodChecks, 1);
  for (let i = 0; i < 6; i++) await tick(p, 10_000);
  const s = p.stats();
  t.equal(s.consecutiveGoodChecks, 7);
  t.equal(s.lastStatusAt, 60_000);
  t.ok(s.supplyPerSec !== null && Math.abs(s.supplyPerSec - 1) < 0.05, `supply ${s.supplyPerSec} ~ 1 key/s`);
  t.equal(s.kmeStoredKeyCount, 10 - 2 + 60);
  t.equal(s.forecastKmeDrySec, null, 'nothing consumed: never dry');
  const k = await p.take();
  k.key.wipe();
  t.ok(p.stats().consumptionPerSec > 0);
  t.equal(p.stats().forecastKmeDrySec, null, 'supply above consumption: never dry');
});

t.test('etsi014-C17/C36 simulator pool empty: refill fails as exhausted, take fails fast, recovery refills', async (t) => {
  const { sim, pool, tick, events, clock } = await setup(t, { initialKeyCount: 0, keyRateBps: 256, keySizeBits: 256 });
  const p = pool({ target: 2, statusIntervalMs: 10_000 });
  p.start();
  await p.whenIdle();
  t.equal(p.stats().consecutiveGoodChecks, 0, 'stored_key_count 0 is not a good check');
  t.equal(p.stock, 0);
  t.equal(p.stats().lastError?.code, ErrorCodes.KMS_EXHAUSTED, 'the simulator answered 503 insufficient key material');
  t.ok(events.some((e) => e.event === 'key_pool_refill_failed' && e.code === ErrorCodes.KMS_EXHAUSTED));
  // the KeySource's exhaustion gate (1 s) does not fit a 1 s take deadline: fails at once, no request
  const before = sim.stats().requests;
  const e = await rejects(p.take({ deadlineMs: 1000 }));
  t.equal(e.code, ErrorCodes.KMS_EXHAUSTED, e.message);
  t.equal(e.details?.suppressed, true);
  t.equal(sim.stats().requests, before);
  t.ok(events.some((x) => x.event === 'key_pool_empty'));
  // keys accrue at 1 key/s; the next status tick sees them and the pool refills
  await tick(p, 10_000);
  t.ok(clock.now() >= 10_000);
  t.equal(p.stats().consecutiveGoodChecks, 1);
  t.equal(p.stock, 2, 'refilled once the KME has keys again');
  t.equal(events.filter((x) => x.event === 'key_pool_refilled').length, 1);
  const k = await p.take();
  t.equal(k.key.length, 32);
  k.key.wipe();
});
