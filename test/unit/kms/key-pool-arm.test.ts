// KeyPool with prefetchAfterFirstTake (what the daemon uses): no QKD key is fetched ahead
// for a pair that never started a handshake; from the first take() on the pool fills to
// its target. Status polling runs from start() either way (it consumes no key).
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { KeyPool, type KeyPoolSource } from '../../../src/kms/key-pool.js';
import type { KmeStatus, QkdKey } from '../../../src/kms/etsi014/types.js';
import { ManualClock } from '../../../src/util/clock.js';
import { SecretBytes } from '../../../src/util/secret.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

class Source implements KeyPoolSource {
  requested: number[] = [];
  statusCalls = 0;
  async getKeys(_peer: string, n: number): Promise<QkdKey[]> {
    this.requested.push(n);
    return Array.from({ length: n }, () => ({ keyId: randomUUID(), key: SecretBytes.from(Buffer.alloc(32, 7)) }));
  }
  async status(): Promise<KmeStatus> {
    this.statusCalls++;
    return { source_KME_ID: 'A', target_KME_ID: 'B', master_SAE_ID: 'a', slave_SAE_ID: 'b', key_size: 256, stored_key_count: 50, max_key_count: 100, max_key_per_request: 16, max_key_size: 256, min_key_size: 256, max_SAE_ID_count: 0 };
  }
}

t.test('prefetchAfterFirstTake: nothing fetched before the first take, then the pool fills', async (t) => {
  const clock = new ManualClock(1_000);
  const src = new Source();
  const pool = new KeyPool({ source: src, peerSaeId: 'gw-b', clock, target: 3, statusIntervalMs: 10_000, prefetchAfterFirstTake: true });
  pool.start();
  for (let i = 0; i < 5; i++) {
    clock.advance(10_000);
    await flush();
  }
  t.ok(src.statusCalls >= 5, `status polled (${src.statusCalls} checks)`);
  t.same(src.requested, [], 'no enc_keys before the first take');
  t.equal(pool.stock, 0);
  const k = await pool.take();
  k.key.wipe();
  await pool.whenIdle();
  t.ok(src.requested.length >= 1, 'the first take fetched');
  t.equal(pool.stock, 3, 'then the pool holds its target');
  pool.close();
});

t.test('default: the pool fills from start()', async (t) => {
  const clock = new ManualClock(1_000);
  const src = new Source();
  const pool = new KeyPool({ source: src, peerSaeId: 'gw-b', clock, target: 2 });
  pool.start();
  await pool.whenIdle();
  t.equal(pool.stock, 2);
  pool.close();
});
